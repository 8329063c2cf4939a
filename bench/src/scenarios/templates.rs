//! Templates: copies of a template holding ~200 MB of files (copy →
//! first HTTP 200, bytes the pool grows per copy), and snapshot create and
//! restore times.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use cubby_model::{CopyContainer, CreateContainer, CreateSnapshot, ExecRequest};
use cubby_testkit::{Daemon, DaemonOptions, http_get};

use super::{Report, machine, ms};
use crate::stats::summarize;

pub fn pool_used(d: &Daemon) -> u64 {
    let st = nix_statvfs(&d.data_dir.join("pool"));
    st.0.saturating_sub(st.1)
}

fn nix_statvfs(path: &std::path::Path) -> (u64, u64) {
    let out = std::process::Command::new("stat").args(["-f", "-c", "%b %f %S"]).arg(path).output().expect("stat -f");
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<u64> = text.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    (v[0] * v[2], v[1] * v[2])
}

fn until_200(d: &Daemon, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while http_get(d.proxy_addr, url).status != 200 {
        anyhow::ensure!(Instant::now() < deadline, "{url} never answered 200");
        std::thread::sleep(Duration::from_millis(1));
    }
    Ok(())
}

pub fn run(bin: &str, copies: usize, template_mb: u32) -> anyhow::Result<Report> {
    let d = super::daemon(bin, DaemonOptions { pool_size: Some("16GiB".into()), ..Default::default() });
    let api = d.admin();
    let p = api.create_project(&cubby_model::CreateProject {
        name: "bench".into(),
        default_access: Some(cubby_model::AccessMode::Public),
        ..Default::default()
    })?;
    let t = api.create_container(p.id.as_str(), &CreateContainer { name: "template".into(), ..Default::default() })?;
    let files = template_mb.div_ceil(4);
    let fill = format!(
        "for i in $(seq 1 {files}); do dd if=/dev/urandom of=/data/blob-$i bs=1M count=4 2>/dev/null; done; sync"
    );
    let out = api.exec(
        t.id.as_str(),
        &ExecRequest {
            command: vec!["sh".into(), "-c".into(), fill],
            timeout_seconds: Some(600),
            ..Default::default()
        },
    )?;
    anyhow::ensure!(out.exit_code == 0, "filling the template failed: {}", out.stderr);
    let template_bytes = api.container(t.id.as_str())?.disk.map_or(0, |d| d.exclusive_bytes);
    // The first copy freezes the template into a layer; measure the rest.
    let first = api.copy_container(t.id.as_str(), &CopyContainer { name: "first".into(), ..Default::default() })?;
    until_200(&d, &first.url)?;

    let before = pool_used(&d);
    let mut copy_to_200 = Vec::new();
    let mut own_bytes = Vec::new();
    for i in 0..copies {
        let t0 = Instant::now();
        let c =
            api.copy_container(t.id.as_str(), &CopyContainer { name: format!("tenant-{i}"), ..Default::default() })?;
        until_200(&d, &c.url)?;
        copy_to_200.push(ms(t0.elapsed()));
        own_bytes.push(api.container(c.id.as_str())?.disk.map_or(0, |d| d.exclusive_bytes));
    }
    std::thread::sleep(Duration::from_secs(1));
    let after = pool_used(&d);

    let mut snap_create = Vec::new();
    for _ in 0..10 {
        let t0 = Instant::now();
        api.create_snapshot(first.id.as_str(), &CreateSnapshot::default())?;
        snap_create.push(ms(t0.elapsed()));
    }
    let snaps = api.snapshots(first.id.as_str())?;
    let mut restore = Vec::new();
    for s in snaps.iter().take(5) {
        let t0 = Instant::now();
        let c = api.restore_snapshot(first.id.as_str(), &s.name)?;
        until_200(&d, &c.url)?;
        restore.push(ms(t0.elapsed()));
    }

    let mut rows = BTreeMap::new();
    rows.insert(format!("copy of a {template_mb} MB template → first HTTP 200"), summarize(&copy_to_200));
    rows.insert("snapshot create (running container)".into(), summarize(&snap_create));
    rows.insert("snapshot restore (stop, swap, start) → first HTTP 200".into(), summarize(&restore));
    let mut figures = BTreeMap::new();
    figures.insert("template's own bytes".into(), format!("{:.1} MB", template_bytes as f64 / 1e6));
    figures.insert(
        "pool growth per copy (statfs used, incl. metadata)".into(),
        format!("{:.0} KiB", after.saturating_sub(before) as f64 / copies as f64 / 1024.0),
    );
    let mut own = own_bytes.clone();
    own.sort_unstable();
    figures.insert(
        "a copy's own bytes after its first request (median)".into(),
        format!("{} KiB", own[own.len() / 2] / 1024),
    );
    Ok(Report {
        title: format!("templates, {copies} copies of a {template_mb} MB template"),
        machine: machine(),
        rows,
        figures,
        notes: vec![
            "each copy: freeze check (sync + generation), layer reuse, new subvolume, veth, nft chains, runc create/start, readiness".into(),
            "pool growth = change of used blocks of the pool filesystem over all copies, divided by the copies".into(),
        ],
    })
}
