//! End to end, as root: `GET /containers/{id}/stats` and `cubby stats`
//! show what each tenant uses, from its own cgroup and veth only.

mod support;

use cubby_model::ContainerStatus;
use support::{container, create_req, daemon, project, sh};

#[test]
fn stats_show_each_tenants_own_use() {
    let Some(d) = daemon("stats_show_each_tenants_own_use") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    // The busy tenant runs a CPU hog beside its app.
    let hog = cubby_model::CreateContainer {
        command: Some(vec!["sh".into(), "-c".into(), "while :; do :; done & exec /usr/local/bin/cubby-demo".into()]),
        ..create_req("busy", "busy")
    };
    let busy = api.create_container(p.id.as_str(), &hog).unwrap();
    let calm = container(&api, &p, "calm", "calm");
    let (id_busy, id_calm) = (busy.id.as_str(), calm.id.as_str());

    // Control first: running and limited as created.
    let before = api.stats(id_calm).unwrap();
    assert_eq!(before.status, ContainerStatus::Running);
    assert!(before.memory_bytes > 0 && before.memory_bytes < before.memory_limit_bytes, "{before:?}");
    assert!(before.pids >= 2, "init and the app: {before:?}");
    assert_eq!((before.memory_limit_bytes, before.pids_limit), (calm.limits.memory.0, calm.limits.pids));

    // The hog shows in its tenant's numbers, not in the other's.
    let (hot, cool) = (api.stats(id_busy).unwrap(), api.stats(id_calm).unwrap());
    assert!(hot.cpu_percent > 25.0, "a spinning shell uses the CPU: {hot:?}");
    assert!(cool.cpu_percent < hot.cpu_percent / 2.0, "the calm tenant does not pay for it: {cool:?} vs {hot:?}");
    assert!(hot.pids > before.pids, "the hog's shell counts in its pids: {hot:?}");

    // Packets one tenant sends count on its veth only (the host drops
    // them: a tenant cannot reach the host, but its veth saw them leave).
    let calm_tx = api.stats(id_calm).unwrap().net_tx_bytes;
    let busy_tx = hot.net_tx_bytes;
    let ping = "GW=$(ip route | awk '/default/ {print $3}'); ping -c 10 -i 0.2 -s 1000 -W 1 \"$GW\" >/dev/null 2>&1; echo sent";
    let (code, out, err) = sh(&api, id_busy, ping);
    assert_eq!((code, out.trim()), (0, "sent"), "{err}");
    let (hot, cool) = (api.stats(id_busy).unwrap(), api.stats(id_calm).unwrap());
    assert!(hot.net_tx_bytes >= busy_tx + 10 * 1000, "ten 1000-byte pings left the busy tenant: {hot:?}");
    assert!(cool.net_tx_bytes < calm_tx + 2000, "none left the calm one: {cool:?}");

    // Another project's token sees nothing; a stopped tenant uses nothing.
    let other = project(&api, "other");
    let token = api.create_token(other.id.as_str(), &Default::default()).unwrap().secret;
    let r = d.client(Some(&token)).raw("GET", &format!("/api/v1/containers/{id_busy}/stats"), None).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("container_not_found")));
    api.stop(id_busy).unwrap();
    let stopped = api.stats(id_busy).unwrap();
    assert_eq!(
        (stopped.status, stopped.cpu_percent, stopped.memory_bytes, stopped.pids, stopped.uptime_seconds),
        (ContainerStatus::Stopped, 0.0, 0, 0, 0)
    );

    // The CLI shows the same as a table.
    let (code, out, err) = d.cli(&["stats", id_calm, id_busy]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("CPU %") && out.contains(id_calm) && out.contains("stopped"), "{out}");
}
