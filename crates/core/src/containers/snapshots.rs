//! Snapshots of a container: create, list, read, rename, restore in place,
//! delete, and expire.
//!
//! A snapshot is a read-only btrfs snapshot of the container's own
//! subvolume (frozen for the instant if it runs), kept as a layer with the
//! lowers the container had then. Restoring stops the container, swaps its
//! subvolume for a writable snapshot of the layer, and starts it again.

use std::sync::Arc;
use std::time::Duration;

use cubby_model::{
    Container, ContainerId, ContainerStatus, CreateSnapshot, EventType, Snapshot, SnapshotId, Trigger, UpdateSnapshot,
    random_id, validate_alias,
};
use cubby_storage::image::tree_size;
use cubby_store::{LayerKind, SnapshotRecord};

use super::ContainerService;
use crate::{Caller, Error};

/// Longest expiry, in days.
const MAX_EXPIRY_DAYS: f64 = 3650.0;

fn snapshot_name() -> String {
    let now = cubby_model::now();
    format!(
        "snap-{:04}{:02}{:02}-{:02}{:02}{:02}-{}",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second(),
        random_id(4)
    )
}

impl ContainerService {
    fn snapshot_view(&self, s: &SnapshotRecord) -> Result<Snapshot, Error> {
        let size = match self.store.layer(&s.layer_id)? {
            Some(layer) => tree_size(&self.layer_root(&layer)).ok(),
            None => None,
        };
        Ok(Snapshot {
            name: s.name.clone(),
            alias: s.alias.clone(),
            container_id: s.container_id.clone(),
            created_at: s.created_at,
            expires_at: s.expires_at,
            size_bytes: size,
        })
    }

    /// Takes a snapshot of a container.
    pub async fn create_snapshot(
        &self,
        caller: &Caller,
        id: &ContainerId,
        req: &CreateSnapshot,
    ) -> Result<Snapshot, Error> {
        if let Some(alias) = &req.alias {
            validate_alias(alias)?;
        }
        let expires_at = match req.expiry_days {
            None => None,
            Some(days) if days > 0.0 && days <= MAX_EXPIRY_DAYS => {
                Some(cubby_model::now() + Duration::from_secs_f64(days * 86_400.0))
            }
            Some(_) => {
                return Err(Error::invalid(
                    "expiry_days",
                    format!("give more than 0 and at most {MAX_EXPIRY_DAYS} days"),
                ));
            }
        };
        let _guard = self.lock(id).await;
        let rec = self.record(caller, id)?;
        if !matches!(rec.status, ContainerStatus::Running | ContainerStatus::Stopped | ContainerStatus::Failed) {
            return Err(Error::Conflict {
                code: "container_busy",
                message: format!("container {id} is {}: wait and try again", rec.status.as_str()),
            });
        }
        if self.store.snapshots(id)?.len() >= rec.max_snapshots as usize {
            return Err(Error::LimitReached { what: "container max_snapshots", limit: rec.max_snapshots });
        }
        let _layers = self.layers_lock.lock().await;
        let (layer, _) = self.snapshot_subvolume(&rec, LayerKind::Snapshot)?;
        self.failpoint("snapshot.subvolume");
        let record = SnapshotRecord {
            id: SnapshotId::random(),
            container_id: rec.id.clone(),
            name: snapshot_name(),
            alias: req.alias.clone(),
            layer_id: layer.id.clone(),
            lowers: self.store.container_lowers(&rec.id)?.into_iter().map(|l| l.id).collect(),
            created_at: cubby_model::now(),
            expires_at,
        };
        if let Err(e) = self.store.insert_snapshot(&record, rec.max_snapshots) {
            let _ = self.host.btrfs.delete_subvolume(&self.pool.root().join(&layer.subvolume));
            let _ = self.store.delete_layer(&layer.id);
            return Err(e.into());
        }
        tracing::info!(container = %id, snapshot = %record.name, "snapshot taken");
        let data = serde_json::json!({ "snapshot_id": record.id, "snapshot": record.name });
        self.announce(EventType::SnapshotCreated, &rec, None, Some(caller), data);
        self.snapshot_view(&record)
    }

    /// A container's snapshots, oldest first.
    pub fn snapshots(&self, caller: &Caller, id: &ContainerId) -> Result<Vec<Snapshot>, Error> {
        self.record(caller, id)?;
        self.store.snapshots(id)?.iter().map(|s| self.snapshot_view(s)).collect()
    }

    pub(crate) fn snapshot_record(&self, id: &ContainerId, key: &str) -> Result<SnapshotRecord, Error> {
        self.store.snapshot(id, key)?.ok_or_else(|| Error::NotFound { kind: "snapshot", id: key.to_string() })
    }

    /// One snapshot, by name or alias.
    pub fn snapshot(&self, caller: &Caller, id: &ContainerId, key: &str) -> Result<Snapshot, Error> {
        self.record(caller, id)?;
        self.snapshot_view(&self.snapshot_record(id, key)?)
    }

    /// Renames (or removes) a snapshot's alias.
    pub async fn update_snapshot(
        &self,
        caller: &Caller,
        id: &ContainerId,
        key: &str,
        req: &UpdateSnapshot,
    ) -> Result<Snapshot, Error> {
        let _guard = self.lock(id).await;
        self.record(caller, id)?;
        let snapshot = self.snapshot_record(id, key)?;
        if let Some(alias) = &req.alias {
            validate_alias(alias)?;
        }
        self.store.set_snapshot_alias(&snapshot.id, req.alias.as_deref())?;
        self.snapshot_view(&self.snapshot_record(id, &snapshot.name)?)
    }

    /// Deletes a snapshot. Its layer goes when no copy uses it.
    pub async fn delete_snapshot(&self, caller: &Caller, id: &ContainerId, key: &str) -> Result<(), Error> {
        {
            let _guard = self.lock(id).await;
            let rec = self.record(caller, id)?;
            let snapshot = self.snapshot_record(id, key)?;
            self.store.delete_snapshot(&snapshot.id)?;
            let data = serde_json::json!({ "snapshot_id": snapshot.id, "snapshot": snapshot.name });
            self.announce(EventType::SnapshotDeleted, &rec, None, Some(caller), data);
        }
        self.collect_layers().await?;
        Ok(())
    }

    /// Restores a container to a snapshot, in place. A running container is
    /// stopped around the restore and started again.
    pub async fn restore_snapshot(
        self: &Arc<Self>,
        caller: &Caller,
        id: &ContainerId,
        key: &str,
    ) -> Result<Container, Error> {
        let _guard = self.lock(id).await;
        let rec = self.record(caller, id)?;
        let snapshot = self.snapshot_record(id, key)?;
        let was_running = rec.status == ContainerStatus::Running;
        let rec = match rec.status {
            ContainerStatus::Running | ContainerStatus::Failed => {
                self.stop_locked(&rec, Trigger::Api, Some(self.config.defaults.stop_timeout), Some(caller)).await?
            }
            ContainerStatus::Stopped => rec,
            other => {
                return Err(Error::Conflict {
                    code: "container_busy",
                    message: format!("container {id} is {}: wait and try again", other.as_str()),
                });
            }
        };
        {
            let _layers = self.layers_lock.lock().await;
            let layer = self
                .store
                .layer(&snapshot.layer_id)?
                .ok_or_else(|| Error::NotFound { kind: "layer", id: snapshot.layer_id.to_string() })?;
            self.swap_in_snapshot(&rec, &layer, &snapshot.lowers)?;
        }
        tracing::info!(container = %id, snapshot = %snapshot.name, "snapshot restored");
        let data = serde_json::json!({ "snapshot_id": snapshot.id, "snapshot": snapshot.name });
        self.announce(EventType::SnapshotRestored, &rec, None, Some(caller), data);
        let rec = if was_running { self.start_locked(&rec, Trigger::Api, Some(caller)).await? } else { rec };
        self.detailed_view(&rec)
    }

    /// Removes snapshots whose expiry has passed.
    pub(crate) async fn expire_snapshots(&self) -> Result<usize, Error> {
        let expired = self.store.expired_snapshots(cubby_model::now())?;
        for s in &expired {
            let _guard = self.lock(&s.container_id).await;
            self.store.delete_snapshot(&s.id)?;
            tracing::info!(container = %s.container_id, snapshot = %s.name, "snapshot expired");
            if let Ok(Some(rec)) = self.store.container(&s.container_id) {
                let data = serde_json::json!({ "snapshot_id": s.id, "snapshot": s.name, "expired": true });
                self.announce(EventType::SnapshotDeleted, &rec, None, None, data);
            }
        }
        if !expired.is_empty() {
            self.collect_layers().await?;
        }
        Ok(expired.len())
    }
}
