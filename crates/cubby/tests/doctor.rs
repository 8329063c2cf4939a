//! End to end, as root: `cubby doctor` finds drift between the database
//! and the host (orphans, missing pieces), exits non-zero while any
//! remains, and `--fix` removes the orphans.

mod support;

use std::process::Command;

use support::{container, daemon, doctor, project};

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run a host command");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn doctor_reports_drift_and_fixes_orphans() {
    let Some(d) = daemon("doctor_reports_drift_and_fixes_orphans") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "x");
    let b = container(&api, &p, "b", "y");
    api.stop(b.id.as_str()).unwrap();
    let (code, out) = doctor(&d, &[]);
    assert_eq!(code, 0, "a fresh daemon has no drift:\n{out}");
    assert!(out.contains("no drift"));

    // Debris of the kinds a crash leaves, and a missing piece.
    let pool = d.data_dir.join("pool");
    run(Command::new("btrfs").args(["subvolume", "create"]).arg(pool.join("containers/cstray0000001")));
    let stray_link = format!("{}-999", d.prefix);
    let peer = format!("z{}", d.prefix);
    run(Command::new("ip").args(["link", "add", &stray_link, "type", "veth", "peer", "name", &peer]));
    let stray_ns = d.run_dir.join("netns").join("cstray0000002");
    std::fs::write(&stray_ns, b"").unwrap();
    run(Command::new("mount").args(["--bind", "/proc/self/ns/net"]).arg(&stray_ns));
    let b_veth = format!("{}-{}", d.prefix, b.address.rsplit('.').next().unwrap().parse::<u32>().unwrap() - 1);
    run(Command::new("ip").args(["link", "del", &b_veth]));

    let (code, out) = doctor(&d, &[]);
    assert_eq!(code, 1, "drift makes doctor fail:\n{out}");
    for needle in ["containers/cstray0000001", &stray_link, "network namespace cstray0000002", b.id.as_str()] {
        assert!(out.contains(needle), "doctor does not report `{needle}`:\n{out}");
    }
    assert!(!out.contains(a.id.as_str()), "the healthy container is not drift:\n{out}");
    let (_, json) = doctor(&d, &["--json"]);
    let items: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
    assert_eq!(items.as_array().unwrap().len(), 4, "{items}");

    // --fix removes the orphans; the missing veth needs the container restarted.
    let (code, out) = doctor(&d, &["--fix"]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("removed 3 orphans") && out.contains(b.id.as_str()) && !out.contains("cstray"), "{out}");
    let started = api.start(b.id.as_str()).unwrap();
    assert_eq!(cubby_testkit::http_get(d.proxy_addr, &started.url).status, 200, "b is reattached");
    let (code, out) = doctor(&d, &[]);
    assert_eq!(code, 0, "{out}");
}
