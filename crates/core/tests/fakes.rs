//! The core against the named fakes of every host subsystem: no root, no
//! kernel. These check the core's own logic (scoping, rollback, cleanup);
//! the end-to-end tests in the `cubby` crate check the real parts.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use cubby_core::{Caller, Config, Defaults, Helpers, Host, Platform};
use cubby_model::{ContainerStatus, CreateContainer, CreateProject, Image, ImageSource, ProjectId};
use cubby_network::{FakeNetlink, FakeNftables};
use cubby_runtime::{FakeCgroups, FakeRuntime, PrivateMount};
use cubby_storage::{FakeBtrfs, FakeMounts};
use cubby_store::{
    AuditStore, ContainerStore, ImageRecord, ImageStore, LayerKind, LayerRecord, LayerStore, SqliteStore,
};

struct Fixture {
    platform: Arc<Platform>,
    btrfs: Arc<FakeBtrfs>,
    netlink: Arc<FakeNetlink>,
    runtime: Arc<FakeRuntime>,
    mounts: Arc<FakeMounts>,
    nft: Arc<FakeNftables>,
    store: Arc<SqliteStore>,
    _dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // A proc root where forwarding is already on, so nothing is written to the host.
    std::fs::create_dir_all(root.join("proc/sys/net/ipv4")).unwrap();
    std::fs::write(root.join("proc/sys/net/ipv4/ip_forward"), "1\n").unwrap();
    std::fs::write(root.join("proc/meminfo"), "MemTotal: 8388608 kB\n").unwrap();
    // The `minimal` image, recorded and present, so it is not built.
    std::fs::create_dir_all(root.join("data/pool/layers/lmin")).unwrap();
    let store = Arc::new(SqliteStore::in_memory().unwrap());
    store
        .insert_layer(&LayerRecord {
            id: cubby_model::LayerId::from_stored("lmin".into()),
            kind: LayerKind::Image,
            subvolume: "layers/lmin".into(),
            root: "layers/lmin".into(),
            created_at: cubby_model::now(),
            source_container: None,
            source_generation: None,
        })
        .unwrap();
    store
        .insert_image(&ImageRecord {
            layer_id: cubby_model::LayerId::from_stored("lmin".into()),
            image: Image {
                name: "minimal".into(),
                source: ImageSource::Builtin,
                config: cubby_storage::image::minimal::config(),
                size_bytes: 1,
                created_at: cubby_model::now(),
                warnings: Vec::new(),
            },
            digest: String::new(),
        })
        .unwrap();
    let config = Config {
        prefix: "fake".into(),
        data_dir: root.join("data"),
        run_dir: root.join("run"),
        proc_root: root.join("proc"),
        domain: "localhost".into(),
        proxy_port: 8080,
        https: false,
        subnet: "10.99.0.0/24".parse().unwrap(),
        dns_servers: vec![],
        egress_guard: Default::default(),
        pool_size: None,
        helpers: Helpers {
            init: "/nonexistent".into(),
            demo: "/nonexistent".into(),
            fetch: "/nonexistent".into(),
            busybox: "/nonexistent".into(),
        },
        defaults: Defaults::default(),
        seccomp: None,
        userns: None,
        backup_to: None,
        failpoints: Default::default(),
    };
    let btrfs = Arc::new(FakeBtrfs::new());
    let netlink = Arc::new(FakeNetlink::new());
    let runtime = Arc::new(FakeRuntime::new());
    let nft = Arc::new(FakeNftables::new());
    let mounts = Arc::new(FakeMounts::new());
    let host = Host {
        btrfs: btrfs.clone(),
        mounts: mounts.clone(),
        runtime: runtime.clone(),
        cgroups: Arc::new(FakeCgroups::new()),
        netlink: netlink.clone(),
        nft: nft.clone(),
    };
    let platform = Platform::open(config, store.clone(), host).await.unwrap();
    Fixture { platform, btrfs, netlink, runtime, mounts, nft, store, _dir: dir }
}

fn req(name: &str, start: bool) -> CreateContainer {
    CreateContainer {
        name: name.into(),
        environment_vars: BTreeMap::from([("GREETING".into(), "hi".into())]),
        start: Some(start),
        ..Default::default()
    }
}

/// The project `acme`, with the defaults.
fn acme(f: &Fixture) -> cubby_model::Project {
    named(f, "acme")
}

/// A project named `name`, with the defaults.
fn named(f: &Fixture, name: &str) -> cubby_model::Project {
    f.platform.create_project(&Caller::admin(), &CreateProject { name: name.into(), ..Default::default() }).unwrap()
}

fn container_subvolumes(f: &Fixture) -> usize {
    let dir = f.platform.pool().containers_dir();
    std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test]
async fn opening_prepares_bridge_and_firewall_table() {
    let f = fixture().await;
    assert_eq!(f.netlink.links(), vec!["fake-br".to_string()]);
    let batches = f.nft.batches();
    assert_eq!(batches.len(), 1);
    assert!(batches[0].to_string().contains("masquerade"));
}

#[tokio::test]
async fn a_failed_runtime_create_rolls_everything_back() {
    let f = fixture().await;
    let p = acme(&f);
    f.runtime.fail_create_of("c");
    let err = f.platform.containers().create_container(&Caller::admin(), &p.id, &req("web", true)).await.unwrap_err();
    assert!(matches!(err, cubby_core::Error::Runtime { step: "run", .. }), "{err}");
    assert_eq!(f.netlink.links(), vec!["fake-br".to_string()], "veth removed");
    assert!(f.netlink.namespaces().is_empty(), "netns removed");
    assert_eq!(container_subvolumes(&f), 0, "subvolume removed");
    assert!(f.store.containers(None, None, 10).unwrap().is_empty(), "row removed");
    assert_eq!(f.store.audit(1).unwrap()[0].action, "container.create_failed");
    assert!(f.platform.routes().is_empty());
}

#[tokio::test]
async fn create_stopped_then_delete_forgets_everything() {
    let f = fixture().await;
    let p = acme(&f);
    let c = f.platform.containers().create_container(&Caller::admin(), &p.id, &req("web", false)).await.unwrap();
    assert_eq!(c.status, ContainerStatus::Stopped);
    assert_eq!(c.url, "http://web--acme.localhost:8080");
    assert_eq!(c.address, "10.99.0.2");
    assert_eq!(f.netlink.links(), vec!["fake-1".to_string(), "fake-br".to_string()]);
    assert!(f.btrfs.has_subvolume(&f.platform.pool().container(c.id.as_str())));

    f.platform.containers().delete_container(&Caller::admin(), &c.id).await.unwrap();
    // Its files and rows are gone at once; the plumbing right after.
    assert!(!f.btrfs.has_subvolume(&f.platform.pool().container(c.id.as_str())));
    assert!(f.platform.settle(std::time::Duration::from_secs(5)).await);
    assert!(f.store.teardowns().unwrap().is_empty(), "the slot is free again");
    assert_eq!(f.netlink.links(), vec!["fake-br".to_string()]);
    assert!(f.netlink.namespaces().is_empty());
    assert!(!f.btrfs.has_subvolume(&f.platform.pool().container(c.id.as_str())));
    assert!(f.platform.routes().is_empty());
    let err = f.platform.containers().container(&Caller::admin(), &c.id).unwrap_err();
    assert!(matches!(err, cubby_core::Error::NotFound { kind: "container", .. }));
}

#[tokio::test]
async fn a_project_token_sees_nothing_of_other_projects() {
    let f = fixture().await;
    let (a, b) = (named(&f, "a"), named(&f, "b"));
    let cb = f.platform.containers().create_container(&Caller::admin(), &b.id, &req("theirs", false)).await.unwrap();
    let caller = Caller::project(a.id.clone());
    let not_found = |e: cubby_core::Error| matches!(e, cubby_core::Error::NotFound { .. });
    assert!(not_found(f.platform.project(&caller, &b.id).unwrap_err()));
    assert!(not_found(f.platform.containers().container(&caller, &cb.id).unwrap_err()));
    assert!(not_found(f.platform.containers().delete_container(&caller, &cb.id).await.unwrap_err()));
    assert!(not_found(f.platform.containers().create_container(&caller, &b.id, &req("x", false)).await.unwrap_err()));
    assert_eq!(f.platform.projects(&caller).unwrap().len(), 1);
    assert!(f.platform.containers().list(&caller, None, None, 100).unwrap().items.is_empty());
    assert!(matches!(
        f.platform
            .create_project(&caller, &CreateProject { name: "c".into(), max_containers: None, ..Default::default() }),
        Err(cubby_core::Error::Forbidden)
    ));
    // Still there for its owner.
    assert!(f.platform.containers().container(&Caller::admin(), &cb.id).is_ok());
    assert!(f.platform.project(&caller, &ProjectId::random()).is_err());
}

#[tokio::test]
async fn max_containers_and_names_are_enforced() {
    let f = fixture().await;
    let p = f
        .platform
        .create_project(
            &Caller::admin(),
            &CreateProject { name: "acme".into(), max_containers: Some(1), ..Default::default() },
        )
        .unwrap();
    f.platform.containers().create_container(&Caller::admin(), &p.id, &req("one", false)).await.unwrap();
    let err = f.platform.containers().create_container(&Caller::admin(), &p.id, &req("two", false)).await.unwrap_err();
    assert!(matches!(err, cubby_core::Error::LimitReached { limit: 1, .. }), "{err}");
    let err = f.platform.containers().create_container(&Caller::admin(), &p.id, &req("BAD", false)).await.unwrap_err();
    assert!(matches!(err, cubby_core::Error::Invalid(_)), "{err}");
    assert_eq!(container_subvolumes(&f), 1, "refusals make nothing");
    let _ = Path::new("");
}

#[tokio::test]
async fn the_proxy_gets_a_socket_in_the_container_only_where_the_firewall_admits_it() {
    let f = fixture().await;
    let p = acme(&f);
    let c = f.platform.containers().create_container(&Caller::admin(), &p.id, &req("web", false)).await.unwrap();
    let app: std::net::SocketAddr = format!("{}:{}", c.address, c.port).parse().unwrap();
    assert!(f.platform.containers().proxy_socket(app).await.is_none(), "a stopped container takes no connection");

    // As a start would publish it.
    let label = cubby_core::routes::label("web", "acme");
    let cubby_core::routes::Lookup::Stopped { route, .. } = f.platform.routes().lookup(&label) else {
        panic!("web has a stopped route")
    };
    f.platform.routes().insert(label, cubby_core::Route { running: true, ..route });
    assert!(
        f.platform.containers().proxy_socket(app).await.is_some(),
        "the default rules admit the proxy to the app's port"
    );
    let other_port = std::net::SocketAddr::new(app.ip(), 9000);
    assert!(
        f.platform.containers().proxy_socket(other_port).await.is_none(),
        "port 9000 is not admitted: the firewall decides"
    );
    assert!(
        f.platform.containers().proxy_socket("10.99.0.77:8080".parse().unwrap()).await.is_none(),
        "no container there"
    );

    let spec = cubby_model::RuleSpec {
        action: Some(cubby_model::RuleAction::Allow),
        protocol: Some(cubby_model::Protocol::Tcp),
        ports: Some("9000".into()),
        ..Default::default()
    };
    f.platform.network().add_rule(&Caller::admin(), &c.id, cubby_model::Direction::Ingress, &spec).await.unwrap();
    assert!(f.platform.containers().proxy_socket(other_port).await.is_some(), "a rule for 9000 admits it");
    f.platform.network().replace_firewall(&Caller::admin(), &c.id, &Default::default()).await.unwrap();
    assert!(
        f.platform.containers().proxy_socket(app).await.is_none(),
        "no rule left: even the app's port takes the plain path"
    );
}

#[tokio::test]
async fn each_root_is_mounted_for_its_own_container_only_and_never_on_the_host() {
    let f = fixture().await;
    let p = acme(&f);
    let a = f.platform.containers().create_container(&Caller::admin(), &p.id, &req("a", true)).await.unwrap();
    let b = f.platform.containers().create_container(&Caller::admin(), &p.id, &req("b", true)).await.unwrap();
    assert!(f.mounts.mounted().is_empty(), "the host's mount table gets no root: {:?}", f.mounts.mounted());
    let run = f.platform.config().run_dir.clone();
    for (me, other) in [(&a, &b), (&b, &a)] {
        let mounts = f.runtime.private_mounts(me.id.as_str());
        let targets: Vec<&Path> = mounts.iter().map(PrivateMount::target).collect();
        assert_eq!(
            targets,
            vec![run.join("containers").join(me.id.as_str()).join("rootfs"), run.join("netns").join(me.id.as_str())],
            "its root and its network namespace pin"
        );
        let PrivateMount::Filesystem { fstype, data, .. } = &mounts[0] else { panic!("the root is a filesystem") };
        assert_eq!(fstype, "overlay");
        let upper = f.platform.pool().containers_dir().join(me.id.as_str()).join("upper");
        assert!(data.contains(&format!("upperdir={}", upper.display())), "{data}");
        let text = format!("{mounts:?}");
        assert!(!text.contains(other.id.as_str()), "nothing of the other tenant is mounted for it: {text}");
    }
}

#[tokio::test]
async fn a_backup_is_incremental_and_restores_into_an_empty_data_dir() {
    let f = fixture().await;
    let p = acme(&f);
    let c = f.platform.containers().create_container(&Caller::admin(), &p.id, &req("web", false)).await.unwrap();
    let upper = f.platform.pool().container(c.id.as_str()).join("upper");
    std::fs::write(upper.join("rows.txt"), "precious").unwrap();
    let to = f._dir.path().join("backups");
    let ask = cubby_model::CreateBackup { to: Some(to.display().to_string()) };

    // Only the admin backs up, and never into the data dir.
    let tenant = Caller::project(p.id.clone());
    assert!(matches!(f.platform.backup(&tenant, &ask).await, Err(cubby_core::Error::Forbidden)));
    let inside = cubby_model::CreateBackup { to: Some(f.platform.config().data_dir.join("b").display().to_string()) };
    assert!(matches!(f.platform.backup(&Caller::admin(), &inside).await, Err(cubby_core::Error::Invalid(_))));

    let first = f.platform.backup(&Caller::admin(), &ask).await.unwrap();
    assert_eq!((first.parent.as_deref(), first.containers, first.layers), (None, 1, 1), "{first:?}");
    assert_eq!((first.streams_written, first.unchanged), (2, 0), "{first:?}");
    let second = f.platform.backup(&Caller::admin(), &ask).await.unwrap();
    assert_eq!(second.parent.as_ref(), Some(&first.id));
    assert_eq!((second.streams_written, second.unchanged), (0, 2), "nothing changed: {second:?}");
    assert_eq!(cubby_core::backup::list(&to).unwrap(), vec![first.id.clone(), second.id.clone()]);

    // Restored with another btrfs into an empty data dir: the state, the
    // keys and the container's files, from streams of the first backup.
    let btrfs = FakeBtrfs::new();
    let data_dir = f._dir.path().join("restored");
    let opts = cubby_core::backup::RestoreOptions {
        from: to.clone(),
        backup: None,
        data_dir: data_dir.clone(),
        pool_size: None,
        proc_root: f._dir.path().join("proc"),
    };
    let report = cubby_core::backup::restore(&btrfs, &opts).unwrap();
    assert_eq!((report.backup.as_str(), report.containers, report.layers), (second.id.as_str(), 1, 1));
    let restored = data_dir.join("pool/containers").join(c.id.as_str());
    assert_eq!(std::fs::read_to_string(restored.join("upper/rows.txt")).unwrap(), "precious");
    assert!(btrfs.has_subvolume(&restored) && btrfs.has_subvolume(&data_dir.join("pool/layers/lmin")));
    let key = |dir: &Path| std::fs::read(dir.join("claims.key")).unwrap();
    assert_eq!(key(&data_dir), key(&f.platform.config().data_dir));
    let state = SqliteStore::open(&data_dir.join("cubby.db")).unwrap();
    assert!(state.container(&c.id).unwrap().is_some());
    assert!(std::fs::read_dir(data_dir.join("pool/tmp")).unwrap().next().is_none(), "no scratch left");

    // A second restore into the same data dir is refused.
    let again = cubby_core::backup::restore(&btrfs, &opts).unwrap_err();
    assert!(matches!(again, cubby_core::Error::Conflict { code: "data_dir_in_use", .. }), "{again}");
}
