//! `cubby doctor`: reports drift between one daemon instance's database and
//! the host, and with `--fix` removes the orphans. Exits 0 only when it
//! finds no drift (after fixing, when asked to fix).

use anyhow::Context;
use clap::Args;
use cubby_core::doctor::{self, Fix};

/// Flags of `cubby doctor`.
#[derive(Debug, Clone, Args)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub instance: crate::host::InstanceArgs,
    /// Remove the orphans found.
    #[arg(long)]
    pub fix: bool,
    /// Print the drift as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: DoctorArgs) -> anyhow::Result<std::process::ExitCode> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(doctor(args))
}

async fn doctor(args: DoctorArgs) -> anyhow::Result<std::process::ExitCode> {
    let layout = args.instance.layout()?;
    let db = layout.data_dir.join("cubby.db");
    anyhow::ensure!(db.exists(), "no database at {}: is --data-dir right?", db.display());
    let store = cubby_store::SqliteStore::open(&db).context("opening the state database")?;
    let host = args.instance.host(&layout)?;
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
                serde_json::json!({"kind": d.kind.as_str(), "subject": d.subject, "detail": d.detail, "fix": fix})
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
