//! `cubby aliases ...`

use clap::Subcommand;
use cubby_model::{ContainerId, CreateAlias};

use super::output::{print, print_one};
use super::{Connection, Named};

#[derive(Debug, Subcommand)]
pub enum AliasesCommand {
    /// List the aliases you can see.
    List {
        #[command(flatten)]
        c: Connection,
    },
    /// Point a unique name at a container (and a port).
    Create {
        name: String,
        container: String,
        #[arg(long)]
        port: Option<u16>,
        #[command(flatten)]
        c: Connection,
    },
    /// Remove an alias.
    Delete(Named),
}

pub fn run(cmd: AliasesCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        AliasesCommand::List { c } => {
            let aliases = c.client()?.aliases()?;
            print(c.json, &aliases, &["NAME", "CONTAINER", "PORT", "URL"], |a| {
                vec![
                    a.name.clone(),
                    a.container_id.to_string(),
                    a.port.map(|p| p.to_string()).unwrap_or_default(),
                    a.url.clone(),
                ]
            });
        }
        AliasesCommand::Create { name, container, port, c } => {
            print_one(
                c.json,
                &c.client()?.create_alias(&CreateAlias {
                    name,
                    container_id: ContainerId::parse(&container)?,
                    port,
                })?,
            );
        }
        AliasesCommand::Delete(Named { name, c }) => {
            c.client()?.delete_alias(&name)?;
            if !c.json {
                println!("deleted alias {name}");
            }
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
