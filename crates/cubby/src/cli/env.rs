//! `cubby env`: a container's env vars, all or one at a time.

use clap::Subcommand;

use super::output::print;
use super::{Connection, Target};

#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// Show a container's env vars.
    List(Target),
    /// Set one or more vars: `cubby env set <id> KEY=VALUE...`.
    Set {
        /// Container id.
        id: String,
        #[arg(required = true, value_parser = super::containers::parse_env)]
        vars: Vec<(String, String)>,
        /// Restart a running container so the change applies now.
        #[arg(long)]
        restart: bool,
        #[command(flatten)]
        c: Connection,
    },
    /// Remove one var.
    Unset {
        /// Container id.
        id: String,
        key: String,
        /// Restart a running container so the change applies now.
        #[arg(long)]
        restart: bool,
        #[command(flatten)]
        c: Connection,
    },
}

pub fn run(cmd: EnvCommand) -> anyhow::Result<std::process::ExitCode> {
    let (env, c) = match cmd {
        EnvCommand::List(Target { id, c }) => (c.client()?.env(&id)?, c),
        EnvCommand::Set { id, vars, restart, c } => {
            let client = c.client()?;
            let count = vars.len();
            let mut env = Default::default();
            for (i, (key, value)) in vars.into_iter().enumerate() {
                // Restart once, with the last.
                env = client.set_env_var(&id, &key, &value, restart && i + 1 == count)?;
            }
            (env, c)
        }
        EnvCommand::Unset { id, key, restart, c } => {
            let client = c.client()?;
            client.delete_env_var(&id, &key, restart)?;
            (client.env(&id)?, c)
        }
    };
    let rows: Vec<(String, String)> = env.into_iter().collect();
    if c.json {
        let map: std::collections::BTreeMap<_, _> = rows.into_iter().collect();
        super::output::print_one(true, &map);
    } else {
        print(false, &rows, &["KEY", "VALUE"], |(k, v)| vec![k.clone(), v.clone()]);
    }
    Ok(std::process::ExitCode::SUCCESS)
}
