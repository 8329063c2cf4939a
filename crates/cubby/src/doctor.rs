//! `cubby doctor`: reports drift between one daemon instance's database and
//! the host, and with `--fix` removes the orphans. Exits 0 only when it
//! finds no drift (after fixing, when asked to fix).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use cubby_core::doctor::{self, Fix, Layout};

/// Flags of `cubby doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    /// The daemon's data dir.
    #[arg(long, default_value = "/var/lib/cubby", env = "CUBBY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// The daemon's prefix.
    #[arg(long, default_value = "cubby")]
    pub prefix: String,
    /// The daemon's runtime files (default /run/<prefix>).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// OCI runtime binary.
    #[arg(long, default_value = "runc")]
    pub runtime: PathBuf,
    /// Where cgroupfs is mounted.
    #[arg(long, default_value = "/sys/fs/cgroup")]
    pub cgroup_root: PathBuf,
    /// Where proc is mounted.
    #[arg(long, default_value = "/proc")]
    pub proc_root: PathBuf,
    /// Remove the orphans found.
    #[arg(long)]
    pub fix: bool,
    /// Print the drift as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: DoctorArgs) -> anyhow::Result<std::process::ExitCode> {
    cubby_core::Config::check_prefix(&args.prefix).map_err(anyhow::Error::msg)?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(doctor(args))
}

async fn doctor(args: DoctorArgs) -> anyhow::Result<std::process::ExitCode> {
    let layout = Layout::new(&args.prefix, args.data_dir.clone(), args.run_dir.clone());
    let db = args.data_dir.join("cubby.db");
    anyhow::ensure!(db.exists(), "no database at {}: is --data-dir right?", db.display());
    let store = cubby_store::SqliteStore::open(&db).context("opening the state database")?;
    let host = crate::host::real(&args.proc_root, &args.runtime, &layout, &args.cgroup_root)?;
    let mut drift = doctor::inspect(&layout, &store, &host).await.context("inspecting")?;
    if args.fix && !drift.is_empty() {
        let removed = doctor::repair(&layout, &host, &drift).await.context("repairing")?;
        eprintln!("removed {removed} orphans");
        drift = doctor::inspect(&layout, &store, &host).await.context("inspecting again")?;
    }
    if args.json {
        let items: Vec<serde_json::Value> = drift
            .iter()
            .map(|d| {
                let fix = match &d.fix {
                    Fix::Advice(a) => a.clone(),
                    Fix::Remove(_) => "remove (`cubby doctor --fix`)".into(),
                };
                serde_json::json!({"kind": d.kind, "subject": d.subject, "detail": d.detail, "fix": fix})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&items)?);
    } else if drift.is_empty() {
        println!("no drift: the database and the host agree");
    } else {
        for d in &drift {
            let fix = match &d.fix {
                Fix::Advice(a) => a.clone(),
                _ => "removed by `cubby doctor --fix`".into(),
            };
            println!("{:<8} {:<40} {} — {fix}", d.kind, d.subject, d.detail);
        }
    }
    Ok(if drift.is_empty() { std::process::ExitCode::SUCCESS } else { std::process::ExitCode::FAILURE })
}
