//! Backups and rollouts at the scale of a box: a backup of many idle
//! tenants, whole and then incremental with nothing changed (the second
//! against the first in the same run); a rollout over many running copies
//! of a template against the same syncs made one by one, in the same run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cubby_model::{CopyContainer, CreateBackup, CreateContainer, CreateRollout, ExecRequest, RolloutStatus};
use cubby_testkit::DaemonOptions;

use super::{Report, machine};

pub fn run(bin: &str, idle: usize, copies: usize) -> anyhow::Result<Report> {
    // A /21: more tenants than a /24 has addresses.
    let options =
        DaemonOptions { pool_size: Some("16GiB".into()), subnet: Some("10.219.0.0/21".into()), ..Default::default() };
    let d = super::daemon(bin, options);
    let api = d.admin();
    let p = api.create_project(&cubby_model::CreateProject { name: "bench".into(), ..Default::default() })?;
    let pid = p.id.to_string();
    let mut figures = BTreeMap::new();

    // Idle tenants (stopped, as after their idle timeout), each with a row.
    for i in 0..idle {
        let req = CreateContainer { name: format!("idle-{i}"), start: Some(false), ..Default::default() };
        api.create_container(&pid, &req)?;
    }
    let dir = std::env::temp_dir().join(format!("cubby-bench-backups-{}", d.prefix));
    let to = CreateBackup { to: Some(dir.display().to_string()) };
    let t0 = Instant::now();
    let whole = api.backup(&to)?;
    let whole_s = t0.elapsed().as_secs_f64();
    let t0 = Instant::now();
    let again = api.backup(&to)?;
    let again_s = t0.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    anyhow::ensure!(again.streams_written == 0, "nothing changed, yet streams were written: {again:?}");
    figures.insert(
        format!("1 backup of {idle} idle tenants, whole: s | MiB written"),
        format!("{whole_s:.2} | {:.1}", whole.bytes_written as f64 / f64::from(1 << 20)),
    );
    figures.insert(
        format!("2 backup of {idle} idle tenants, nothing changed: s | KiB written"),
        format!("{again_s:.2} | {:.0}", again.bytes_written as f64 / 1024.0),
    );
    figures.insert("incremental / whole backup time".into(), format!("{:.3}", again_s / whole_s));
    for c in api.containers(Some(&pid), None, 500)?.items {
        api.delete_container(c.id.as_str())?;
    }

    // A template and its running copies.
    let template = api.create_container(&pid, &CreateContainer { name: "template".into(), ..Default::default() })?;
    let tid = template.id.to_string();
    let release = |v: u32| -> anyhow::Result<()> {
        let req = ExecRequest {
            command: vec!["sh".into(), "-c".into(), format!("mkdir -p /app && echo v{v} > /app/version")],
            ..Default::default()
        };
        anyhow::ensure!(api.exec(&tid, &req)?.exit_code == 0, "writing release v{v} failed");
        Ok(())
    };
    release(1)?;
    let mut ids = Vec::with_capacity(copies);
    for i in 0..copies {
        ids.push(api.copy_container(&tid, &CopyContainer { name: format!("copy-{i}"), ..Default::default() })?.id);
    }

    // The baseline: each copy synced by its own call, one after another.
    release(2)?;
    let t0 = Instant::now();
    for id in &ids {
        api.sync_container(id.as_str())?;
    }
    let one_by_one_s = t0.elapsed().as_secs_f64();

    // The rollout, in batches of 10.
    release(3)?;
    let req = CreateRollout { template: Some(template.id.clone()), batch_size: Some(10), ..Default::default() };
    let t0 = Instant::now();
    let mut rollout = api.create_rollout(&pid, &req)?;
    while rollout.status == RolloutStatus::Running {
        std::thread::sleep(Duration::from_millis(20));
        rollout = api.rollout(&pid, rollout.id.as_str())?;
    }
    let rollout_s = t0.elapsed().as_secs_f64();
    anyhow::ensure!(rollout.upgraded.len() == copies, "the rollout did not upgrade every copy: {rollout:?}");
    figures.insert(
        format!("3 {copies} running copies synced one by one: s | tenants/s"),
        format!("{one_by_one_s:.2} | {:.1}", copies as f64 / one_by_one_s),
    );
    figures.insert(
        format!("4 rollout of {copies} running copies, batches of 10: s | tenants/s"),
        format!("{rollout_s:.2} | {:.1}", copies as f64 / rollout_s),
    );
    figures.insert("rollout / one-by-one throughput".into(), format!("{:.2}", one_by_one_s / rollout_s));
    for c in api.containers(Some(&pid), None, 500)?.items {
        api.delete_container(c.id.as_str())?;
    }
    Ok(Report {
        title: format!("upgrades: backup of {idle} idle tenants, rollout of {copies} copies"),
        machine: machine(),
        rows: BTreeMap::new(),
        figures,
        notes: vec![
            "each tenant's step in a sync or rollout: a snapshot, a stop, the swap, a start that waits for its port \
             (the readiness check), the snapshot deleted"
                .into(),
            "the backup directory is on the same disk as the pool here; on another disk the whole backup is bound by \
             that disk"
                .into(),
        ],
    })
}
