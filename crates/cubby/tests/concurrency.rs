//! End to end, as root: 200 concurrent mixed requests (create, copy, stop,
//! start, delete, snapshot) on 50 containers end in a consistent state:
//! `cubby doctor` finds no drift, every container whose create or copy
//! answered 2xx (and was not deleted) works, and every deleted one is gone.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use cubby_model::{ContainerStatus, CopyContainer, CreateSnapshot};
use cubby_testkit::{HostView, http_get};
use support::{container, daemon, project};

/// A small deterministic generator (no randomness in tests).
fn pick(i: usize, salt: usize, n: usize) -> usize {
    (i.wrapping_mul(2_654_435_761).wrapping_add(salt.wrapping_mul(40_503))) % n.max(1)
}

#[test]
fn concurrent_mixed_requests_end_consistent() {
    let Some(d) = daemon("concurrent_mixed_requests_end_consistent") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let initial: Vec<String> = (0..50).map(|i| container(&api, &p, &format!("c{i}"), "x").id.to_string()).collect();

    let made = Mutex::new(Vec::<String>::new());
    let deleted = Mutex::new(BTreeSet::<String>::new());
    let outcomes = Mutex::new(BTreeMap::<String, usize>::new());
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..16 {
            s.spawn(|| {
                let api = d.admin();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= 200 {
                        return;
                    }
                    let target = initial[pick(i, 7, initial.len())].clone();
                    let (op, status) = match i % 6 {
                        0 => {
                            let r = api.create_container(p.id.as_str(), &support::create_req(&format!("n{i}"), "n"));
                            if let Ok(c) = &r {
                                made.lock().unwrap().push(c.id.to_string());
                            }
                            ("create", r.map(|_| 201).unwrap_or_else(|e| e.status().unwrap_or(0)))
                        }
                        1 => {
                            let req = CopyContainer { name: format!("k{i}"), ..Default::default() };
                            let r = api.copy_container(&target, &req);
                            if let Ok(c) = &r {
                                made.lock().unwrap().push(c.id.to_string());
                            }
                            ("copy", r.map(|_| 201).unwrap_or_else(|e| e.status().unwrap_or(0)))
                        }
                        2 => ("stop", api.stop(&target).map(|_| 200).unwrap_or_else(|e| e.status().unwrap_or(0))),
                        3 => ("start", api.start(&target).map(|_| 200).unwrap_or_else(|e| e.status().unwrap_or(0))),
                        4 => {
                            let r = api.delete_container(&target);
                            if r.is_ok() {
                                deleted.lock().unwrap().insert(target.clone());
                            }
                            ("delete", r.map(|()| 204).unwrap_or_else(|e| e.status().unwrap_or(0)))
                        }
                        _ => (
                            "snapshot",
                            api.create_snapshot(&target, &CreateSnapshot::default())
                                .map(|_| 201)
                                .unwrap_or_else(|e| e.status().unwrap_or(0)),
                        ),
                    };
                    assert!(status != 0 && status < 500, "{op} on {target}: transport error or {status}");
                    *outcomes.lock().unwrap().entry(format!("{op} {status}")).or_default() += 1;
                }
            });
        }
    });
    eprintln!("outcomes: {:?}", outcomes.lock().unwrap());

    let deleted = deleted.into_inner().unwrap();
    let listed: BTreeMap<String, ContainerStatus> = api
        .containers(Some(p.id.as_str()), None, 500)
        .unwrap()
        .items
        .into_iter()
        .map(|c| (c.id.to_string(), c.status))
        .collect();
    for id in &deleted {
        assert!(!listed.contains_key(id), "{id} was deleted (204) but is listed");
    }
    let expected: Vec<String> =
        initial.iter().chain(made.into_inner().unwrap().iter()).filter(|id| !deleted.contains(*id)).cloned().collect();
    for id in &expected {
        let status = listed.get(id).unwrap_or_else(|| panic!("{id} answered 2xx and was not deleted, but is gone"));
        assert!(matches!(status, ContainerStatus::Running | ContainerStatus::Stopped), "{id} is {status:?}");
        // Every one works (a stopped one wakes on its URL).
        let c = api.container(id).unwrap();
        assert_eq!(http_get(d.proxy_addr, &c.url).status, 200, "{id} ({status:?}) does not answer");
    }
    assert_eq!(listed.len(), expected.len(), "containers nobody asked for: {listed:?}");

    HostView::settled(&d);
    let (code, report) = support::doctor(&d, &[]);
    assert_eq!(code, 0, "doctor finds drift:\n{report}");
}
