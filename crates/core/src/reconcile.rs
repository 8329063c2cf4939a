//! Bringing the host and the store back in step when the daemon starts.
//!
//! Containers keep running while the daemon is down. At start:
//! - a container recorded running whose init still runs gets its route and
//!   exit monitor back; one whose init is gone (a reboot, a crash) is
//!   started again;
//! - a create, copy or delete that a crash interrupted is finished by
//!   removing what it made: a half-made container is never visible;
//! - host resources with the daemon's names that no record owns (runtime
//!   state, mounts, subvolumes, namespaces, veths) are removed.

use std::sync::Arc;

use cubby_model::{ContainerStatus, Trigger};
use cubby_runtime::RuntimeStatus;
use cubby_store::AuditEntry;

use crate::Error;
use crate::containers::ContainerService;
use crate::inventory::{Inventory, Layout, Owners};

/// What a reconciliation found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Containers found running and re-attached.
    pub reattached: usize,
    /// Containers that should run but did not, started again.
    pub restarted: usize,
    /// Interrupted operations rolled back or finished.
    pub finished: usize,
    /// Host resources nobody owned, removed.
    pub orphans_removed: usize,
}

impl ContainerService {
    pub(crate) async fn reconcile(self: &Arc<Self>) -> Result<ReconcileReport, Error> {
        let mut report = ReconcileReport::default();
        report.finished += self.recover_restores()?;
        let records = self.store.containers(None, None, u32::MAX)?;
        let layout = self.config.layout();
        let owners = Owners {
            containers: records.iter().map(|r| r.id.to_string()).collect(),
            veths: records.iter().map(|r| layout.veth(r.slot)).collect(),
            // The layer collector, which runs next, judges layers.
            layers: None,
        };

        for rec in &records {
            let _guard = self.lock(&rec.id).await;
            match rec.status {
                ContainerStatus::Creating | ContainerStatus::Copying | ContainerStatus::Deleting => {
                    let action = if rec.status == ContainerStatus::Deleting {
                        "container.deleted"
                    } else {
                        "container.create_interrupted"
                    };
                    tracing::info!(container = %rec.id, status = rec.status.as_str(), "finishing an interrupted operation");
                    self.destroy(rec).await?;
                    self.store.delete_container(
                        &rec.id,
                        &AuditEntry {
                            at: cubby_model::now(),
                            action: action.into(),
                            project_id: Some(rec.project_id.clone()),
                            container_id: Some(rec.id.clone()),
                        },
                    )?;
                    report.finished += 1;
                }
                ContainerStatus::Running => {
                    let state = self
                        .host
                        .runtime
                        .state(rec.id.as_str())
                        .await
                        .map_err(Error::runtime("read state", rec.id.as_str()))?;
                    match state {
                        Some(s) if s.status == RuntimeStatus::Running && s.pid.is_some() => {
                            self.publish_routes(rec, true)?;
                            self.activity.touch(&rec.id);
                            if let Err(e) = self.collect_output(&rec.id, rec.slot) {
                                // An earlier version's container writes a file.
                                tracing::warn!(container = %rec.id, error = %e.chain(), "its output is not collected until it restarts");
                            }
                            self.monitor(&rec.id, s.pid.unwrap_or_default());
                            report.reattached += 1;
                        }
                        _ => {
                            tracing::info!(container = %rec.id, "container should run but does not: starting it");
                            self.publish_routes(rec, false)?;
                            if let Err(e) = self.start_locked(rec, Trigger::Reconcile, None).await {
                                tracing::warn!(container = %rec.id, error = %e.chain(), "restart at reconcile failed");
                            }
                            report.restarted += 1;
                        }
                    }
                }
                ContainerStatus::Stopped | ContainerStatus::Failed => {
                    self.halt(rec, None).await?;
                    // After a reboot its network is gone; a stopped
                    // container keeps it, so a wake does not pay for it.
                    if let Err(e) = self.network.ensure_connected(rec).await {
                        tracing::warn!(container = %rec.id, error = %e.chain(), "could not reattach a stopped container");
                    }
                    self.publish_routes(rec, false)?;
                }
            }
        }

        report.orphans_removed = self.remove_orphans(&layout, &owners).await?;
        // Teardowns a crash interrupted: their host side was just removed
        // as orphans, so their slots are free again.
        for (id, _) in self.store.teardowns()? {
            self.store.finish_teardown(&id)?;
        }
        tracing::info!(?report, "reconciled");
        Ok(report)
    }

    /// Removes host resources named like this daemon's but owned by no
    /// record (the inventory's rules, as `cubby doctor` reports them).
    async fn remove_orphans(&self, layout: &Layout, owners: &Owners) -> Result<usize, Error> {
        let orphans = Inventory::take(layout, &self.host).await?.orphans(layout, owners);
        for orphan in &orphans {
            tracing::info!(resource = %orphan.subject(layout), why = orphan.detail, "removing an orphan");
            orphan.remove(layout, &self.host).await?;
        }
        Ok(orphans.len())
    }
}
