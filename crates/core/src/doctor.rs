//! `cubby doctor`: drift between the database and the host, found without
//! a running daemon (or beside one: it only reads, unless asked to fix).
//!
//! Drift is either a resource of a recorded container that is missing or
//! in the wrong state (a subvolume, namespace, veth, runtime state), or a
//! host resource named like this daemon's that no record owns (an orphan:
//! subvolume, layer, runtime container, namespace, veth, cgroup, bundle, a
//! root filesystem left mounted on the host by an earlier version). `repair` removes orphans; a missing piece of a known
//! container is rebuilt by the daemon's reconcile at its next start, so the
//! fix for those says so.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use cubby_model::ContainerStatus;
use cubby_runtime::RuntimeStatus;
use cubby_store::Store;

use crate::{Error, Host};

/// Where one daemon instance keeps its things.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The name stem of its host resources.
    pub prefix: String,
    pub data_dir: PathBuf,
    pub run_dir: PathBuf,
}

/// How a drift is repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    RemoveSubvolume(PathBuf),
    DeleteRuntime(String),
    RemoveNetns(PathBuf),
    RemoveLink(String),
    RemoveCgroup(String),
    RemoveBundle(PathBuf),
    /// A container root mounted on the host that nothing runs in.
    Unmount(PathBuf),
    /// Nothing to remove: what to do instead.
    Advice(String),
}

/// One difference between the database and the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    /// `missing`, `orphan` or `state`.
    pub kind: &'static str,
    /// The container id or host object.
    pub subject: String,
    pub detail: String,
    pub fix: Fix,
}

fn names(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(Result::ok).filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default()
}

fn err<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Error {
    move |e| Error::Conflict { code: "doctor_failed", message: format!("{what}: {e}") }
}

/// Compares the database with the host.
pub async fn inspect(config: &Layout, store: &dyn Store, host: &Host) -> Result<Vec<Drift>, Error> {
    let mut drift = Vec::new();
    let pool = config.data_dir.join("pool");
    let records = store.containers(None, None, u32::MAX)?;
    let teardowns = store.teardowns()?;
    let known: HashSet<String> =
        records.iter().map(|r| r.id.to_string()).chain(teardowns.iter().map(|(id, _)| id.to_string())).collect();
    let veths: HashSet<String> = records
        .iter()
        .map(|r| r.slot)
        .chain(teardowns.iter().map(|(_, slot)| *slot))
        .map(|slot| cubby_network::ipam::veth_name(&config.prefix, slot))
        .collect();

    let subvolumes: HashSet<String> = names(&pool.join("containers")).into_iter().collect();
    let runtime: Vec<_> = host.runtime.list().await.map_err(err("listing the runtime's containers"))?;
    let running: HashSet<String> =
        runtime.iter().filter(|s| s.status == RuntimeStatus::Running).map(|s| s.id.clone()).collect();
    let links: HashSet<String> = host
        .netlink
        .links_with_prefix(&format!("{}-", config.prefix))
        .await
        .map_err(err("listing links"))?
        .into_iter()
        .collect();
    let bundles = config.run_dir.join("containers");
    let mounted: HashSet<PathBuf> =
        host.mounts.mounts_under(&bundles).map_err(err("reading the mount table"))?.into_iter().collect();

    let restart = |id: &str| {
        Fix::Advice(format!("restart the daemon (reconcile rebuilds it) or `cubby containers restart {id}`"))
    };
    for rec in &records {
        let id = rec.id.as_str();
        if matches!(rec.status, ContainerStatus::Creating | ContainerStatus::Copying | ContainerStatus::Deleting) {
            drift.push(Drift {
                kind: "state",
                subject: id.into(),
                detail: format!(
                    "recorded as {} (an operation in flight, or one a crash cut short)",
                    rec.status.as_str()
                ),
                fix: Fix::Advice(
                    "if no daemon is running, start it: reconcile finishes or rolls back the operation".into(),
                ),
            });
            continue;
        }
        if !subvolumes.contains(id) {
            drift.push(Drift {
                kind: "missing",
                subject: id.into(),
                detail: "its subvolume is gone: its files are lost".into(),
                fix: Fix::Advice(format!("delete it: `cubby containers delete {id}`")),
            });
        }
        let netns = config.run_dir.join("netns").join(id);
        if !netns.exists() {
            drift.push(Drift {
                kind: "missing",
                subject: id.into(),
                detail: "no network namespace".into(),
                fix: restart(id),
            });
        }
        let veth = cubby_network::ipam::veth_name(&config.prefix, rec.slot);
        if !links.contains(&veth) {
            drift.push(Drift {
                kind: "missing",
                subject: id.into(),
                detail: format!("no veth {veth}"),
                fix: restart(id),
            });
        }
        match rec.status {
            ContainerStatus::Running if !running.contains(id) => drift.push(Drift {
                kind: "state",
                subject: id.into(),
                detail: "recorded as running, but no process runs".into(),
                fix: restart(id),
            }),
            ContainerStatus::Running => {}
            _ if running.contains(id) => drift.push(Drift {
                kind: "state",
                subject: id.into(),
                detail: format!("recorded as {}, but it runs", rec.status.as_str()),
                fix: Fix::Advice(format!("`cubby containers stop {id}` or restart the daemon")),
            }),
            _ => {}
        }
    }

    // Orphans: named like this daemon's, owned by no record.
    for id in subvolumes.iter().filter(|id| !known.contains(*id)) {
        drift.push(Drift {
            kind: "orphan",
            subject: format!("subvolume containers/{id}"),
            detail: "no container owns it".into(),
            fix: Fix::RemoveSubvolume(pool.join("containers").join(id)),
        });
    }
    let layers: HashSet<String> = store.all_layers()?.into_iter().map(|l| l.subvolume).collect();
    for name in names(&pool.join("layers")) {
        if !layers.contains(&format!("layers/{name}")) {
            drift.push(Drift {
                kind: "orphan",
                subject: format!("subvolume layers/{name}"),
                detail: "no layer record owns it".into(),
                fix: Fix::RemoveSubvolume(pool.join("layers").join(&name)),
            });
        }
    }
    for state in runtime.iter().filter(|s| !known.contains(&s.id)) {
        drift.push(Drift {
            kind: "orphan",
            subject: format!("runtime container {}", state.id),
            detail: format!("{:?} in the runtime, no record", state.status),
            fix: Fix::DeleteRuntime(state.id.clone()),
        });
    }
    for (dir, what) in [("netns", "network"), ("userns", "user")] {
        for id in names(&config.run_dir.join(dir)).into_iter().filter(|id| !known.contains(id)) {
            drift.push(Drift {
                kind: "orphan",
                subject: format!("{what} namespace {id}"),
                detail: "no container owns it".into(),
                fix: Fix::RemoveNetns(config.run_dir.join(dir).join(id)),
            });
        }
    }
    let bridge = cubby_network::ipam::bridge_name(&config.prefix);
    for link in links.iter().filter(|l| **l != bridge && !veths.contains(*l)) {
        drift.push(Drift {
            kind: "orphan",
            subject: format!("link {link}"),
            detail: "no container's slot".into(),
            fix: Fix::RemoveLink(link.clone()),
        });
    }
    for id in names(&bundles).into_iter().filter(|id| !known.contains(id)) {
        drift.push(Drift {
            kind: "orphan",
            subject: format!("bundle {id}"),
            detail: "runtime files of no container".into(),
            fix: Fix::RemoveBundle(bundles.join(id)),
        });
    }
    // Roots are mounted in each container's own mount namespace, never on
    // the host (see `cubby_runtime::mountns`); one on the host is left from
    // an earlier version, and its container still runs, or it is left over.
    for path in &mounted {
        let owner = path.parent().and_then(Path::file_name).and_then(|n| n.to_str()).unwrap_or_default();
        if !running.contains(owner) {
            drift.push(Drift {
                kind: "orphan",
                subject: format!("mount {}", path.display()),
                detail: "mounted on the host, and no container runs in it".into(),
                fix: Fix::Unmount(path.clone()),
            });
        }
    }
    let parent = format!("/{}", config.prefix);
    let mut cgroups = HashSet::new();
    for dir in host.cgroups.dirs(&parent) {
        for child in names(&dir) {
            if dir.join(&child).is_dir() && !known.contains(&child) && cubby_model::ContainerId::is_well_formed(&child)
            {
                cgroups.insert(child);
            }
        }
    }
    for id in cgroups {
        drift.push(Drift {
            kind: "orphan",
            subject: format!("cgroup {parent}/{id}"),
            detail: "no container owns it".into(),
            fix: Fix::RemoveCgroup(format!("{parent}/{id}")),
        });
    }
    drift.sort_by(|a, b| (a.kind, &a.subject).cmp(&(b.kind, &b.subject)));
    Ok(drift)
}

/// Removes the orphans among `drift`; answers how many it removed.
pub async fn repair(host: &Host, drift: &[Drift]) -> Result<usize, Error> {
    let mut removed = 0;
    for d in drift {
        let done = match &d.fix {
            Fix::RemoveSubvolume(path) => {
                host.btrfs.delete_subvolume(path).map_err(err("deleting a subvolume"))?;
                true
            }
            Fix::DeleteRuntime(id) => {
                host.runtime.delete(id, true).await.map_err(err("deleting a runtime container"))?;
                true
            }
            Fix::RemoveNetns(path) => {
                host.netlink.delete_netns(path).await.map_err(err("removing a network namespace"))?;
                true
            }
            Fix::RemoveLink(name) => {
                host.netlink.detach(name).await.map_err(err("removing a link"))?;
                true
            }
            Fix::RemoveCgroup(path) => {
                host.cgroups.remove(path).map_err(err("removing a cgroup"))?;
                true
            }
            Fix::RemoveBundle(dir) => {
                host.mounts.unmount(&dir.join("rootfs")).map_err(err("unmounting an orphan rootfs"))?;
                match std::fs::remove_dir_all(dir) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(Error::io("remove", dir)(e)),
                }
                true
            }
            Fix::Unmount(path) => {
                host.mounts.unmount(path).map_err(err("unmounting a leftover rootfs"))?;
                true
            }
            Fix::Advice(_) => false,
        };
        if done {
            removed += 1;
        }
    }
    Ok(removed)
}
