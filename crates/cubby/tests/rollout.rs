//! End to end, as root: a rollout syncs every copy of a template a batch
//! at a time, each keeping its `/data`; a release whose app does not start
//! fails in the first batch, which is put back, and the tenants after it
//! are never touched; another project's token can neither start nor read
//! the rollout.

mod support;

use std::time::{Duration, Instant};

use cubby_model::{CopyContainer, CreateRollout, CreateToken, EventType, Rollout, RolloutStatus};
use support::{container, daemon, project, sh};

fn read(api: &cubby_client::Client, id: &str, path: &str) -> String {
    let (code, out, err) = sh(api, id, &format!("cat {path} 2>/dev/null || echo absent"));
    assert_eq!(code, 0, "{err}");
    out.trim().to_string()
}

/// Waits (at most 120 s) for the rollout to end.
fn finished(api: &cubby_client::Client, project: &str, id: &str) -> Rollout {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r = api.rollout(project, id).unwrap();
        if r.status != RolloutStatus::Running {
            return r;
        }
        assert!(Instant::now() < deadline, "the rollout did not end: {r:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_rollout_upgrades_every_copy_in_batches_and_stops_at_a_broken_release() {
    let Some(d) = daemon("a_rollout_upgrades_every_copy_in_batches_and_stops_at_a_broken_release") else { return };
    let api = d.admin();
    let acme = project(&api, "acme");
    let pid = acme.id.as_str();
    let template = container(&api, &acme, "template", "v1");
    let tid = template.id.to_string();
    let (code, _, err) = sh(&api, &tid, "mkdir -p /app && echo v1 > /app/version");
    assert_eq!(code, 0, "{err}");
    let copies: Vec<String> = (0..5)
        .map(|i| {
            let c =
                api.copy_container(&tid, &CopyContainer { name: format!("tenant-{i}"), ..Default::default() }).unwrap();
            let id = c.id.to_string();
            let (code, _, err) = sh(&api, &id, &format!("echo rows-of-{i} > /data/rows"));
            assert_eq!(code, 0, "{err}");
            id
        })
        .collect();
    let bystander = container(&api, &acme, "bystander", "not a copy").id.to_string();

    // Release v2: every copy gets it, two at a time, and keeps its rows.
    let (code, _, err) = sh(&api, &tid, "echo v2 > /app/version");
    assert_eq!(code, 0, "{err}");
    let req = CreateRollout { template: Some(template.id.clone()), batch_size: Some(2), ..Default::default() };
    let started = api.create_rollout(pid, &req).unwrap();
    assert_eq!((started.total, started.status), (5, RolloutStatus::Running), "{started:?}");
    let done = finished(&api, pid, started.id.as_str());
    assert_eq!(
        (done.status, done.upgraded.len(), done.failed.len(), done.pending),
        (RolloutStatus::Completed, 5, 0, 0)
    );
    for (i, c) in copies.iter().enumerate() {
        assert_eq!(read(&api, c, "/app/version"), "v2", "copy {i} upgraded");
        assert_eq!(read(&api, c, "/data/rows"), format!("rows-of-{i}"), "copy {i} kept its data");
    }
    assert_eq!(read(&api, &bystander, "/app/version"), "absent", "not a copy: not touched");
    let events = api.raw("GET", &format!("/api/v1/events?project_id={pid}&limit=500"), None).unwrap().json();
    let kinds: Vec<&str> = events["items"].as_array().unwrap().iter().filter_map(|e| e["type"].as_str()).collect();
    let count = |k: EventType| kinds.iter().filter(|t| **t == k.as_str()).count();
    assert_eq!(
        (count(EventType::RolloutStarted), count(EventType::ContainerUpgraded), count(EventType::RolloutFinished)),
        (1, 5, 1),
        "{kinds:?}"
    );

    // Release v3 does not start: the first batch of two fails and is put
    // back (the v2 rollout above, made the same way, is the control); the
    // three after it are never stopped.
    let (code, _, err) = sh(&api, &tid, &format!("echo v3 > /app/version && {}", support::BREAK_THE_APP));
    assert_eq!(code, 0, "{err}");
    let pids_before: Vec<Option<u32>> = copies.iter().map(|c| support::init_pid(&d, c)).collect();
    let broken = api.create_rollout(pid, &req).unwrap();
    let done = finished(&api, pid, broken.id.as_str());
    assert_eq!((done.status, done.upgraded.len(), done.failed.len(), done.pending), (RolloutStatus::Failed, 0, 2, 3));
    assert!(done.failed.iter().all(|f| f.message.contains("did not start")), "{:?}", done.failed);
    let failed: Vec<String> = done.failed.iter().map(|f| f.container_id.to_string()).collect();
    for (i, c) in copies.iter().enumerate() {
        assert_eq!(read(&api, c, "/app/version"), "v2", "copy {i} runs the last good release");
        assert_eq!(read(&api, c, "/data/rows"), format!("rows-of-{i}"));
        assert_eq!(api.container(c).unwrap().status, cubby_model::ContainerStatus::Running, "copy {i} runs");
        if !failed.contains(c) {
            assert_eq!(support::init_pid(&d, c), pids_before[i], "copy {i} was never stopped");
        }
    }

    // Another project's token: the project is not found for it.
    let zeta = project(&api, "zeta");
    let secret = api.create_token(zeta.id.as_str(), &CreateToken { name: Some("z".into()) }).unwrap().secret;
    let as_zeta = d.client(Some(&secret));
    assert!(api.rollout(pid, done.id.as_str()).is_ok(), "control: the admin reads it");
    let err = as_zeta.rollout(pid, done.id.as_str()).unwrap_err().to_string();
    assert!(err.contains("not_found"), "{err}");
    let err = as_zeta.create_rollout(pid, &req).unwrap_err().to_string();
    assert!(err.contains("not_found"), "{err}");
}
