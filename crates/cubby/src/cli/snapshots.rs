//! `cubby snapshots ...`

use clap::Subcommand;
use cubby_model::{CreateSnapshot, UpdateSnapshot};

use super::Connection;
use super::output::{print, print_one};

#[derive(Debug, Subcommand)]
pub enum SnapshotsCommand {
    /// List a container's snapshots.
    List {
        container: String,
        #[command(flatten)]
        c: Connection,
    },
    /// Take a snapshot.
    Create {
        container: String,
        #[arg(long)]
        alias: Option<String>,
        /// Remove it after this many days.
        #[arg(long)]
        expiry_days: Option<f64>,
        #[command(flatten)]
        c: Connection,
    },
    /// Restore the container to a snapshot, in place.
    Restore {
        container: String,
        name: String,
        #[command(flatten)]
        c: Connection,
    },
    /// Set (or with no value, remove) a snapshot's alias.
    Alias {
        container: String,
        name: String,
        alias: Option<String>,
        #[command(flatten)]
        c: Connection,
    },
    /// Delete a snapshot.
    Delete {
        container: String,
        name: String,
        #[command(flatten)]
        c: Connection,
    },
}

pub fn run(cmd: SnapshotsCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        SnapshotsCommand::List { container, c } => {
            let snaps = c.client()?.snapshots(&container)?;
            print(c.json, &snaps, &["NAME", "ALIAS", "CREATED", "EXPIRES", "SIZE"], |s| {
                vec![
                    s.name.clone(),
                    s.alias.clone().unwrap_or_default(),
                    s.created_at.to_string(),
                    s.expires_at.map(|e| e.to_string()).unwrap_or_else(|| "-".into()),
                    s.size_bytes.map(|b| cubby_model::ByteSize(b).to_string()).unwrap_or_default(),
                ]
            });
        }
        SnapshotsCommand::Create { container, alias, expiry_days, c } => {
            print_one(c.json, &c.client()?.create_snapshot(&container, &CreateSnapshot { alias, expiry_days })?);
        }
        SnapshotsCommand::Restore { container, name, c } => {
            print_one(c.json, &c.client()?.restore_snapshot(&container, &name)?)
        }
        SnapshotsCommand::Alias { container, name, alias, c } => {
            print_one(c.json, &c.client()?.update_snapshot(&container, &name, &UpdateSnapshot { alias })?);
        }
        SnapshotsCommand::Delete { container, name, c } => {
            c.client()?.delete_snapshot(&container, &name)?;
            if !c.json {
                println!("deleted snapshot {name}");
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
