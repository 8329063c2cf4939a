//! End to end, as root, on real btrfs: templates and tenants. Copies are
//! layered on the template's frozen state, snapshots restore and seed
//! copies, PATCH changes one tenant only, disk quotas hold, and OCI images
//! import with their layers and whiteouts.

mod support;

use std::collections::BTreeMap;

use cubby_model::{ByteSize, CopyContainer, CreateSnapshot, LimitsSpec, UpdateContainer, UpdateSnapshot};
use cubby_testkit::{Daemon, DaemonOptions, HostView, http_get};
use support::{BIN, container, daemon, init_pid, project, sh};

fn copy(d: &Daemon, source: &str, name: &str) -> cubby_model::Container {
    d.admin()
        .copy_container(source, &CopyContainer { name: name.into(), ..Default::default() })
        .unwrap_or_else(|e| panic!("copy {name}: {e}"))
}

fn lowers(d: &Daemon, id: &str) -> Vec<String> {
    let db = rusqlite::Connection::open(d.data_dir.join("cubby.db")).unwrap();
    let mut stmt =
        db.prepare("SELECT layer_id FROM container_layers WHERE container_id = ?1 ORDER BY position").unwrap();
    stmt.query_map([id], |r| r.get(0)).unwrap().map(Result::unwrap).collect()
}

fn layer_count(d: &Daemon) -> usize {
    std::fs::read_dir(d.data_dir.join("pool/layers")).unwrap().count()
}

#[test]
fn copies_share_the_template_and_stay_apart() {
    let Some(d) = daemon("copies_share_the_template_and_stay_apart") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let t = container(&api, &p, "template", "from the template");
    assert_eq!(sh(&api, t.id.as_str(), "echo seeded > /data/seed.txt").0, 0);
    assert_eq!(http_get(d.proxy_addr, &t.url).json()["visits"], 1);
    let layers_before = layer_count(&d);

    let a = copy(&d, t.id.as_str(), "tenant-a");
    let b = copy(&d, t.id.as_str(), "tenant-b");
    assert_eq!(a.status, cubby_model::ContainerStatus::Running);
    assert_eq!(a.command, t.command);
    assert_eq!(a.environment_vars.get("GREETING").map(String::as_str), Some("from the template"));
    assert_eq!(a.limits, t.limits);
    // One frozen layer serves both copies: the template did not change in between.
    assert_eq!(lowers(&d, a.id.as_str()), lowers(&d, b.id.as_str()));
    assert_eq!(lowers(&d, a.id.as_str()).len(), 2, "the frozen template, then the image");
    assert_eq!(layer_count(&d), layers_before + 1);
    // A copy costs kilobytes: its own subvolume starts empty.
    let a_disk = api.container(a.id.as_str()).unwrap().disk.expect("disk use is reported");
    assert!(a_disk.exclusive_bytes < 1 << 20, "a copy wrote {} bytes", a_disk.exclusive_bytes);

    // Both start with the template's data, and its visit counter.
    for c in [&a, &b] {
        assert_eq!(sh(&api, c.id.as_str(), "cat /data/seed.txt").1, "seeded\n");
        assert_eq!(http_get(d.proxy_addr, &c.url).json()["visits"], 2);
    }
    // Writes in A are seen neither in B nor in the template.
    assert_eq!(sh(&api, a.id.as_str(), "echo mine > /data/a.txt; echo changed > /data/seed.txt").0, 0);
    assert_ne!(sh(&api, b.id.as_str(), "cat /data/a.txt").0, 0);
    assert_ne!(sh(&api, t.id.as_str(), "cat /data/a.txt").0, 0);
    assert_eq!(sh(&api, b.id.as_str(), "cat /data/seed.txt").1, "seeded\n");
    assert_eq!(sh(&api, t.id.as_str(), "cat /data/seed.txt").1, "seeded\n");
    assert_eq!(http_get(d.proxy_addr, &t.url).json()["visits"], 2, "the template keeps working");

    // Once the template changes, the next copy gets a new frozen layer.
    let c = copy(&d, t.id.as_str(), "tenant-c");
    assert_ne!(lowers(&d, c.id.as_str())[0], lowers(&d, a.id.as_str())[0]);
    assert_eq!(http_get(d.proxy_addr, &c.url).json()["visits"], 3);

    // Copies of copies stack layers; past the depth limit they are flattened.
    let mut source = c.clone();
    for i in 0..9 {
        assert_eq!(sh(&api, source.id.as_str(), &format!("echo {i} > /data/gen")).0, 0);
        source = copy(&d, source.id.as_str(), &format!("gen-{i}"));
    }
    assert!(lowers(&d, source.id.as_str()).len() <= 8, "chain not flattened: {:?}", lowers(&d, source.id.as_str()));
    assert_eq!(sh(&api, source.id.as_str(), "cat /data/gen /data/seed.txt").1, "8\nseeded\n");
    assert_eq!(http_get(d.proxy_addr, &source.url).status, 200);
}

#[test]
fn copy_carries_rules_env_and_goes_to_the_right_project() {
    let Some(d) = daemon("copy_carries_rules_env_and_goes_to_the_right_project") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let other = project(&api, "other");
    let t = container(&api, &p, "template", "x");
    let rule = br#"{"action":"reject","protocol":"tcp","ports":"25","description":"no mail","position":0}"#;
    assert_eq!(
        api.raw("POST", &format!("/api/v1/containers/{}/firewall/egress", t.id), Some(rule)).unwrap().status,
        201
    );
    let net = br#"{"mode":"block"}"#;
    assert_eq!(api.raw("PUT", &format!("/api/v1/containers/{}/network", t.id), Some(net)).unwrap().status, 200);

    let req = CopyContainer {
        name: "copy".into(),
        target_project_id: Some(other.id.clone()),
        environment_vars: BTreeMap::from([("GREETING".into(), "merged".into()), ("EXTRA".into(), "1".into())]),
        start: Some(false),
        ..Default::default()
    };
    let c = api.copy_container(t.id.as_str(), &req).unwrap();
    assert_eq!(c.project_id, other.id);
    assert_eq!(c.status, cubby_model::ContainerStatus::Stopped);
    assert_eq!(c.environment_vars["GREETING"], "merged");
    assert_eq!(c.environment_vars["EXTRA"], "1");
    let fw = api.raw("GET", &format!("/api/v1/containers/{}/firewall", c.id), None).unwrap().json();
    assert_eq!(fw["egress"][0]["description"], "no mail", "{fw}");
    let net = api.raw("GET", &format!("/api/v1/containers/{}/network", c.id), None).unwrap().json();
    assert_eq!(net["mode"], "block");

    // Changing the copy's rules leaves the template's alone.
    let reset = api.raw("POST", &format!("/api/v1/containers/{}/firewall/reset", c.id), None).unwrap();
    assert_eq!(reset.status, 200);
    let tfw = api.raw("GET", &format!("/api/v1/containers/{}/firewall", t.id), None).unwrap().json();
    assert_eq!(tfw["egress"].as_array().unwrap().len(), 2);

    // Without copying rules the copy starts from the defaults.
    let bare = api
        .copy_container(
            t.id.as_str(),
            &CopyContainer {
                name: "bare".into(),
                copy_firewall_rules: Some(false),
                copy_network_rules: Some(false),
                start: Some(false),
                ..Default::default()
            },
        )
        .unwrap();
    let fw = api.raw("GET", &format!("/api/v1/containers/{}/firewall", bare.id), None).unwrap().json();
    assert_eq!(fw["egress"].as_array().unwrap().len(), 1);
    let net = api.raw("GET", &format!("/api/v1/containers/{}/network", bare.id), None).unwrap().json();
    assert_eq!(net["mode"], "open");

    // A project token cannot copy into a project it cannot see, nor from one.
    let token = api.create_token(p.id.as_str(), &Default::default()).unwrap();
    let scoped = d.client(Some(&token.secret));
    let err = scoped
        .copy_container(
            t.id.as_str(),
            &CopyContainer { name: "x".into(), target_project_id: Some(other.id.clone()), ..Default::default() },
        )
        .unwrap_err();
    assert_eq!(err.code(), Some("project_not_found"));
    let err =
        scoped.copy_container(c.id.as_str(), &CopyContainer { name: "y".into(), ..Default::default() }).unwrap_err();
    assert_eq!(err.code(), Some("container_not_found"));
    // Control: the same token copies within its own project.
    let own = scoped
        .copy_container(t.id.as_str(), &CopyContainer { name: "z".into(), start: Some(false), ..Default::default() })
        .unwrap();
    assert_eq!(own.project_id, p.id);

    // max_containers is enforced for copies too.
    let small = api
        .create_project(&cubby_model::CreateProject {
            name: "small".into(),
            max_containers: Some(1),
            default_access: Some(cubby_model::AccessMode::Public),
            ..Default::default()
        })
        .unwrap();
    let first = CopyContainer {
        name: "one".into(),
        target_project_id: Some(small.id.clone()),
        start: Some(false),
        ..Default::default()
    };
    api.copy_container(t.id.as_str(), &first).unwrap();
    let second = CopyContainer { name: "two".into(), ..first };
    assert_eq!(api.copy_container(t.id.as_str(), &second).unwrap_err().code(), Some("limit_reached"));
}

#[test]
fn snapshots_restore_seed_copies_and_expire() {
    let Some(d) = cubby_testkit::require_root("snapshots_restore_seed_copies_and_expire").then(|| {
        Daemon::start_with(
            BIN,
            DaemonOptions { extra_args: vec!["--snapshot-expiry-interval".into(), "1".into()], ..Default::default() },
        )
    }) else {
        return;
    };
    let api = d.admin();
    let p = project(&api, "acme");
    let c = container(&api, &p, "app", "x");
    assert_eq!(sh(&api, c.id.as_str(), "echo before > /data/state").0, 0);
    let snap = api
        .create_snapshot(c.id.as_str(), &CreateSnapshot { alias: Some("before-change".into()), expiry_days: None })
        .unwrap();
    assert!(snap.name.starts_with("snap-"));
    assert!(snap.size_bytes.unwrap() > 0);
    assert_eq!(api.snapshot(c.id.as_str(), "before-change").unwrap().name, snap.name);

    assert_eq!(sh(&api, c.id.as_str(), "echo after > /data/state; echo new > /data/extra").0, 0);
    let restored = api.restore_snapshot(c.id.as_str(), "before-change").unwrap();
    assert_eq!(restored.status, cubby_model::ContainerStatus::Running);
    assert_eq!(sh(&api, c.id.as_str(), "cat /data/state").1, "before\n");
    assert_ne!(sh(&api, c.id.as_str(), "cat /data/extra").0, 0, "the change is gone");
    assert_eq!(http_get(d.proxy_addr, &restored.url).status, 200);

    // A copy from the snapshot's alias has the snapshot's state.
    assert_eq!(sh(&api, c.id.as_str(), "echo later > /data/state").0, 0);
    let from_snap = api
        .copy_container(
            c.id.as_str(),
            &CopyContainer {
                name: "from-snap".into(),
                source_snapshot: Some("before-change".into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(sh(&api, from_snap.id.as_str(), "cat /data/state").1, "before\n");

    // Aliases can be renamed.
    api.update_snapshot(c.id.as_str(), &snap.name, &UpdateSnapshot { alias: Some("golden".into()) }).unwrap();
    assert!(api.snapshot(c.id.as_str(), "golden").is_ok());
    assert_eq!(api.snapshot(c.id.as_str(), "before-change").unwrap_err().code(), Some("snapshot_not_found"));

    // A snapshot with an expiry disappears on its own.
    api.create_snapshot(
        c.id.as_str(),
        &CreateSnapshot { alias: Some("short".into()), expiry_days: Some(2.0 / 86_400.0) },
    )
    .unwrap();
    assert_eq!(api.snapshots(c.id.as_str()).unwrap().len(), 2);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while api.snapshots(c.id.as_str()).unwrap().len() == 2 {
        assert!(std::time::Instant::now() < deadline, "the expired snapshot is still there");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(api.snapshot(c.id.as_str(), "golden").is_ok(), "the other one stays");

    // The cap on snapshots holds, and deletion works by alias.
    api.update_container(c.id.as_str(), &UpdateContainer { max_snapshots: Some(1), ..Default::default() }).unwrap();
    let err = api.create_snapshot(c.id.as_str(), &CreateSnapshot::default()).unwrap_err();
    assert_eq!(err.code(), Some("limit_reached"));
    api.delete_snapshot(c.id.as_str(), "golden").unwrap();
    assert!(api.snapshots(c.id.as_str()).unwrap().is_empty());
    // The copy made from it keeps working: its layer lives on.
    assert_eq!(sh(&api, from_snap.id.as_str(), "cat /data/state").1, "before\n");
}

#[test]
fn patch_changes_one_tenant_and_quotas_hold() {
    let Some(d) = daemon("patch_changes_one_tenant_and_quotas_hold") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let t = container(&api, &p, "template", "x");
    let a = copy(&d, t.id.as_str(), "a");
    let b = copy(&d, t.id.as_str(), "b");

    let req = UpdateContainer {
        environment_vars: BTreeMap::from([("GREETING".into(), None), ("NEW".into(), Some("yes".into()))]),
        limits: Some(LimitsSpec {
            memory: Some(ByteSize(200 << 20)),
            pids: Some(100),
            disk: Some(ByteSize(8 << 20)),
            cpu: Some(0.5),
        }),
        restart: Some(true),
        ..Default::default()
    };
    let updated = api.update_container(a.id.as_str(), &req).unwrap();
    assert!(!updated.environment_vars.contains_key("GREETING"));
    assert_eq!(updated.limits.memory, ByteSize(200 << 20));
    assert_eq!(updated.disk.unwrap().limit_bytes, Some(8 << 20));
    let env = sh(&api, a.id.as_str(), "env").1;
    assert!(env.contains("NEW=yes") && !env.contains("GREETING="), "{env}");
    let cg = |id: &str, file: &str| {
        std::fs::read_to_string(format!("/sys/fs/cgroup/memory/{}/{id}/{file}", d.prefix)).unwrap().trim().to_string()
    };
    assert_eq!(cg(a.id.as_str(), "memory.limit_in_bytes"), (200u64 << 20).to_string());
    // B and the template are untouched.
    let b_now = api.container(b.id.as_str()).unwrap();
    assert_eq!(b_now.environment_vars["GREETING"], "x");
    assert_eq!(b_now.limits, t.limits);
    assert_eq!(cg(b.id.as_str(), "memory.limit_in_bytes"), t.limits.memory.0.to_string());
    assert!(sh(&api, b.id.as_str(), "env").1.contains("GREETING=x"));

    // Limits apply live, without a restart.
    let live = UpdateContainer {
        limits: Some(LimitsSpec { memory: Some(ByteSize(300 << 20)), ..Default::default() }),
        ..Default::default()
    };
    api.update_container(a.id.as_str(), &live).unwrap();
    assert_eq!(cg(a.id.as_str(), "memory.limit_in_bytes"), (300u64 << 20).to_string());

    // Writing past the disk limit fails inside A only.
    let (code, _, err) = sh(&api, a.id.as_str(), "dd if=/dev/urandom of=/data/fill bs=1M count=32");
    assert_ne!(code, 0, "A wrote past its quota");
    assert!(err.contains("quota") || err.contains("space"), "{err}");
    let (code, _, err) = sh(&api, b.id.as_str(), "dd if=/dev/urandom of=/data/fill bs=1M count=32 2>&1; sync");
    assert_eq!(code, 0, "B is not limited: {err}");
    assert!(api.container(b.id.as_str()).unwrap().disk.unwrap().exclusive_bytes >= 32 << 20);
    // A limit below what is used is refused.
    let below = UpdateContainer {
        limits: Some(LimitsSpec { disk: Some(ByteSize(1 << 20)), ..Default::default() }),
        ..Default::default()
    };
    assert_eq!(api.update_container(b.id.as_str(), &below).unwrap_err().code(), Some("invalid_request"));

    // The quota cannot be escaped with a nested subvolume: the tenant only
    // ever sees its overlay, which has no btrfs ioctls. (Its root is
    // mounted in its own mount namespace only: reach it through its init.)
    let pid = init_pid(&d, a.id.as_str()).expect("A runs");
    let root = std::path::PathBuf::from(format!("/proc/{pid}/root"));
    assert!(root.join("data").is_dir(), "the container's /data is reachable from the host through its init");
    // Control: the same call makes a subvolume on the pool itself.
    let probe = d.data_dir.join("pool/tmp/probe-subvolume");
    libbtrfs_create(&probe).expect("control: libbtrfs creates a subvolume on the pool");
    cubby_storage::Btrfs::delete_subvolume(&cubby_storage::LibBtrfs::default(), &probe).unwrap();
    let created = libbtrfs_create(&root.join("data/escape"));
    assert!(created.is_err(), "a subvolume was created through the container's root filesystem");

    // Renaming moves the URL.
    let renamed = api
        .update_container(a.id.as_str(), &UpdateContainer { name: Some("renamed".into()), ..Default::default() })
        .unwrap();
    assert!(renamed.url.contains("renamed--acme"));
    // (`/healthz`: A's disk is full, so the page that counts a visit
    // answers 500, as it should when its write fails.)
    assert_eq!(http_get(d.proxy_addr, &format!("{}/healthz", renamed.url)).status, 200);
    assert_eq!(http_get(d.proxy_addr, &renamed.url).status, 500);
    assert_eq!(http_get(d.proxy_addr, &a.url).status, 404);
}

fn libbtrfs_create(path: &std::path::Path) -> Result<(), String> {
    use cubby_storage::Btrfs;
    cubby_storage::LibBtrfs::default().create_subvolume(path).map_err(|e| e.to_string())
}

#[test]
fn page_cache_is_shared_by_copies() {
    let Some(d) = daemon("page_cache_is_shared_by_copies") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let t = container(&api, &p, "template", "x");
    assert_eq!(sh(&api, t.id.as_str(), "dd if=/dev/urandom of=/data/big bs=1M count=64 2>/dev/null").0, 0);
    api.stop(t.id.as_str()).unwrap();
    let a = copy(&d, t.id.as_str(), "a");
    let b = copy(&d, t.id.as_str(), "b");
    let cache = |id: &str| -> u64 {
        let stat = std::fs::read_to_string(format!("/sys/fs/cgroup/memory/{}/{id}/memory.stat", d.prefix)).unwrap();
        stat.lines().find_map(|l| l.strip_prefix("cache ")).unwrap().trim().parse().unwrap()
    };
    let (a0, b0) = (cache(a.id.as_str()), cache(b.id.as_str()));
    assert_eq!(sh(&api, a.id.as_str(), "cat /data/big > /dev/null").0, 0);
    let a1 = cache(a.id.as_str());
    assert_eq!(sh(&api, b.id.as_str(), "cat /data/big > /dev/null").0, 0);
    let b1 = cache(b.id.as_str());
    eprintln!("page cache charged: A {} MiB, B {} MiB", (a1 - a0) >> 20, b1.saturating_sub(b0) >> 20);
    assert!(a1 - a0 >= 48 << 20, "A's read of 64 MiB charged only {} bytes", a1 - a0);
    assert!(b1.saturating_sub(b0) < 8 << 20, "B read the same file again into the cache: +{} bytes", b1 - b0);
}

#[test]
fn deleting_forgets_snapshots_layers_and_quotas() {
    let Some(d) = daemon("deleting_forgets_snapshots_layers_and_quotas") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let before = HostView::of(&d);
    let layers_before = layer_count(&d);
    let qgroups = || -> usize {
        let fsid = std::fs::read_dir("/sys/fs/btrfs")
            .unwrap()
            .flatten()
            .find(|e| {
                std::fs::read_dir(e.path().join("devices")).is_ok_and(|mut devs| {
                    let pool = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
                    let source = pool
                        .lines()
                        .find(|l| l.contains(&format!(" {} ", d.data_dir.join("pool").display())))
                        .and_then(|l| l.split(" - ").nth(1))
                        .and_then(|r| r.split(' ').nth(1))
                        .unwrap_or("")
                        .trim_start_matches("/dev/")
                        .to_string();
                    devs.any(|x| x.is_ok_and(|x| x.file_name().to_string_lossy() == source))
                })
            })
            .unwrap()
            .path();
        std::fs::read_dir(fsid.join("qgroups"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("0_"))
            .count()
    };
    let q_before = qgroups();

    let t = container(&api, &p, "template", "x");
    sh(&api, t.id.as_str(), "echo tenant-secret > /data/secret");
    let a = copy(&d, t.id.as_str(), "a");
    api.create_snapshot(t.id.as_str(), &CreateSnapshot { alias: Some("s".into()), expiry_days: None }).unwrap();
    api.create_snapshot(a.id.as_str(), &CreateSnapshot::default()).unwrap();
    assert!(layer_count(&d) > layers_before);

    // Deleting the template keeps the copy working (it needs the frozen layer).
    api.delete_container(t.id.as_str()).unwrap();
    assert_eq!(sh(&api, a.id.as_str(), "cat /data/secret").1, "tenant-secret\n");
    assert_eq!(http_get(d.proxy_addr, &a.url).status, 200);

    api.delete_container(a.id.as_str()).unwrap();
    assert_eq!(layer_count(&d), layers_before, "layers nothing uses any more are gone");
    assert_eq!(HostView::settled(&d), before);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while qgroups() > q_before {
        assert!(
            std::time::Instant::now() < deadline,
            "qgroups of deleted subvolumes remain: {} > {q_before}",
            qgroups()
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let db = std::fs::read(d.data_dir.join("cubby.db")).unwrap();
    assert!(!db.windows(13).any(|w| w == b"tenant-secret"));
}

#[test]
fn bad_template_input_gets_clear_errors() {
    let Some(d) = daemon("bad_template_input_gets_clear_errors") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let t = container(&api, &p, "template", "x");
    let before = HostView::of(&d);
    let path = |rest: &str| format!("/api/v1/containers/{}{rest}", t.id);
    let cases: Vec<(&str, &str, String, &str, u16, &str)> = vec![
        (
            "unknown snapshot",
            "POST",
            path("/copy"),
            r#"{"name":"c","source_snapshot":"nope"}"#,
            404,
            "snapshot_not_found",
        ),
        ("bad copy name", "POST", path("/copy"), r#"{"name":"Bad Name"}"#, 400, "invalid_request"),
        ("taken copy name", "POST", path("/copy"), r#"{"name":"template"}"#, 409, "container_already_exists"),
        (
            "unknown target project",
            "POST",
            path("/copy"),
            r#"{"name":"c","target_project_id":"pzzzzzzzzzzzz"}"#,
            404,
            "project_not_found",
        ),
        ("bad alias", "POST", path("/snapshots"), r#"{"alias":"Not OK"}"#, 400, "invalid_request"),
        ("negative expiry", "POST", path("/snapshots"), r#"{"expiry_days":-1}"#, 400, "invalid_request"),
        ("unknown snapshot restore", "PUT", path("/snapshots/nope"), "", 404, "snapshot_not_found"),
        ("unknown snapshot delete", "DELETE", path("/snapshots/nope"), "", 404, "snapshot_not_found"),
        ("tiny disk limit", "PATCH", path(""), r#"{"limits":{"disk":"10"}}"#, 400, "invalid_request"),
        ("bad env key", "PATCH", path(""), r#"{"environment_vars":{"1X":"y"}}"#, 400, "invalid_request"),
        ("unknown field", "PATCH", path(""), r#"{"colour":"blue"}"#, 400, "invalid_request"),
        ("zero snapshots", "PATCH", path(""), r#"{"max_snapshots":0}"#, 400, "invalid_request"),
    ];
    for (what, method, path, body, status, code) in cases {
        let r = api.raw(method, &path, (!body.is_empty()).then_some(body.as_bytes())).unwrap();
        assert_eq!(r.status, status, "{what}: {}", r.json());
        assert_eq!(r.json()["error"]["code"], code, "{what}: {}", r.json());
    }
    api.create_snapshot(t.id.as_str(), &CreateSnapshot { alias: Some("taken".into()), expiry_days: None }).unwrap();
    let dup = api.create_snapshot(t.id.as_str(), &CreateSnapshot { alias: Some("taken".into()), expiry_days: None });
    assert_eq!(dup.unwrap_err().code(), Some("snapshot_already_exists"));
    api.delete_snapshot(t.id.as_str(), "taken").unwrap();
    assert_eq!(HostView::settled(&d), before, "refused requests left something behind");
    assert_eq!(api.containers(None, None, 10).unwrap().items.len(), 1);
}
