//! cubby-init: PID 1 of every Cubby container.
//!
//! Owns the program flow: parse argv, load the workload from the process file
//! (default `/.cubby/process.json`), block the handled signals, spawn the
//! workload, forward signals / reap zombies until it exits, terminate the
//! leftovers, and exit with the workload's status (128+N if killed by signal
//! N). Failures before the workload runs print one `cubby-init: ` line to
//! stderr and exit 127 (not found), 126 (not executable) or 1 (other).

mod cli;
mod error;
mod resolve;
mod spawn;
mod spec;
mod supervise;

use crate::cli::Cli;
use crate::error::InitError;
use crate::spec::ProcessSpec;

fn main() {
    let code = match run() {
        Ok(code) => code,
        Err(err) => {
            eprintln!("cubby-init: {err}");
            err.exit_code()
        }
    };
    std::process::exit(code);
}

fn run() -> Result<i32, InitError> {
    let cli = match Cli::parse(std::env::args_os().skip(1))? {
        Some(cli) => cli,
        None => {
            println!("{}", cli::USAGE);
            return Ok(0);
        }
    };
    let spec = ProcessSpec::load(&cli.process_file)?;

    // Block before spawning so no signal or SIGCHLD can slip through.
    let signals = supervise::handled_signals();
    supervise::block(&signals)?;

    let child = spawn::spawn_workload(&spec)?;
    let outcome = supervise::run(child, &signals)?;
    supervise::cleanup(supervise::GRACE);
    let code = outcome.exit_code();
    if let Some(file) = &spec.exit_file {
        // The daemon reads it to tell why the container stopped; failing
        // to write it must not change how init exits.
        let _ = std::fs::write(file, format!("{code}\n"));
    }
    Ok(code)
}
