//! `cubby projects ...`

use clap::{Args, Subcommand};
use cubby_model::{AccessMode, ByteSize, CreateProject, CreateToken, ProjectQuota, UpdateProject};

use super::output::{print, print_one};
use super::{Connection, Target};

#[derive(Debug, Subcommand)]
pub enum ProjectsCommand {
    /// List projects.
    List {
        #[command(flatten)]
        c: Connection,
    },
    /// Make a project.
    Create {
        name: String,
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(flatten)]
        c: Connection,
    },
    /// Change a project's limit, defaults or quota (the quota is replaced
    /// as a whole when any of its flags is given).
    Update {
        id: String,
        #[command(flatten)]
        settings: SettingsArgs,
        #[command(flatten)]
        c: Connection,
    },
    /// Show a project.
    Get(Target),
    /// Delete an empty project.
    Delete(Target),
    /// Make a token that sees only this project (its secret is shown once).
    Token {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        c: Connection,
    },
    /// List a project's tokens.
    Tokens(Target),
}

/// What each container of the project may have (admin token).
#[derive(Debug, Clone, Args)]
pub struct QuotaArgs {
    /// Most CPU per container, in cores.
    #[arg(long)]
    max_cpu: Option<f64>,
    /// Most memory per container (like 1GiB).
    #[arg(long, value_parser = parse_size)]
    max_memory: Option<ByteSize>,
    /// Most disk per container (like 10GiB).
    #[arg(long, value_parser = parse_size)]
    max_disk: Option<ByteSize>,
    /// Disk limit of containers that ask for none.
    #[arg(long, value_parser = parse_size)]
    default_disk: Option<ByteSize>,
}

impl QuotaArgs {
    fn quota(&self) -> Option<ProjectQuota> {
        let q = ProjectQuota {
            max_cpu: self.max_cpu,
            max_memory: self.max_memory,
            max_disk: self.max_disk,
            default_disk: self.default_disk,
        };
        (q != ProjectQuota::default()).then_some(q)
    }
}

fn parse_size(s: &str) -> Result<ByteSize, cubby_model::ByteSizeError> {
    ByteSize::parse(s)
}

/// A project's limit, defaults and quota (on update, what is not given
/// stays; the quota is replaced as a whole when any of its flags is given).
#[derive(Debug, Clone, Args)]
pub struct SettingsArgs {
    /// Most containers it may hold.
    #[arg(long)]
    pub max_containers: Option<u32>,
    /// Default access mode of its containers: claim (default), public or token.
    #[arg(long, value_parser = parse_access)]
    pub access: Option<AccessMode>,
    /// Default idle timeout of its containers, in seconds (0: never).
    #[arg(long)]
    pub idle_timeout: Option<u32>,
    #[command(flatten)]
    pub quota: QuotaArgs,
}

pub fn run(cmd: ProjectsCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        ProjectsCommand::List { c } => {
            let projects = c.client()?.projects()?;
            print(c.json, &projects, &["ID", "NAME", "MAX CONTAINERS", "CREATED"], |p| {
                vec![
                    p.id.to_string(),
                    p.name.clone(),
                    p.max_containers.map(|m| m.to_string()).unwrap_or_else(|| "-".into()),
                    p.created_at.to_string(),
                ]
            });
        }
        ProjectsCommand::Create { name, settings: s, c } => {
            let req = CreateProject {
                name,
                max_containers: s.max_containers,
                default_access: s.access,
                default_idle_timeout_seconds: s.idle_timeout,
                quota: s.quota.quota(),
            };
            print_one(c.json, &c.client()?.create_project(&req)?);
        }
        ProjectsCommand::Update { id, settings: s, c } => {
            let req = UpdateProject {
                max_containers: s.max_containers,
                default_access: s.access,
                default_idle_timeout_seconds: s.idle_timeout,
                quota: s.quota.quota(),
            };
            print_one(c.json, &c.client()?.update_project(&id, &req)?);
        }
        ProjectsCommand::Get(Target { id, c }) => print_one(c.json, &c.client()?.project(&id)?),
        ProjectsCommand::Delete(Target { id, c }) => {
            c.client()?.delete_project(&id)?;
            if !c.json {
                println!("deleted project {id}");
            }
        }
        ProjectsCommand::Token { id, name, c } => {
            print_one(c.json, &c.client()?.create_token(&id, &CreateToken { name })?)
        }
        ProjectsCommand::Tokens(Target { id, c }) => {
            let tokens = c.client()?.tokens(&id)?;
            print(c.json, &tokens, &["ID", "NAME", "CREATED"], |t| {
                vec![t.id.to_string(), t.name.clone().unwrap_or_default(), t.created_at.to_string()]
            });
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

/// Parses an access mode flag.
pub fn parse_access(s: &str) -> anyhow::Result<AccessMode> {
    AccessMode::parse(s).ok_or_else(|| anyhow::anyhow!("`{s}` is not an access mode: use claim, public or token"))
}
