//! Delete = forget: every host resource of the container goes (processes,
//! runtime state, overlay mount, cgroup, veth, network namespace,
//! subvolume with anything nested in it, bundle, logs), its route and its
//! rows. One audit entry without tenant data remains.
//!
//! The call returns once nothing of the tenant runs or is stored: its
//! processes, route, files and rows are gone. The host plumbing that holds
//! no tenant data (runtime state, cgroup, chains, veth, namespace) is
//! removed right after, in the background, with its slot held meanwhile.

use std::sync::Arc;

use cubby_model::{ContainerId, ContainerStatus, EventType, Trigger};
use cubby_store::{AuditEntry, ContainerRecord};
use tracing::{Instrument, info_span};

use super::ContainerService;
use crate::{Caller, Error};

impl ContainerService {
    /// Deletes a container and everything of it.
    pub async fn delete_container(self: &Arc<Self>, caller: &Caller, id: &ContainerId) -> Result<(), Error> {
        self.delete_inner(caller, id).instrument(info_span!("container.delete", container = %id)).await
    }

    async fn delete_inner(self: &Arc<Self>, caller: &Caller, id: &ContainerId) -> Result<(), Error> {
        let guard = self.lock(id).await;
        let rec = self.record(caller, id)?;
        let t0 = std::time::Instant::now();
        self.store.set_status(id, ContainerStatus::Deleting, Trigger::Api, 0)?;
        self.access.routes.remove(id);
        self.failpoint("delete.marked");
        if let Err(err) = self.forget_now(&rec).await {
            self.store.set_status(id, ContainerStatus::Failed, Trigger::Api, 0)?;
            return Err(err);
        }
        let audit = AuditEntry {
            at: cubby_model::now(),
            action: "container.deleted".into(),
            project_id: Some(rec.project_id.clone()),
            container_id: Some(id.clone()),
        };
        self.failpoint("delete.forgotten");
        info_span!("db.delete").in_scope(|| self.store.delete_container_deferred(id, &audit))?;
        self.failpoint("delete.deferred");
        drop(guard);
        self.activity.forget(id);
        self.watch.forget(id);
        self.tallies.forget(id);
        self.announce(EventType::ContainerDeleted, &rec, Some(Trigger::Api), Some(caller), serde_json::json!({}));
        // Its snapshots went with its rows; their layers, and those only it
        // used, go now.
        self.collect_layers().instrument(info_span!("layers.collect")).await?;
        self.sweep_qgroups();
        self.spawn_teardown(rec);
        tracing::info!(container = %id, ms = crate::error::elapsed_ms(t0), "container deleted");
        Ok(())
    }

    /// What holds tenant data or runs tenant code goes at once: the
    /// processes (SIGKILL to init through its pidfd: the kernel ends the
    /// rest of its pid namespace with it), the rootfs mount, the subvolume
    /// (its files, `/data` included) and its output logs.
    async fn forget_now(&self, rec: &ContainerRecord) -> Result<(), Error> {
        let id = rec.id.as_str();
        let paths = self.paths(&rec.id, rec.slot);
        match self.unmonitor(&rec.id) {
            Some(init) => {
                async {
                    init.kill().map_err(|e| Error::io("kill init of", &paths.bundle)(e))?;
                    if tokio::time::timeout(std::time::Duration::from_secs(5), init.exited()).await.is_err() {
                        tracing::warn!(container = id, "init did not exit within 5 s of SIGKILL");
                    }
                    Ok::<_, Error>(())
                }
                .instrument(info_span!("runtime.kill"))
                .await?
            }
            // Not watched (stopped, or never started): the runtime knows.
            None => self.halt(rec, None).instrument(info_span!("runtime.halt")).await?,
        }
        info_span!("storage.unmount")
            .in_scope(|| self.host.mounts.unmount(&paths.rootfs))
            .map_err(Error::storage("unmount rootfs", id))?;
        info_span!("storage.subvolume_delete").in_scope(|| {
            self.host.btrfs.delete_subvolume(&paths.subvolume).map_err(Error::storage("delete subvolume", id))
        })?;
        self.forget_backup_snapshots(&rec.id);
        self.drop_output(&rec.id);
        paths.log.remove().map_err(Error::runtime("remove logs", id))
    }

    /// Removes in the background what holds no tenant data (runtime state,
    /// cgroup, firewall chains, veth, network namespace, bundle); removing
    /// a veth alone costs the kernel tens of milliseconds. The slot stays
    /// reserved until this is done; after a crash, reconcile finishes it.
    fn spawn_teardown(self: &Arc<Self>, rec: ContainerRecord) {
        let platform = Arc::clone(self);
        // Its own root span: the delete has answered already.
        let span = info_span!(parent: None, "container.teardown", container = %rec.id);
        let task = tokio::spawn(
            async move {
                match platform.destroy(&rec).await {
                    Ok(()) => {
                        if let Err(e) = platform.store.finish_teardown(&rec.id) {
                            tracing::warn!(container = %rec.id, error = %e, "could not free the slot of a torn-down container");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(container = %rec.id, error = %e, "teardown failed; its slot stays held until the next start reconciles");
                    }
                }
            }
            .instrument(span),
        );
        let mut pending = self.teardowns.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        pending.retain(|t| !t.is_finished());
        pending.push(task);
    }

    /// Removes every host resource of `rec`, whatever state it is in. Each
    /// step runs even when an earlier one failed; the first error is
    /// returned. Safe to repeat.
    pub(crate) async fn destroy(&self, rec: &ContainerRecord) -> Result<(), Error> {
        let id = rec.id.as_str();
        let paths = self.paths(&rec.id, rec.slot);
        let mut first: Option<Error> = None;
        let mut keep = |r: Result<(), Error>| {
            if let Err(e) = r {
                tracing::warn!(container = id, error = %e, "delete step failed");
                first.get_or_insert(e);
            }
        };
        keep(self.halt(rec, None).instrument(info_span!("runtime.halt")).await);
        for step in self.network.disconnect(rec).await {
            keep(step);
        }
        keep(info_span!("storage.subvolume_delete").in_scope(|| {
            self.host.btrfs.delete_subvolume(&paths.subvolume).map_err(Error::storage("delete subvolume", id))
        }));
        self.forget_backup_snapshots(&rec.id);
        self.drop_output(&rec.id);
        keep(remove_dir(&paths.bundle));
        keep(paths.log.remove().map_err(Error::runtime("remove logs", id)));
        match first {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

fn remove_dir(dir: &std::path::Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", dir)(e)),
    }
}
