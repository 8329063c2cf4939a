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

use std::collections::HashSet;
use std::sync::Arc;

use cubby_model::{ContainerId, ContainerStatus, Trigger};
use cubby_runtime::RuntimeStatus;
use cubby_store::AuditEntry;

use crate::{Error, Platform};

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

impl Platform {
    pub(crate) async fn reconcile(self: &Arc<Self>) -> Result<ReconcileReport, Error> {
        let mut report = ReconcileReport::default();
        report.finished += self.recover_restores()?;
        let records = self.store.containers(None, None, u32::MAX)?;
        let known: HashSet<String> = records.iter().map(|r| r.id.to_string()).collect();
        let slots: HashSet<String> = records.iter().map(|r| self.paths(&r.id, r.slot).veth).collect();

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
                            if let Err(e) = self.start_locked(rec, Trigger::Reconcile).await {
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
                    if let Err(e) = self.ensure_connected(rec).await {
                        tracing::warn!(container = %rec.id, error = %e.chain(), "could not reattach a stopped container");
                    }
                    self.publish_routes(rec, false)?;
                }
            }
        }

        report.orphans_removed = self.remove_orphans(&known, &slots).await?;
        // Teardowns a crash interrupted: their host side was just removed
        // as orphans, so their slots are free again.
        for (id, _) in self.store.teardowns()? {
            self.store.finish_teardown(&id)?;
        }
        tracing::info!(?report, "reconciled");
        Ok(report)
    }

    /// Removes host resources named like this daemon's but owned by no record.
    async fn remove_orphans(&self, known: &HashSet<String>, veths: &HashSet<String>) -> Result<usize, Error> {
        let mut removed = 0;
        let runtime = &self.host.runtime;
        for state in runtime.list().await.map_err(Error::runtime("list", "*"))? {
            if !known.contains(&state.id) {
                tracing::info!(container = %state.id, "removing a runtime container no record owns");
                runtime.delete(&state.id, true).await.map_err(Error::runtime("delete orphan", &state.id))?;
                removed += 1;
            }
        }
        let bundles = self.config.run_dir.join("containers");
        for id in dir_names(&bundles) {
            if !known.contains(&id) {
                let rootfs = bundles.join(&id).join("rootfs");
                self.host.mounts.unmount(&rootfs).map_err(Error::storage("unmount orphan rootfs", &id))?;
                let _ = std::fs::remove_dir_all(bundles.join(&id));
                self.host
                    .cgroups
                    .remove(&format!("/{}/{id}", self.config.prefix))
                    .map_err(Error::runtime("remove orphan cgroup", &id))?;
                removed += 1;
            }
        }
        for kind in ["netns", "userns"] {
            let dir = self.config.run_dir.join(kind);
            for id in dir_names(&dir) {
                if !known.contains(&id) {
                    self.host
                        .netlink
                        .delete_netns(&dir.join(&id))
                        .await
                        .map_err(Error::netlink("remove orphan namespace", &id))?;
                    removed += 1;
                }
            }
        }
        for id in dir_names(&self.pool.containers_dir()) {
            if !known.contains(&id) && ContainerId::is_well_formed(&id) {
                tracing::info!(container = %id, "removing a subvolume no record owns");
                self.host
                    .btrfs
                    .delete_subvolume(&self.pool.container(&id))
                    .map_err(Error::storage("delete orphan subvolume", &id))?;
                removed += 1;
            }
        }
        let bridge = self.bridge();
        let links = self
            .host
            .netlink
            .links_with_prefix(&format!("{}-", self.config.prefix))
            .await
            .map_err(|source| Error::Netlink { step: "list veths", container: None, source: Box::new(source) })?;
        for link in links.into_iter().filter(|l| *l != bridge && !veths.contains(l)) {
            self.host.netlink.detach(&link).await.map_err(|source| Error::Netlink {
                step: "remove orphan veth",
                container: None,
                source: Box::new(source),
            })?;
            removed += 1;
        }
        Ok(removed)
    }
}

fn dir_names(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok()).filter_map(|e| e.file_name().into_string().ok()).collect())
        .unwrap_or_default()
}
