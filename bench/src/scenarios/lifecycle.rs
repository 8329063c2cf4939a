//! Lifecycle latencies: create, stop, start and delete, sequentially.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::{Report, machine, ms};
use crate::stats::summarize;
use anyhow::{Context, bail};
use cubby_model::CreateContainer;
use cubby_testkit::{Daemon, DaemonOptions, http_get};

/// Polls `url` through the proxy until it answers 200.
pub fn until_200(d: &Daemon, url: &str, within: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if http_get(d.proxy_addr, url).status == 200 {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{url} did not answer 200 within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

pub fn run(bin: &str, n: usize, compare_userns: bool) -> anyhow::Result<Report> {
    let mut notes = vec![
        "sequential, one client; containers from the built-in `minimal` image (busybox + demo app)".to_string(),
        "times are wall-clock on a shared machine: read them as indications, compare ratios within one run".to_string(),
    ];
    let mut figures = BTreeMap::new();
    let rows = if compare_userns {
        // Same process, one daemon after the other: user namespaces (the
        // default) against containers as host root (`--userns off`).
        let host_root = DaemonOptions { extra_args: vec!["--userns".into(), "off".into()], ..Default::default() };
        let off = lifecycle_rows(&super::daemon(bin, host_root), n)?;
        let on = lifecycle_rows(&super::daemon(bin, DaemonOptions::default()), n)?;
        for (key, row) in &on {
            if let Some(base) = off.get(key).filter(|b| b.median_ms > 0.0) {
                figures.insert(
                    format!("userns / host root, median: {key}"),
                    format!("{:.2}×", row.median_ms / base.median_ms),
                );
            }
        }
        notes.push("rows prefixed `host root:` ran with `--userns off`, the others with user namespaces".into());
        on.into_iter().chain(off.into_iter().map(|(k, v)| (format!("host root: {k}"), v))).collect()
    } else {
        lifecycle_rows(&super::daemon(bin, DaemonOptions::default()), n)?
    };
    Ok(Report { title: format!("lifecycle, n = {n}"), machine: machine(), rows, figures, notes })
}

type Rows = BTreeMap<String, crate::stats::Summary>;

fn lifecycle_rows(d: &Daemon, n: usize) -> anyhow::Result<Rows> {
    let api = d.admin();
    let project = api.create_project(&cubby_model::CreateProject {
        name: "bench".into(),
        default_access: Some(cubby_model::AccessMode::Public),
        ..Default::default()
    })?;

    // Warm-up: the first container pays for cold caches.
    let warm =
        api.create_container(project.id.as_str(), &CreateContainer { name: "warmup".into(), ..Default::default() })?;
    api.delete_container(warm.id.as_str())?;

    let mut create_call = Vec::new();
    let mut create_to_200 = Vec::new();
    let mut ids = Vec::new();
    for i in 0..n {
        let req = CreateContainer {
            name: format!("t{i}"),
            environment_vars: BTreeMap::from([("GREETING".into(), format!("tenant {i}"))]),
            ..Default::default()
        };
        let t0 = Instant::now();
        let c = api.create_container(project.id.as_str(), &req).context("create")?;
        create_call.push(ms(t0.elapsed()));
        until_200(d, &c.url, Duration::from_secs(30))?;
        create_to_200.push(ms(t0.elapsed()));
        ids.push((c.id.to_string(), c.url));
    }

    let mut stop = Vec::new();
    let mut start_to_200 = Vec::new();
    for (id, url) in &ids {
        let t0 = Instant::now();
        api.stop(id)?;
        stop.push(ms(t0.elapsed()));
        let t0 = Instant::now();
        api.start(id)?;
        until_200(d, url, Duration::from_secs(30))?;
        start_to_200.push(ms(t0.elapsed()));
    }

    let mut delete = Vec::new();
    for (id, _) in &ids {
        let t0 = Instant::now();
        api.delete_container(id)?;
        delete.push(ms(t0.elapsed()));
    }

    let mut rows = BTreeMap::new();
    rows.insert("create (API call, running + port open)".into(), summarize(&create_call));
    rows.insert("create → first HTTP 200 via proxy".into(), summarize(&create_to_200));
    rows.insert("stop (API call)".into(), summarize(&stop));
    rows.insert("start → first HTTP 200 via proxy".into(), summarize(&start_to_200));
    rows.insert("delete (API call)".into(), summarize(&delete));
    Ok(rows)
}
