//! `cubby`: one binary for the daemon and its command-line client.
//!
//! - `cubby serve` runs the daemon (wiring in [`serve`]);
//! - `cubby purge` removes every host resource of one daemon instance;
//! - `cubby doctor` reports (and with `--fix` repairs) drift between the
//!   database and the host;
//! - `cubby restore` rebuilds a box from a backup, offline;
//! - `cubby openapi` prints the API's OpenAPI document;
//! - every other subcommand is a client of the API ([`cli`]).

mod cli;
mod dns;
mod doctor;
mod host;
mod purge;
mod restore;
mod scripts;
mod serve;

use clap::{Parser, Subcommand};

/// mimalloc: the proxy allocates per request on every worker thread, and
/// glibc's arenas showed in its tail latency (see the README's bench notes).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `cubby --version`: the crate version and the commit it was built from.
const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("CUBBY_COMMIT"), ")");

/// Cubby: one isolated Linux container per customer, made by one HTTP call.
#[derive(Debug, Parser)]
#[command(name = "cubby", version = VERSION, about)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the daemon.
    Serve(Box<serve::ServeArgs>),
    /// Remove everything one daemon instance made on this host: containers,
    /// mounts, network, firewall table, cgroups, pool and data dir.
    Purge(purge::PurgeArgs),
    /// Report drift between the database and the host (exit 0: none); `--fix` removes orphans.
    Doctor(doctor::DoctorArgs),
    /// Rebuild a box from a backup directory into an empty data dir (no
    /// daemon running on it); then `cubby serve` brings every tenant back.
    Restore(restore::RestoreArgs),
    /// Print the API's OpenAPI document.
    Openapi,
    /// Print a shell's completions: `cubby completions bash > /etc/bash_completion.d/cubby`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    #[command(flatten)]
    Client(cli::ClientCommand),
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Command::Serve(a) => serve::run(*a),
        Command::Purge(a) => purge::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Restore(a) => restore::run(a),
        Command::Openapi => {
            println!("{}", cubby_api::openapi::document().to_pretty_json().expect("the document serialises"));
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Completions { shell } => {
            let mut command = <Args as clap::CommandFactory>::command();
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut command, "cubby", &mut script);
            // A reader that stops early (`| head`) is not an error.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &script);
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Client(c) => cli::run(c),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("cubby: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
