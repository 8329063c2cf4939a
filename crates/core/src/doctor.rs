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

use cubby_model::ContainerStatus;
use cubby_store::Store;

pub use crate::inventory::Layout;
use crate::inventory::{Inventory, Namespace, Orphan, Owners};
use crate::{Error, Host};

/// How a drift is repaired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fix {
    /// An orphan: removing it is the fix.
    Remove(Orphan),
    /// Nothing to remove: what to do instead.
    Advice(String),
}

/// The kinds of drift.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DriftKind {
    /// A resource of a recorded container is missing.
    Missing,
    /// A host resource named like this daemon's that no record owns.
    Orphan,
    /// A container's recorded status is not what the host shows.
    State,
}

impl DriftKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Orphan => "orphan",
            Self::State => "state",
        }
    }
}

impl std::fmt::Display for DriftKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

/// One difference between the database and the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drift {
    pub kind: DriftKind,
    /// The container id or host object.
    pub subject: String,
    pub detail: String,
    pub fix: Fix,
}

/// Compares the database with the host.
pub async fn inspect(layout: &Layout, store: &dyn Store, host: &Host) -> Result<Vec<Drift>, Error> {
    let mut drift = Vec::new();
    let records = store.containers(None, None, u32::MAX)?;
    let teardowns = store.teardowns()?;
    let owners = Owners {
        containers: records
            .iter()
            .map(|r| r.id.to_string())
            .chain(teardowns.iter().map(|(id, _)| id.to_string()))
            .collect(),
        veths: records
            .iter()
            .map(|r| r.slot)
            .chain(teardowns.iter().map(|(_, slot)| *slot))
            .map(|s| layout.veth(s))
            .collect(),
        layers: Some(store.all_layers()?.iter().map(crate::layers::layer_name).collect()),
    };
    let inventory = Inventory::take(layout, host).await?;
    let running = inventory.running();

    let restart = |id: &str| {
        Fix::Advice(format!("restart the daemon (reconcile rebuilds it) or `cubby containers restart {id}`"))
    };
    for rec in &records {
        let id = rec.id.as_str();
        if matches!(rec.status, ContainerStatus::Creating | ContainerStatus::Copying | ContainerStatus::Deleting) {
            drift.push(Drift {
                kind: DriftKind::State,
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
        if !inventory.container_subvolumes.contains(id) {
            drift.push(Drift {
                kind: DriftKind::Missing,
                subject: id.into(),
                detail: "its subvolume is gone: its files are lost".into(),
                fix: Fix::Advice(format!("delete it: `cubby containers delete {id}`")),
            });
        }
        if !inventory.has_namespace(Namespace::Network, id) {
            drift.push(Drift {
                kind: DriftKind::Missing,
                subject: id.into(),
                detail: "no network namespace".into(),
                fix: restart(id),
            });
        }
        let veth = layout.veth(rec.slot);
        if !inventory.links.contains(&veth) {
            drift.push(Drift {
                kind: DriftKind::Missing,
                subject: id.into(),
                detail: format!("no veth {veth}"),
                fix: restart(id),
            });
        }
        match rec.status {
            ContainerStatus::Running if !running.contains(id) => drift.push(Drift {
                kind: DriftKind::State,
                subject: id.into(),
                detail: "recorded as running, but no process runs".into(),
                fix: restart(id),
            }),
            ContainerStatus::Running => {}
            _ if running.contains(id) => drift.push(Drift {
                kind: DriftKind::State,
                subject: id.into(),
                detail: format!("recorded as {}, but it runs", rec.status.as_str()),
                fix: Fix::Advice(format!("`cubby containers stop {id}` or restart the daemon")),
            }),
            _ => {}
        }
    }

    for orphan in inventory.orphans(layout, &owners) {
        drift.push(Drift {
            kind: DriftKind::Orphan,
            subject: orphan.subject(layout),
            detail: orphan.detail.to_string(),
            fix: Fix::Remove(orphan),
        });
    }
    drift.sort_by(|a, b| (a.kind, &a.subject).cmp(&(b.kind, &b.subject)));
    Ok(drift)
}

/// Removes the orphans among `drift` (in the inventory's removal order);
/// answers how many it removed.
pub async fn repair(layout: &Layout, host: &Host, drift: &[Drift]) -> Result<usize, Error> {
    let mut orphans: Vec<&Orphan> = drift
        .iter()
        .filter_map(|d| match &d.fix {
            Fix::Remove(o) => Some(o),
            Fix::Advice(_) => None,
        })
        .collect();
    orphans.sort_by(|a, b| a.resource.cmp(&b.resource));
    for orphan in &orphans {
        orphan.remove(layout, host).await?;
    }
    Ok(orphans.len())
}
