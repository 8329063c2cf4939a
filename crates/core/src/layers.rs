//! Read-only layers: images, templates frozen for copies, snapshots and
//! flattened chains. Each is a subvolume under `pool/layers/`, shared by
//! every container and snapshot that lists it, and removed when nothing
//! does any more.
//!
//! Copies of one template share its frozen layer: the template's own
//! subvolume is snapshotted read-only once, and again only when its btrfs
//! generation shows it changed. All copies then read the same files, so
//! they share the page cache too.

use std::path::PathBuf;

use cubby_model::{ContainerStatus, LayerId};
use cubby_store::{ContainerRecord, LayerKind, LayerRecord};

use crate::Error;
use crate::containers::ContainerService;

impl ContainerService {
    /// Where a layer's files are (the overlay lower).
    pub(crate) fn layer_root(&self, layer: &LayerRecord) -> PathBuf {
        self.pool.root().join(&layer.root)
    }

    /// The overlay lowers of a container, topmost first.
    pub(crate) fn lower_paths(&self, rec: &ContainerRecord) -> Result<Vec<PathBuf>, Error> {
        let layers = self.store.container_lowers(&rec.id)?;
        if layers.is_empty() {
            return Err(Error::Conflict {
                code: "container_broken",
                message: format!("container {} has no image layer recorded; delete it", rec.id),
            });
        }
        Ok(layers.iter().map(|l| self.layer_root(l)).collect())
    }

    /// Snapshots a container's own subvolume read-only into a new layer.
    /// A running container is frozen for the instant of the snapshot, so
    /// the layer is consistent. Returns the layer and the subvolume's
    /// generation right after.
    pub(crate) fn snapshot_subvolume(
        &self,
        rec: &ContainerRecord,
        kind: LayerKind,
    ) -> Result<(LayerRecord, u64), Error> {
        let id = LayerId::random();
        let source = self.pool.container(rec.id.as_str());
        let dest = self.pool.layers_dir().join(id.as_str());
        self.consistent_snapshot(rec, &dest)?;
        let generation =
            self.host.btrfs.generation(&source).map_err(Error::storage("read generation", rec.id.as_str()))?;
        let layer = LayerRecord {
            root: format!("layers/{id}/upper"),
            subvolume: format!("layers/{id}"),
            id,
            kind,
            created_at: cubby_model::now(),
            source_container: Some(rec.id.clone()),
            source_generation: Some(generation),
        };
        if let Err(e) = self.store.insert_layer(&layer) {
            let _ = self.host.btrfs.delete_subvolume(&dest);
            return Err(e.into());
        }
        Ok((layer, generation))
    }

    /// Snapshots a container's own subvolume read-only at `dest`, the
    /// container frozen (when running) for the instant it takes.
    pub(crate) fn consistent_snapshot(&self, rec: &ContainerRecord, dest: &std::path::Path) -> Result<(), Error> {
        let source = self.pool.container(rec.id.as_str());
        let cgroup = self.paths(&rec.id, rec.slot).cgroup;
        let frozen = rec.status == ContainerStatus::Running && self.host.cgroups.freeze(&cgroup).is_ok();
        let snapped = self.host.btrfs.snapshot(&source, dest, true);
        if frozen && let Err(e) = self.host.cgroups.thaw(&cgroup) {
            tracing::error!(container = %rec.id, error = %e, "could not thaw after a snapshot");
        }
        snapped.map_err(Error::storage("snapshot subvolume", rec.id.as_str()))
    }

    /// The layer that holds a container's current state for copies: the
    /// last frozen one while the container's subvolume has not changed
    /// since, else a new one. The caller holds the container's lock and
    /// the layer lock.
    pub(crate) fn frozen_layer(&self, rec: &ContainerRecord) -> Result<LayerId, Error> {
        let source = self.pool.container(rec.id.as_str());
        // Writes still in the page cache have not moved the generation yet.
        self.host.btrfs.sync(&source).map_err(Error::storage("sync", rec.id.as_str()))?;
        let now = self.host.btrfs.generation(&source).map_err(Error::storage("read generation", rec.id.as_str()))?;
        if let Some((layer, generation)) = &rec.frozen
            && *generation == now
            && self.store.layer(layer)?.is_some()
        {
            tracing::debug!(container = %rec.id, %layer, "reusing the frozen layer: unchanged since");
            return Ok(layer.clone());
        }
        let (layer, generation) = self.snapshot_subvolume(rec, LayerKind::Frozen)?;
        self.store.set_frozen_layer(&rec.id, Some((&layer.id, generation)))?;
        Ok(layer.id)
    }

    /// Merges a chain of layers into one new layer (for copies of copies
    /// past the depth limit). The caller holds the layer lock.
    pub(crate) fn flatten_chain(&self, chain: &[LayerId]) -> Result<LayerId, Error> {
        let mut roots = Vec::new();
        for id in chain {
            let layer = self.store.layer(id)?.ok_or_else(|| Error::NotFound { kind: "layer", id: id.to_string() })?;
            roots.push(self.layer_root(&layer));
        }
        let id = LayerId::random();
        let dest = self.pool.layers_dir().join(id.as_str());
        let scratch = self.pool.tmp_path("flatten");
        let step = |e| Error::Storage { step: "flatten layers", container: None, source: Box::new(e) };
        self.host.btrfs.create_subvolume(&dest).map_err(step)?;
        let result = std::fs::create_dir(&scratch)
            .map_err(Error::io("create", &scratch))
            .and_then(|()| cubby_storage::flatten::flatten(&*self.host.mounts, &roots, &scratch, &dest).map_err(step))
            .and_then(|()| self.host.btrfs.set_readonly(&dest, true).map_err(step));
        let _ = std::fs::remove_dir(&scratch);
        if let Err(e) = result {
            let _ = self.host.btrfs.delete_subvolume(&dest);
            return Err(e);
        }
        let layer = LayerRecord::standalone(id.clone(), LayerKind::Flattened, cubby_model::now());
        if let Err(e) = self.store.insert_layer(&layer) {
            let _ = self.host.btrfs.delete_subvolume(&dest);
            return Err(e.into());
        }
        tracing::info!(layer = %id, depth = chain.len(), "flattened a chain of layers");
        Ok(id)
    }

    /// Removes every layer that no container, snapshot or image refers to.
    pub(crate) async fn collect_layers(&self) -> Result<usize, Error> {
        let _layers = self.layers_lock.lock().await;
        let mut removed = 0;
        for layer in self.store.unreferenced_layers()? {
            let path = self.pool.root().join(&layer.subvolume);
            self.host.btrfs.delete_subvolume(&path).map_err(Error::storage("delete layer", layer.id.as_str()))?;
            self.store.delete_layer(&layer.id)?;
            tracing::debug!(layer = %layer.id, kind = layer.kind.as_str(), "layer removed: nothing refers to it");
            removed += 1;
        }
        // Subvolumes in layers/ without a row: debris of a crash.
        let layout = self.config.layout();
        let recorded = self.store.all_layers()?.into_iter().map(|l| layer_name(&l)).collect();
        for orphan in crate::inventory::orphan_layers(&layout, &recorded) {
            tracing::info!(resource = %orphan.subject(&layout), why = orphan.detail, "removing an orphan");
            orphan.remove(&layout, &self.host).await?;
            removed += 1;
        }
        self.sweep_qgroups();
        Ok(removed)
    }

    /// Asks the qgroup sweeper to look for quota groups of deleted
    /// subvolumes.
    pub(crate) fn sweep_qgroups(&self) {
        self.qgroup_sweep.notify_one();
    }
}

/// A layer's name in `pool/layers` (its subvolume is `layers/<name>`).
pub(crate) fn layer_name(layer: &LayerRecord) -> String {
    layer.subvolume.strip_prefix("layers/").unwrap_or(&layer.subvolume).to_string()
}
