//! End to end, as root: fault injection. The daemon is killed with SIGKILL
//! at chosen points inside create, copy, start, delete, snapshot, restore
//! and image import (the test-only `CUBBY_FAILPOINTS`). After a restart: no
//! debris on the host (`cubby doctor` agrees), no lost container, no
//! half-made one visible.

mod support;

use std::time::Duration;

use cubby_model::{CopyContainer, CreateSnapshot};
use cubby_testkit::{Daemon, HostView, http_get};
use support::{BIN, container, daemon, project, sh};

#[derive(Debug, Clone, Copy)]
enum Op {
    Create,
    Copy,
    Delete,
    Snapshot,
    Restore,
    Import,
}

const POINTS: [(&str, Op); 15] = [
    ("create.inserted", Op::Create),
    ("create.subvolume", Op::Create),
    ("create.connected", Op::Create),
    ("start.booted", Op::Create),
    ("copy.frozen", Op::Copy),
    ("copy.inserted", Op::Copy),
    ("delete.marked", Op::Delete),
    ("delete.forgotten", Op::Delete),
    ("delete.deferred", Op::Delete),
    ("snapshot.subvolume", Op::Snapshot),
    ("restore.staged", Op::Restore),
    ("restore.moved_aside", Op::Restore),
    ("restore.swapped", Op::Restore),
    ("image.published", Op::Import),
    ("image.layer_inserted", Op::Import),
];

/// A small rootfs tarball to import.
fn rootfs() -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Regular);
    h.set_mode(0o644);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(5);
    h.set_cksum();
    b.append_data(&mut h, "etc/motd", &b"hello"[..]).expect("append");
    b.into_inner().expect("tar")
}

#[test]
fn crashes_inside_operations_leave_nothing_half_made() {
    let Some(_) = daemon("crashes_inside_operations_leave_nothing_half_made").map(drop) else { return };
    let mut survived = Vec::new();
    for (point, op) in POINTS {
        let mut d = Daemon::start(BIN);
        let api = d.admin();
        let p = project(&api, "acme");
        let keep = container(&api, &p, "keep", "kept");
        assert_eq!(sh(&api, keep.id.as_str(), "echo precious > /data/file").0, 0);
        let victim = container(&api, &p, "victim", "v");
        if matches!(op, Op::Restore) {
            assert_eq!(sh(&api, victim.id.as_str(), "echo snapped > /data/state").0, 0);
            api.create_snapshot(victim.id.as_str(), &CreateSnapshot { alias: Some("s".into()), ..Default::default() })
                .unwrap();
            assert_eq!(sh(&api, victim.id.as_str(), "echo later > /data/state").0, 0);
        }
        let before = HostView::settled(&d);

        d.restart_with_env(&[("CUBBY_FAILPOINTS", point)]);
        let api = d.admin();
        let result = match op {
            Op::Create => api.create_container(p.id.as_str(), &support::create_req("fresh", "f")).map(|_| ()),
            Op::Copy => api
                .copy_container(victim.id.as_str(), &CopyContainer { name: "fresh".into(), ..Default::default() })
                .map(|_| ()),
            Op::Delete => api.delete_container(victim.id.as_str()),
            Op::Snapshot => api.create_snapshot(victim.id.as_str(), &CreateSnapshot::default()).map(|_| ()),
            Op::Restore => api.restore_snapshot(victim.id.as_str(), "s").map(|_| ()),
            Op::Import => api.import_image("fresh", std::io::Cursor::new(rootfs())).map(|_| ()),
        };
        assert!(result.is_err(), "{point}: the call answered although the daemon died");
        assert!(
            d.wait_exit(Duration::from_secs(10)).is_some(),
            "{point}: the failpoint did not kill the daemon (the call answered {result:?})"
        );

        d.restart_with_env(&[]);
        let api = d.admin();
        let names: Vec<String> =
            api.containers(Some(p.id.as_str()), None, 100).unwrap().items.into_iter().map(|c| c.name).collect();
        assert!(!names.contains(&"fresh".to_string()), "{point}: a half-made container is visible: {names:?}");
        assert!(names.contains(&"keep".to_string()), "{point}: a container was lost: {names:?}");
        let kept = api.container(keep.id.as_str()).unwrap();
        assert_eq!(http_get(d.proxy_addr, &kept.url).json()["greeting"], "kept", "{point}: keep does not answer");
        assert_eq!(sh(&api, keep.id.as_str(), "cat /data/file").1.trim(), "precious", "{point}: data lost");
        match op {
            Op::Delete => {
                // The delete had begun: it is finished, not left half-done.
                assert!(!names.contains(&"victim".to_string()), "{point}: a half-deleted container is visible");
                let host = HostView::settled(&d);
                assert!(
                    host.mentions(victim.id.as_str()).is_empty(),
                    "{point}: {:?}",
                    host.mentions(victim.id.as_str())
                );
            }
            Op::Restore => {
                // Finished once the new subvolume was in place, undone before.
                let v = api.container(victim.id.as_str()).unwrap();
                assert_eq!(http_get(d.proxy_addr, &v.url).status, 200, "{point}: victim does not answer");
                let want = if point == "restore.swapped" { "snapped" } else { "later" };
                assert_eq!(sh(&api, victim.id.as_str(), "cat /data/state").1.trim(), want, "{point}");
                assert_eq!(api.snapshots(victim.id.as_str()).unwrap().len(), 1, "{point}: the snapshot stays");
                assert_eq!(HostView::settled(&d), before, "{point}: debris on the host");
            }
            Op::Import => {
                // No image half-imported: not listed, its layer gone.
                let images: Vec<String> = api.images().unwrap().into_iter().map(|i| i.name).collect();
                assert!(!images.contains(&"fresh".to_string()), "{point}: a half-imported image: {images:?}");
                assert_eq!(HostView::settled(&d), before, "{point}: debris on the host");
            }
            _ => {
                assert!(names.contains(&"victim".to_string()), "{point}: {names:?}");
                assert!(api.snapshots(victim.id.as_str()).unwrap().is_empty(), "{point}: a half-made snapshot");
                let v = api.container(victim.id.as_str()).unwrap();
                assert_eq!(http_get(d.proxy_addr, &v.url).status, 200, "{point}: victim does not answer");
                assert_eq!(HostView::settled(&d), before, "{point}: debris on the host");
            }
        }
        let (code, report) = support::doctor(&d, &[]);
        assert_eq!(code, 0, "{point}: doctor finds drift:\n{report}");
        survived.push(point);
    }
    eprintln!("faults injected and survived: {}", survived.join(", "));
}

/// A daemon killed with SIGKILL in the middle of 30 concurrent copies can
/// be started again on the same API and proxy addresses: no child it made
/// (namespace holders are clones without exec) outlives it holding its
/// listening sockets. Everything listed afterwards works.
#[test]
fn a_crash_during_concurrent_copies_leaves_the_addresses_free() {
    let Some(mut d) = daemon("a_crash_during_concurrent_copies_leaves_the_addresses_free") else { return };
    d.keep_addresses();
    let (api_addr, proxy_addr) = (d.api_addr, d.proxy_addr);
    let api = d.admin();
    let p = project(&api, "acme");
    let template = container(&api, &p, "template", "t");
    assert_eq!(sh(&api, template.id.as_str(), "echo seed > /data/seed").0, 0);

    let copies: Vec<_> = (0..30)
        .map(|i| {
            let api = d.admin();
            let id = template.id.to_string();
            std::thread::spawn(move || {
                api.copy_container(&id, &CopyContainer { name: format!("copy{i}"), ..Default::default() })
            })
        })
        .collect();
    // Kill it once some copies have answered and others are in flight.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while copies.iter().filter(|c| c.is_finished()).count() < 5 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let answered = copies.iter().filter(|c| c.is_finished()).count();
    assert!((1..30).contains(&answered), "the kill must land mid-burst ({answered} of 30 answered)");
    d.stop_with(nix::sys::signal::Signal::SIGKILL);
    let made: Vec<String> =
        copies.into_iter().filter_map(|c| c.join().expect("copy thread").ok()).map(|c| c.name).collect();

    d.start_again();
    assert_eq!((d.api_addr, d.proxy_addr), (api_addr, proxy_addr), "it listens where it listened");
    let api = d.admin();
    let listed = api.containers(Some(p.id.as_str()), None, 100).unwrap().items;
    let names: Vec<&str> = listed.iter().map(|c| c.name.as_str()).collect();
    assert!(names.contains(&"template"), "{names:?}");
    for name in &made {
        assert!(names.contains(&name.as_str()), "copy {name} answered 201 but is gone: {names:?}");
    }
    for c in &listed {
        let c = api.container(c.id.as_str()).unwrap();
        assert_eq!(c.status, cubby_model::ContainerStatus::Running, "{} is {:?}", c.name, c.status);
        assert_eq!(http_get(d.proxy_addr, &c.url).status, 200, "{} does not answer", c.name);
        assert_eq!(sh(&api, c.id.as_str(), "cat /data/seed").1.trim(), "seed", "{} lost the template's data", c.name);
    }
    let (code, report) = support::doctor(&d, &[]);
    assert_eq!(code, 0, "doctor finds drift:\n{report}");
}
