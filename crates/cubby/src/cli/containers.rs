//! `cubby containers ...`, `cubby exec`, `cubby logs`

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::bail;
use clap::{Args, Subcommand};
use cubby_model::{
    AccessMode, AuthorizeRequest, ByteSize, CopyContainer, CreateContainer, ExecRequest, LimitsSpec, ProjectId,
    UpdateContainer,
};

use super::output::{print, print_one};
use super::projects::parse_access;
use super::{Connection, Target};

#[derive(Debug, Subcommand)]
pub enum ContainersCommand {
    /// List containers (all you can see, or one project's).
    List {
        #[arg(long)]
        project: Option<String>,
        #[command(flatten)]
        c: Connection,
    },
    /// Make a container and wait until its app answers.
    Create(CreateArgs),
    /// Show a container.
    Get(Target),
    /// Start a container.
    Start(Target),
    /// Stop a container.
    Stop(Target),
    /// Restart a container.
    Restart(Target),
    /// Delete a container and everything of it.
    Delete(Target),
    /// Copy a container (or one of its snapshots) into a new one.
    Copy(CopyArgs),
    /// Write a container's export archive (tar + zstd) to a file or stdout.
    Export {
        id: String,
        /// Where to write it (`-`: stdout).
        #[arg(long, short)]
        output: std::path::PathBuf,
        /// The whole root filesystem, not just the files above the image.
        #[arg(long, conflicts_with = "data_only")]
        full: bool,
        /// Only /data (a handover of the tenant's data; not importable).
        #[arg(long)]
        data_only: bool,
        /// Include environment values (left out by default).
        #[arg(long)]
        include_env: bool,
        /// Export this snapshot (name or alias) as it was.
        #[arg(long)]
        snapshot: Option<String>,
        #[command(flatten)]
        c: Connection,
    },
    /// Make a container in a project from an export archive.
    Import {
        /// Project id.
        project: String,
        /// The archive (`-`: stdin).
        file: std::path::PathBuf,
        /// Its name (the exported one's by default).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        c: Connection,
    },
    /// Change a container's env, limits, name, image or lowers.
    Update(UpdateArgs),
    /// Pull the template's newer files into a copy, keeping its /data.
    Sync(Target),
    /// Sign a claim and print the link that opens the container's URL.
    Authorize {
        id: String,
        /// Who it is for.
        #[arg(long)]
        subject: Option<String>,
        /// Lifetime in seconds (default 3600).
        #[arg(long)]
        ttl: Option<u32>,
        /// Open this port's URL.
        #[arg(long)]
        port: Option<u16>,
        #[command(flatten)]
        c: Connection,
    },
    /// Void every claim of the container signed so far.
    RevokeClaims(Target),
    /// Show a container's state transitions.
    Transitions(Target),
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// Project id.
    pub project: String,
    /// Container name.
    pub name: String,
    #[arg(long)]
    pub image: Option<String>,
    /// Env var, repeatable: --env GREETING=hello
    #[arg(long = "env", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    #[arg(long)]
    pub port: Option<u16>,
    #[command(flatten)]
    pub limits: LimitArgs,
    /// Access mode: claim, public or token (default: the project's).
    #[arg(long, value_parser = parse_access)]
    pub access: Option<AccessMode>,
    /// Do not start it on requests to its URL.
    #[arg(long)]
    pub no_autostart: bool,
    /// Stop it after this many seconds without traffic (0: never).
    #[arg(long)]
    pub idle_timeout: Option<u32>,
    /// Create it stopped.
    #[arg(long)]
    pub no_start: bool,
    /// Command and arguments, after `--`.
    #[arg(last = true)]
    pub command: Vec<String>,
    #[command(flatten)]
    pub c: Connection,
}

/// Resource limits; a container keeps those not given.
#[derive(Debug, Clone, Args)]
pub struct LimitArgs {
    /// CPU cores.
    #[arg(long)]
    pub cpu: Option<f64>,
    /// Memory, like 256MiB.
    #[arg(long, value_parser = |s: &str| ByteSize::parse(s))]
    pub memory: Option<ByteSize>,
    #[arg(long)]
    pub pids: Option<u32>,
    /// Disk limit, like 1GiB.
    #[arg(long, value_parser = |s: &str| ByteSize::parse(s))]
    pub disk: Option<ByteSize>,
}

impl LimitArgs {
    /// The limits given, if any.
    fn spec(&self) -> Option<LimitsSpec> {
        (self.cpu.is_some() || self.memory.is_some() || self.pids.is_some() || self.disk.is_some())
            .then_some(LimitsSpec { cpu: self.cpu, memory: self.memory, pids: self.pids, disk: self.disk })
    }
}

pub(super) fn parse_env(s: &str) -> anyhow::Result<(String, String)> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| anyhow::anyhow!("`{s}` is not KEY=VALUE"))
}

#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Source container id.
    pub source: String,
    /// Name of the copy.
    pub name: String,
    /// Project of the copy (default: the source's).
    #[arg(long)]
    pub project: Option<String>,
    /// Copy this snapshot (name or alias) instead of the current state.
    #[arg(long)]
    pub snapshot: Option<String>,
    /// Start from the default firewall rules, not the source's.
    #[arg(long)]
    pub no_firewall_rules: bool,
    /// Start from the default network rules, not the source's.
    #[arg(long)]
    pub no_network_rules: bool,
    /// Env var, repeatable: --env KEY=VALUE
    #[arg(long = "env", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Create it stopped.
    #[arg(long)]
    pub no_start: bool,
    #[command(flatten)]
    pub c: Connection,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Container id.
    pub id: String,
    /// New name (the URL follows).
    #[arg(long)]
    pub name: Option<String>,
    /// Set an env var, repeatable: --env KEY=VALUE
    #[arg(long = "env", value_parser = parse_env)]
    pub env: Vec<(String, String)>,
    /// Remove an env var, repeatable.
    #[arg(long = "unset")]
    pub unset: Vec<String>,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[arg(long)]
    pub max_snapshots: Option<u32>,
    #[arg(long, value_parser = parse_access)]
    pub access: Option<AccessMode>,
    /// Start on requests (true) or not (false).
    #[arg(long)]
    pub autostart: Option<bool>,
    #[arg(long)]
    pub idle_timeout: Option<u32>,
    /// Restart so env changes apply now.
    #[arg(long)]
    pub restart: bool,
    /// Move it onto this image, keeping its own files and /data.
    #[arg(long, conflicts_with = "rebase_on")]
    pub image: Option<String>,
    /// Move it onto this container's current state, keeping its own files
    /// and /data.
    #[arg(long)]
    pub rebase_on: Option<String>,
    #[command(flatten)]
    pub c: Connection,
}

#[derive(Debug, Args)]
pub struct ExecArgs {
    /// Container id.
    pub id: String,
    /// Seconds before the command is killed.
    #[arg(long)]
    pub timeout: Option<u32>,
    /// Command and arguments, after `--`.
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
    #[command(flatten)]
    pub c: Connection,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// Container id.
    pub id: String,
    /// Last bytes of output.
    #[arg(long, default_value_t = 65536)]
    pub tail: u64,
    #[command(flatten)]
    pub c: Connection,
}

fn show_list(c: &Connection, items: &[cubby_model::Container]) {
    print(c.json, items, &["ID", "NAME", "STATUS", "IMAGE", "URL"], |x| {
        vec![x.id.to_string(), x.name.clone(), x.status.as_str().to_string(), x.image.clone(), x.url.clone()]
    });
}

pub fn run(cmd: ContainersCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        ContainersCommand::List { project, c } => {
            let client = c.client()?;
            let mut all = Vec::new();
            let mut cursor = None;
            loop {
                let page = client.containers(project.as_deref(), cursor.as_deref(), 500)?;
                all.extend(page.items);
                match page.next_cursor {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            show_list(&c, &all);
        }
        ContainersCommand::Create(a) => {
            let limits = a.limits.spec();
            let req = CreateContainer {
                name: a.name,
                image: a.image,
                command: (!a.command.is_empty()).then_some(a.command),
                environment_vars: a.env.into_iter().collect::<BTreeMap<_, _>>(),
                port: a.port,
                limits,
                start: Some(!a.no_start),
                access: a.access,
                autostart: Some(!a.no_autostart),
                idle_timeout_seconds: a.idle_timeout,
            };
            print_one(a.c.json, &a.c.client()?.create_container(&a.project, &req)?);
        }
        ContainersCommand::Get(Target { id, c }) => print_one(c.json, &c.client()?.container(&id)?),
        ContainersCommand::Authorize { id, subject, ttl, port, c } => {
            let out = c.client()?.authorize(&id, &AuthorizeRequest { subject, ttl_seconds: ttl, port })?;
            if c.json {
                print_one(true, &out);
            } else {
                println!("{}", out.url);
            }
        }
        ContainersCommand::RevokeClaims(Target { id, c }) => {
            c.client()?.revoke_claims(&id)?;
            if !c.json {
                println!("revoked the claims of container {id}");
            }
        }
        ContainersCommand::Copy(a) => {
            let req = CopyContainer {
                name: a.name,
                target_project_id: a.project.as_deref().map(ProjectId::parse).transpose()?,
                source_snapshot: a.snapshot,
                copy_firewall_rules: Some(!a.no_firewall_rules),
                copy_network_rules: Some(!a.no_network_rules),
                environment_vars: a.env.into_iter().collect(),
                start: Some(!a.no_start),
            };
            print_one(a.c.json, &a.c.client()?.copy_container(&a.source, &req)?);
        }
        ContainersCommand::Export { id, output, full, data_only, include_env, snapshot, c } => {
            let mut query: Vec<String> =
                [(full, "full=true"), (data_only, "data_only=true"), (include_env, "include_env=true")]
                    .into_iter()
                    .filter(|(on, _)| *on)
                    .map(|(_, q)| q.to_string())
                    .collect();
            if let Some(name) = snapshot {
                // Names and aliases are plain, but a typo must not change the query.
                let escaped: String = name
                    .bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                            char::from(b).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect();
                query.push(format!("snapshot={escaped}"));
            }
            let client = c.client()?;
            let written = if output.as_os_str() == "-" {
                client.export_container(&id, &query.join("&"), &mut std::io::stdout().lock())?
            } else {
                let mut file = std::fs::File::create(&output)?;
                let n = client.export_container(&id, &query.join("&"), &mut file)?;
                file.sync_all()?;
                n
            };
            if output.as_os_str() != "-" && !c.json {
                eprintln!("wrote {written} bytes to {}", output.display());
            }
        }
        ContainersCommand::Import { project, file, name, c } => {
            let created = if file.as_os_str() == "-" {
                c.client()?.import_container(&project, name.as_deref(), std::io::stdin())?
            } else {
                c.client()?.import_container(&project, name.as_deref(), std::fs::File::open(&file)?)?
            };
            print_one(c.json, &created);
        }
        ContainersCommand::Sync(Target { id, c }) => print_one(c.json, &c.client()?.sync_container(&id)?),
        ContainersCommand::Update(a) => {
            let mut env: BTreeMap<String, Option<String>> = a.env.into_iter().map(|(k, v)| (k, Some(v))).collect();
            env.extend(a.unset.into_iter().map(|k| (k, None)));
            let limits = a.limits.spec();
            let req = UpdateContainer {
                name: a.name,
                environment_vars: env,
                limits,
                max_snapshots: a.max_snapshots,
                restart: Some(a.restart),
                access: a.access,
                autostart: a.autostart,
                idle_timeout_seconds: a.idle_timeout,
                image: a.image,
                rebase_on: a.rebase_on.as_deref().map(cubby_model::ContainerId::parse).transpose()?,
            };
            print_one(a.c.json, &a.c.client()?.update_container(&a.id, &req)?);
        }
        ContainersCommand::Start(Target { id, c }) => print_one(c.json, &c.client()?.start(&id)?),
        ContainersCommand::Stop(Target { id, c }) => print_one(c.json, &c.client()?.stop(&id)?),
        ContainersCommand::Restart(Target { id, c }) => print_one(c.json, &c.client()?.restart(&id)?),
        ContainersCommand::Delete(Target { id, c }) => {
            c.client()?.delete_container(&id)?;
            if !c.json {
                println!("deleted container {id}");
            }
        }
        ContainersCommand::Transitions(Target { id, c }) => {
            let t = c.client()?.transitions(&id)?;
            print(c.json, &t, &["AT", "FROM", "TO", "TRIGGER", "TOOK"], |t| {
                vec![
                    t.at.to_string(),
                    t.from.map(|s| s.as_str()).unwrap_or("-").to_string(),
                    t.to.as_str().to_string(),
                    t.trigger.as_str().to_string(),
                    format!("{} ms", t.duration_ms),
                ]
            });
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}

pub fn exec(a: ExecArgs) -> anyhow::Result<std::process::ExitCode> {
    let req = ExecRequest { command: a.command, environment_vars: BTreeMap::new(), timeout_seconds: a.timeout };
    let out = a.c.client()?.exec(&a.id, &req)?;
    if a.c.json {
        print_one(true, &out);
        return Ok(std::process::ExitCode::SUCCESS);
    }
    std::io::stdout().write_all(out.stdout.as_bytes())?;
    std::io::stderr().write_all(out.stderr.as_bytes())?;
    let code = u8::try_from(out.exit_code).unwrap_or(1);
    Ok(std::process::ExitCode::from(code))
}

pub fn logs(a: LogsArgs) -> anyhow::Result<std::process::ExitCode> {
    if a.tail == 0 {
        bail!("--tail must be at least 1");
    }
    print!("{}", a.c.client()?.logs(&a.id, a.tail)?);
    Ok(std::process::ExitCode::SUCCESS)
}
