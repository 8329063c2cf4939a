//! The command-line client: one subcommand per API resource, readable
//! tables by default and the API's JSON with `--json`.
//!
//! It finds the daemon through `--api` (or `CUBBY_API`), else the
//! `endpoints.json` the daemon writes in its data dir; and the token
//! through `--token` (or `CUBBY_TOKEN`), else the admin token file.

mod aliases;
mod backup;
mod bundle;
mod containers;
mod env;
mod events;
mod images;
mod output;
mod projects;
mod rollout;
mod rules;
mod scripts;
mod snapshots;
mod stats;
mod usage;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};
use cubby_client::Client;

/// How to reach the daemon.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// API address, like http://127.0.0.1:7070.
    #[arg(long, global = true, env = "CUBBY_API")]
    pub api: Option<String>,
    /// API token (default: the admin token in the data dir).
    #[arg(long, global = true, env = "CUBBY_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A PEM file of the CA to trust for an https:// API (a daemon run
    /// with --api-tls and a certificate of your own CA).
    #[arg(long, global = true, env = "CUBBY_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// The daemon's data dir, to find its address and admin token.
    #[arg(long, global = true, default_value = "/var/lib/cubby", env = "CUBBY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Print the API's JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
}

/// A command on one resource, named by its id.
#[derive(Debug, Clone, Args)]
pub struct Target {
    pub id: String,
    #[command(flatten)]
    pub c: Connection,
}

/// A command on one resource, named by its name.
#[derive(Debug, Clone, Args)]
pub struct Named {
    pub name: String,
    #[command(flatten)]
    pub c: Connection,
}

impl Connection {
    fn client(&self) -> anyhow::Result<Client> {
        let api = match &self.api {
            Some(api) => api.clone(),
            None => std::fs::read(self.data_dir.join("endpoints.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v["api"].as_str().map(str::to_string))
                .unwrap_or_else(|| "http://127.0.0.1:7070".into()),
        };
        let token = match &self.token {
            Some(t) => Some(t.clone()),
            None => std::fs::read_to_string(self.data_dir.join("admin.token")).ok().map(|t| t.trim().to_string()),
        };
        let client = Client::new(api, token);
        match &self.ca_file {
            Some(file) => {
                let pem = std::fs::read(file).with_context(|| format!("reading --ca-file {}", file.display()))?;
                client.with_ca_pem(&pem).with_context(|| format!("--ca-file {}", file.display()))
            }
            None => Ok(client),
        }
    }
}

/// The client's subcommands.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Projects: list, create, get, delete; and their tokens.
    #[command(subcommand, alias = "project")]
    Projects(projects::ProjectsCommand),
    /// Containers: list, create, copy, update, get, start, stop, restart, delete, transitions.
    #[command(subcommand, alias = "container")]
    Containers(containers::ContainersCommand),
    /// Snapshots of a container: list, create, restore, alias, delete.
    #[command(subcommand, alias = "snapshot")]
    Snapshots(snapshots::SnapshotsCommand),
    /// Aliases: unique names for a container's URL.
    #[command(subcommand, alias = "alias")]
    Aliases(aliases::AliasesCommand),
    /// Images: list, import, delete.
    #[command(subcommand, alias = "image")]
    Images(images::ImagesCommand),
    /// A container's firewall rules: list, add, delete, reset.
    #[command(subcommand)]
    Firewall(rules::FirewallCommand),
    /// A container's network rules: get, set.
    #[command(subcommand)]
    Network(rules::NetworkCommand),
    /// A container's env vars: list, set, unset.
    #[command(subcommand)]
    Env(env::EnvCommand),
    /// Exec scripts of a project: push a folder, list, logs, secrets.
    #[command(subcommand, alias = "script")]
    Scripts(scripts::ScriptsCommand),
    /// Run a command in a container: `cubby exec <id> -- ls /data`.
    Exec(containers::ExecArgs),
    /// Print a container's output.
    Logs(containers::LogsArgs),
    /// What containers use now (CPU, memory, pids, disk, network); `--watch` redraws.
    Stats(stats::StatsArgs),
    /// What containers used over a span, for invoices (CPU seconds, memory
    /// and disk GiB-seconds, network, requests, running time, wakes).
    Usage(usage::UsageArgs),
    /// What happened to tenants (starts, stops, exits, OOM kills...);
    /// `--follow` keeps printing.
    Events(events::EventsArgs),
    /// Upgrade many tenants of a project in batches: every copy of a
    /// template (`--template`), or onto an image (`--image`).
    Rollout(rollout::RolloutArgs),
    /// Take a backup of the whole box now (admin token):
    /// `cubby backup --to /mnt/backups`; `cubby restore` rebuilds it.
    Backup(backup::BackupArgs),
    /// Where a project's events are POSTed, signed: list, create, delete,
    /// deliveries.
    #[command(subcommand)]
    Webhooks(events::WebhooksCommand),
}

/// The client's flags and subcommand together.
#[derive(Debug, Args)]
pub struct ClientArgs {
    #[command(flatten)]
    pub connection: Connection,
}

pub fn run(command: ClientCommand) -> anyhow::Result<std::process::ExitCode> {
    match command {
        ClientCommand::Projects(c) => projects::run(c),
        ClientCommand::Containers(c) => containers::run(c),
        ClientCommand::Images(c) => images::run(c),
        ClientCommand::Snapshots(c) => snapshots::run(c),
        ClientCommand::Aliases(c) => aliases::run(c),
        ClientCommand::Firewall(c) => rules::firewall(c),
        ClientCommand::Network(c) => rules::network(c),
        ClientCommand::Env(c) => env::run(c),
        ClientCommand::Scripts(c) => scripts::run(c),
        ClientCommand::Exec(a) => containers::exec(a),
        ClientCommand::Logs(a) => containers::logs(a),
        ClientCommand::Stats(a) => stats::run(a),
        ClientCommand::Usage(a) => usage::run(a),
        ClientCommand::Events(a) => events::run(a),
        ClientCommand::Webhooks(c) => events::webhooks(c),
        ClientCommand::Backup(a) => backup::run(a),
        ClientCommand::Rollout(a) => rollout::run(a),
    }
    .context("the API call failed")
}
