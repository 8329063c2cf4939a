//! Delete = forget: every host resource of the container goes (processes,
//! runtime state, overlay mount, cgroup, veth, network namespace,
//! subvolume with anything nested in it, bundle, logs), then its route and
//! rows. One audit entry without tenant data remains.

use std::sync::Arc;

use cubby_model::{ContainerId, ContainerStatus, Trigger};
use cubby_store::{AuditEntry, ContainerRecord};
use tracing::{Instrument, info_span};

use crate::{Caller, Error, Platform};

impl Platform {
    /// Deletes a container and everything of it.
    pub async fn delete_container(self: &Arc<Self>, caller: &Caller, id: &ContainerId) -> Result<(), Error> {
        self.delete_inner(caller, id).instrument(info_span!("container.delete", container = %id)).await
    }

    async fn delete_inner(self: &Arc<Self>, caller: &Caller, id: &ContainerId) -> Result<(), Error> {
        let guard = self.lock(id).await;
        let rec = self.record(caller, id)?;
        let t0 = std::time::Instant::now();
        self.store.set_status(id, ContainerStatus::Deleting, Trigger::Api, 0)?;
        self.routes.remove(id);
        if let Err(err) = self.destroy(&rec).await {
            self.store.set_status(id, ContainerStatus::Failed, Trigger::Api, 0)?;
            return Err(err);
        }
        info_span!("db.delete").in_scope(|| {
            self.store.delete_container(
                id,
                &AuditEntry {
                    at: cubby_model::now(),
                    action: "container.deleted".into(),
                    project_id: Some(rec.project_id.clone()),
                    container_id: Some(id.clone()),
                },
            )
        })?;
        drop(guard);
        self.forget_lock(id);
        self.activity.forget(id);
        // Its snapshots went with its rows; their layers, and those only it
        // used, go now.
        self.collect_layers().instrument(info_span!("layers.collect")).await?;
        self.sweep_qgroups();
        tracing::info!(container = %id, ms = crate::error::elapsed_ms(t0), "container deleted");
        Ok(())
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
        keep(self.remove_firewall(rec).instrument(info_span!("firewall.remove")).await);
        let netlink = &self.host.netlink;
        keep(
            netlink
                .detach(&paths.veth)
                .instrument(info_span!("network.veth_delete"))
                .await
                .map_err(Error::netlink("remove veth", id)),
        );
        keep(
            netlink
                .delete_netns(&paths.netns)
                .instrument(info_span!("network.netns_delete"))
                .await
                .map_err(Error::netlink("remove network namespace", id)),
        );
        keep(info_span!("storage.subvolume_delete").in_scope(|| {
            self.host.btrfs.delete_subvolume(&paths.subvolume).map_err(Error::storage("delete subvolume", id))
        }));
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
