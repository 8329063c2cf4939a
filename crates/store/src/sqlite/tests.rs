//! Unit tests of the SQLite store against an in-memory database.

use std::collections::BTreeMap;

use cubby_model::{
    ByteSize, ContainerId, ContainerStatus, Firewall, Limits, NetworkRules, Project, ProjectId, Token, TokenId, Trigger,
};

use super::*;
use crate::{
    AuditEntry, AuditStore, ContainerStore, LayerStore, NewContainer, ProjectStore, RuleStore, ScriptStore,
    SnapshotStore, StoreError, TokenRecord, TokenStore,
};

fn project(name: &str, max: Option<u32>) -> Project {
    Project {
        id: ProjectId::random(),
        name: name.into(),
        max_containers: max,
        created_at: cubby_model::now(),
        default_access: cubby_model::AccessMode::Claim,
        default_idle_timeout_seconds: 0,
        quota: Default::default(),
    }
}

fn new_container(project: &ProjectId, name: &str) -> NewContainer {
    NewContainer {
        id: ContainerId::random(),
        project_id: project.clone(),
        name: name.into(),
        image: "minimal".into(),
        command: vec!["/bin/app".into()],
        env: BTreeMap::from([("A".into(), "1".into())]),
        port: 8080,
        limits: Limits { cpu: 1.0, memory: ByteSize(256 << 20), pids: 128, disk: None },
        workdir: None,
        user: None,
        created_at: cubby_model::now(),
        firewall: Firewall::default(),
        network: NetworkRules::default(),
        lowers: vec![],
        max_snapshots: 2,
        status: ContainerStatus::Creating,
        access: None,
        autostart: true,
        idle_timeout: None,
    }
}

#[test]
fn project_names_are_unique() {
    let s = SqliteStore::in_memory().unwrap();
    s.insert_project(&project("acme", None)).unwrap();
    let err = s.insert_project(&project("acme", None)).unwrap_err();
    assert!(matches!(err, StoreError::Duplicate { what: "project", .. }));
    assert_eq!(s.projects().unwrap().len(), 1);
}

#[test]
fn containers_get_lowest_free_slot_and_unique_names() {
    let s = SqliteStore::in_memory().unwrap();
    let p = project("acme", None);
    s.insert_project(&p).unwrap();
    let a = s.insert_container(&new_container(&p.id, "a"), 100).unwrap();
    let b = s.insert_container(&new_container(&p.id, "b"), 100).unwrap();
    let c = s.insert_container(&new_container(&p.id, "c"), 100).unwrap();
    assert_eq!((a.slot, b.slot, c.slot), (1, 2, 3));
    let dup = s.insert_container(&new_container(&p.id, "a"), 100).unwrap_err();
    assert!(matches!(dup, StoreError::Duplicate { what: "container", .. }));
    let audit = AuditEntry {
        at: cubby_model::now(),
        action: "container.deleted".into(),
        project_id: Some(p.id.clone()),
        container_id: Some(b.id.clone()),
    };
    assert!(s.delete_container(&b.id, &audit).unwrap());
    let d = s.insert_container(&new_container(&p.id, "d"), 100).unwrap();
    assert_eq!(d.slot, 2, "freed slot is reused");
    assert_eq!(s.audit(10).unwrap()[0].action, "container.deleted");
    assert!(s.transitions(&b.id).unwrap().is_empty());

    // A deferred delete keeps the slot until its teardown finishes.
    assert!(s.delete_container_deferred(&a.id, &audit).unwrap());
    assert!(s.container(&a.id).unwrap().is_none());
    assert_eq!(s.teardowns().unwrap(), vec![(a.id.clone(), 1)]);
    let e = s.insert_container(&new_container(&p.id, "e"), 100).unwrap();
    assert_eq!(e.slot, 4, "slot 1 is held by the pending teardown");
    s.finish_teardown(&a.id).unwrap();
    assert!(s.teardowns().unwrap().is_empty());
    let f = s.insert_container(&new_container(&p.id, "f"), 100).unwrap();
    assert_eq!(f.slot, 1);
}

#[test]
fn slot_capacity_and_project_limit_are_enforced() {
    let s = SqliteStore::in_memory().unwrap();
    let p = project("acme", Some(2));
    s.insert_project(&p).unwrap();
    s.insert_container(&new_container(&p.id, "a"), 100).unwrap();
    s.insert_container(&new_container(&p.id, "b"), 100).unwrap();
    let err = s.insert_container(&new_container(&p.id, "c"), 100).unwrap_err();
    assert!(matches!(err, StoreError::LimitReached { limit: 2, .. }));

    let q = project("other", None);
    s.insert_project(&q).unwrap();
    let err = s.insert_container(&new_container(&q.id, "x"), 2).unwrap_err();
    assert!(matches!(err, StoreError::LimitReached { what: "container network address", .. }));
}

#[test]
fn status_changes_are_recorded_as_transitions() {
    let s = SqliteStore::in_memory().unwrap();
    let p = project("acme", None);
    s.insert_project(&p).unwrap();
    let c = s.insert_container(&new_container(&p.id, "a"), 100).unwrap();
    let r = s.set_status(&c.id, ContainerStatus::Running, Trigger::Api, 42).unwrap().unwrap();
    assert_eq!(r.status, ContainerStatus::Running);
    s.set_status(&c.id, ContainerStatus::Stopped, Trigger::Exited, 3).unwrap();
    let t = s.transitions(&c.id).unwrap();
    assert_eq!(t.len(), 3);
    assert_eq!(t[1].from, Some(ContainerStatus::Creating));
    assert_eq!(t[1].to, ContainerStatus::Running);
    assert_eq!(t[1].duration_ms, 42);
    assert_eq!(t[2].trigger, Trigger::Exited);
    assert!(s.set_status(&ContainerId::random(), ContainerStatus::Running, Trigger::Api, 0).unwrap().is_none());

    // A container that flaps keeps its latest history only.
    for i in 0..250u64 {
        let to = if i % 2 == 0 { ContainerStatus::Running } else { ContainerStatus::Stopped };
        s.set_status(&c.id, to, Trigger::Api, i).unwrap();
    }
    let t = s.transitions(&c.id).unwrap();
    assert_eq!(t.len(), crate::TRANSITIONS_KEPT as usize);
    assert_eq!(t.last().unwrap().duration_ms, 249, "the newest stay");
}

#[test]
fn listing_pages_by_id_and_filters_by_project() {
    let s = SqliteStore::in_memory().unwrap();
    let p = project("acme", None);
    let q = project("other", None);
    s.insert_project(&p).unwrap();
    s.insert_project(&q).unwrap();
    for i in 0..5 {
        s.insert_container(&new_container(&p.id, &format!("a{i}")), 100).unwrap();
    }
    s.insert_container(&new_container(&q.id, "z"), 100).unwrap();
    let first = s.containers(Some(&p.id), None, 3).unwrap();
    assert_eq!(first.len(), 3);
    let rest = s.containers(Some(&p.id), Some(&first[2].id), 3).unwrap();
    assert_eq!(rest.len(), 2);
    assert!(rest.iter().all(|c| c.project_id == p.id));
    assert_eq!(s.containers(None, None, 100).unwrap().len(), 6);
    assert_eq!(s.count_containers(&q.id).unwrap(), 1);
}

#[test]
fn tokens_are_found_by_hash_and_scoped() {
    let s = SqliteStore::in_memory().unwrap();
    let p = project("acme", None);
    s.insert_project(&p).unwrap();
    let t = TokenRecord {
        token: Token {
            id: TokenId::random(),
            project_id: Some(p.id.clone()),
            name: None,
            created_at: cubby_model::now(),
        },
        hash: [7; 32],
    };
    s.insert_token(&t).unwrap();
    assert_eq!(s.token_by_hash(&[7; 32]).unwrap().unwrap(), t);
    assert!(s.token_by_hash(&[8; 32]).unwrap().is_none());
    assert_eq!(s.tokens(Some(&p.id)).unwrap().len(), 1);
    assert!(s.tokens(None).unwrap().is_empty());
    assert!(s.delete_project(&p.id).unwrap());
    assert!(s.token_by_hash(&[7; 32]).unwrap().is_none(), "tokens go with their project");
}

#[test]
fn project_with_containers_cannot_be_deleted() {
    let s = SqliteStore::in_memory().unwrap();
    let p = project("acme", None);
    s.insert_project(&p).unwrap();
    s.insert_container(&new_container(&p.id, "a"), 100).unwrap();
    assert!(matches!(s.delete_project(&p.id).unwrap_err(), StoreError::InUse { .. }));
}

#[test]
fn file_database_uses_wal_and_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cubby.db");
    {
        let s = SqliteStore::open(&path).unwrap();
        s.insert_project(&project("acme", None)).unwrap();
    }
    let s = SqliteStore::open(&path).unwrap();
    assert_eq!(s.projects().unwrap()[0].name, "acme");
    let mode: String = s.conn().query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
}

#[test]
fn firewall_rules_keep_their_order_and_go_with_the_container() {
    use cubby_model::{FirewallRule, NetworkMode, Protocol, RuleAction, RuleState};
    let s = SqliteStore::in_memory().unwrap();
    let p = project("acme", None);
    s.insert_project(&p).unwrap();
    let rule = |id: &str, action, dest: Option<&str>| FirewallRule {
        id: cubby_model::RuleId::from_stored(id.into()),
        action,
        protocol: Protocol::Tcp,
        ports: Some("443".into()),
        source: None,
        destination: dest.map(str::to_string),
        description: Some("d".into()),
        state: RuleState::Enabled,
        shadowed_by: None,
    };
    let mut new = new_container(&p.id, "a");
    new.firewall.egress = vec![rule("r2", RuleAction::Drop, Some("10.0.0.0/8")), rule("r1", RuleAction::Allow, None)];
    new.firewall.ingress = vec![FirewallRule {
        source: Some("10.0.0.1".into()),
        destination: None,
        ..rule("r3", RuleAction::Allow, None)
    }];
    new.network = NetworkRules {
        mode: NetworkMode::Proxy,
        proxy: Some("http://10.0.0.9:3128".into()),
        dns_servers: vec!["1.1.1.1".into()],
    };
    let c = s.insert_container(&new, 10).unwrap();
    let fw = s.firewall(&c.id).unwrap();
    assert_eq!(fw, new.firewall);
    assert_eq!(s.network(&c.id).unwrap(), new.network);

    let mut changed = fw.clone();
    changed.egress.reverse();
    s.replace_firewall(&c.id, &changed).unwrap();
    assert_eq!(s.firewall(&c.id).unwrap().egress[0].id, "r1");

    let audit =
        AuditEntry { at: cubby_model::now(), action: "container.deleted".into(), project_id: None, container_id: None };
    s.delete_container(&c.id, &audit).unwrap();
    assert_eq!(s.firewall(&c.id).unwrap(), Firewall::default());
}

#[test]
fn layers_are_garbage_once_nothing_refers_to_them() {
    use crate::{LayerKind, LayerRecord, SnapshotRecord};
    use cubby_model::{LayerId, SnapshotId};
    let lid = |id: &str| LayerId::from_stored(id.into());
    let s = SqliteStore::in_memory().unwrap();
    let p = project("acme", None);
    s.insert_project(&p).unwrap();
    let layer = |id: &str, kind| LayerRecord {
        id: lid(id),
        kind,
        subvolume: format!("layers/{id}"),
        root: format!("layers/{id}/upper"),
        created_at: cubby_model::now(),
        source_container: None,
        source_generation: None,
    };
    s.insert_layer(&layer("img", LayerKind::Image)).unwrap();
    s.insert_layer(&layer("l1", LayerKind::Frozen)).unwrap();
    s.insert_layer(&layer("snap", LayerKind::Snapshot)).unwrap();
    let mut c = new_container(&p.id, "copy");
    c.lowers = vec![lid("l1"), lid("img")];
    let c = s.insert_container(&c, 10).unwrap();
    assert_eq!(s.container_lowers(&c.id).unwrap().iter().map(|l| l.id.as_str()).collect::<Vec<_>>(), ["l1", "img"]);
    let snap = SnapshotRecord {
        id: SnapshotId::from_stored("s1".into()),
        container_id: c.id.clone(),
        name: "snap-1".into(),
        alias: Some("before".into()),
        layer_id: lid("snap"),
        lowers: vec![lid("l1"), lid("img")],
        created_at: cubby_model::now(),
        expires_at: Some(cubby_model::now()),
    };
    s.insert_snapshot(&snap, 2).unwrap();
    let dup = SnapshotRecord { id: SnapshotId::from_stored("s2".into()), name: "snap-2".into(), ..snap.clone() };
    assert!(matches!(s.insert_snapshot(&dup, 2), Err(StoreError::Duplicate { .. })), "alias taken");
    assert_eq!(s.snapshot(&c.id, "before").unwrap().unwrap().name, "snap-1");
    assert_eq!(s.expired_snapshots(cubby_model::now()).unwrap().len(), 1);
    assert!(s.unreferenced_layers().unwrap().is_empty());
    // Replacing firewall or network rules leaves the layers alone.
    s.replace_firewall(&c.id, &Firewall::default()).unwrap();
    s.set_network(&c.id, &NetworkRules::default()).unwrap();
    assert_eq!(s.container_lowers(&c.id).unwrap().len(), 2);
    assert_eq!(s.snapshots(&c.id).unwrap().len(), 1);
    s.set_container_lowers(&c.id, &[lid("img")]).unwrap();
    assert!(s.unreferenced_layers().unwrap().is_empty(), "the snapshot still holds l1");
    assert!(s.delete_snapshot(&SnapshotId::from_stored("s1".into())).unwrap());
    let garbage: Vec<LayerId> = s.unreferenced_layers().unwrap().into_iter().map(|l| l.id).collect();
    assert_eq!(garbage, ["l1", "snap"]);
    let audit =
        AuditEntry { at: cubby_model::now(), action: "container.deleted".into(), project_id: None, container_id: None };
    s.delete_container(&c.id, &audit).unwrap();
    assert_eq!(s.unreferenced_layers().unwrap().len(), 3);
}

#[test]
fn secrets_are_replaced_and_logs_trimmed_and_both_go_with_the_project() {
    let store = SqliteStore::in_memory().unwrap();
    let (a, b) = (project("a", None), project("b", None));
    store.insert_project(&a).unwrap();
    store.insert_project(&b).unwrap();
    store.set_secrets(&a.id, &BTreeMap::from([("X".into(), "1".into()), ("Y".into(), "2".into())])).unwrap();
    store.set_secrets(&a.id, &BTreeMap::from([("Y".into(), "3".into())])).unwrap();
    assert_eq!(store.secrets(&a.id).unwrap(), BTreeMap::from([("Y".into(), "3".into())]));
    assert!(store.secrets(&b.id).unwrap().is_empty(), "secrets are per project");

    let entry = |n: u16| cubby_model::ScriptInvocation {
        at: cubby_model::now(),
        script: "hello.ts".into(),
        method: "GET".into(),
        path: "/hello".into(),
        status: n,
        duration_ms: 1,
        error: None,
        logs: vec![cubby_model::ScriptLogLine { level: "log".into(), message: format!("n={n}") }],
    };
    for n in 200..210 {
        store.append_script_log(&a.id, &entry(n), 3).unwrap();
    }
    let logs = store.script_logs(&a.id, 100).unwrap();
    assert_eq!(logs.iter().map(|l| l.status).collect::<Vec<_>>(), [209, 208, 207]);
    assert_eq!(logs[0].logs[0].message, "n=209");
    assert!(store.script_logs(&b.id, 100).unwrap().is_empty());

    assert!(store.delete_project(&a.id).unwrap());
    assert!(store.secrets(&a.id).unwrap().is_empty());
    assert!(store.script_logs(&a.id, 100).unwrap().is_empty());
}

#[test]
fn corrupt_rows_are_errors_never_defaults() {
    let s = SqliteStore::in_memory().unwrap();
    let p = project("acme", None);
    s.insert_project(&p).unwrap();
    let c = s.insert_container(&new_container(&p.id, "a"), 100).unwrap();
    // Controls: the rows read back as written.
    assert!(s.project(&p.id).unwrap().is_some() && s.container(&c.id).unwrap().is_some());

    let raw = |sql: &str| s.conn().execute(sql, []).unwrap();
    raw("UPDATE projects SET default_access = 'everyone'");
    assert!(s.project(&p.id).is_err(), "an unknown access mode is not `claim`");
    raw("UPDATE projects SET default_access = 'claim'");
    raw("UPDATE containers SET access = 'bogus'");
    assert!(matches!(s.container(&c.id), Err(StoreError::Corrupt { .. })), "an unknown access mode is not `none`");
    raw("UPDATE containers SET access = NULL, disk_limit = -5");
    assert!(matches!(s.container(&c.id), Err(StoreError::Corrupt { .. })), "a negative disk limit is not unlimited");
    raw("UPDATE containers SET disk_limit = NULL");
    assert!(s.container(&c.id).unwrap().is_some());

    let token = TokenRecord {
        token: Token { id: TokenId::random(), project_id: None, name: None, created_at: cubby_model::now() },
        hash: [7; 32],
    };
    s.insert_token(&token).unwrap();
    raw("UPDATE tokens SET hash = x'0102'");
    assert!(s.tokens(None).is_err(), "a short hash is not all zeros");
}

#[test]
fn usage_readings_become_minute_and_hour_rows_and_outlive_their_container() {
    use crate::{UsageEdge, UsageReading, UsageResolution, UsageScope, UsageStore};
    let s = SqliteStore::in_memory().unwrap();
    let p = project("acme", None);
    s.insert_project(&p).unwrap();
    let c = s.insert_container(&new_container(&p.id, "app"), 10).unwrap();
    let at = |second: i64| cubby_model::Timestamp::from_unix_timestamp(1_800_000_000 + second).unwrap();
    let reading = |second, edge, cpu_ns, requests| UsageReading {
        container_id: c.id.clone(),
        project_id: p.id.clone(),
        at: at(second),
        edge,
        running: true,
        cpu_ns: Some(cpu_ns),
        memory_bytes: Some(1 << 20),
        net: Some((0, 0)),
        disk_bytes: Some(4096),
        requests,
        response_bytes: 0,
        wakes: 0,
    };
    s.record_usage(&[reading(0, UsageEdge::Start, 1_000, 1)]).unwrap();
    s.record_usage(&[reading(30, UsageEdge::Sample, 3_000, 2), reading(90, UsageEdge::Sample, 6_000, 0)]).unwrap();
    let (from, to) = (1_800_000_000 - 3600, 1_800_000_000 + 3600);
    let minutes = s.usage_rows(UsageScope::Container(&c.id), UsageResolution::Minute, from, to).unwrap();
    let hours = s.usage_rows(UsageScope::Project(&p.id), UsageResolution::Hour, from, to).unwrap();
    assert_eq!(minutes.iter().map(|r| r.usage.cpu_ns).sum::<u64>(), 6_000);
    assert!(minutes.len() >= 2, "two minutes were touched: {minutes:?}");
    let sum = |f: fn(&crate::UsageDelta) -> u64| hours.iter().map(|r| f(&r.usage)).sum::<u64>();
    assert_eq!((sum(|u| u.cpu_ns), sum(|u| u.requests), sum(|u| u.running_ms)), (6_000, 3, 90_000));

    // The container goes; its usage stays (ids and numbers), its cursor goes.
    let audit =
        AuditEntry { at: cubby_model::now(), action: "container.deleted".into(), project_id: None, container_id: None };
    s.delete_container(&c.id, &audit).unwrap();
    assert_eq!(s.usage_project(&c.id).unwrap(), Some(p.id.clone()));
    assert_eq!(s.usage_rows(UsageScope::Project(&p.id), UsageResolution::Hour, from, to).unwrap(), hours);
    assert_eq!(s.prune_usage(UsageResolution::Minute, to).unwrap(), minutes.len());
    assert_eq!(s.usage_rows(UsageScope::Project(&p.id), UsageResolution::Hour, from, to).unwrap(), hours, "hours stay");
}
