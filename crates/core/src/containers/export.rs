//! A tenant as one archive ([`cubby_storage::archive`]): exported from its
//! consistent snapshot while it keeps running, and imported as a new
//! tenant, on this box or another, once every byte matches the manifest.
//!
//! What an export holds (the header, [`ExportHeader`], and one tree):
//! - `delta` (the default): the tenant's files above its image, merged
//!   (its own changes and the template layers it was copied from). Files
//!   it deleted from the image are not recorded: use `full` for those.
//! - `full`: the whole root filesystem as the tenant sees it.
//! - `data`: only `/data` (a GDPR handover); not importable.
//!
//! An import makes the tree a read-only layer under a fresh tenant of the
//! same image (which the box must have), like a copy of a template.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use cubby_model::{
    AccessMode, Container, ContainerId, ContainerStatus, EventType, Firewall, LayerId, Limits, NetworkRules, ProjectId,
    validate_container_name, validate_env,
};
use cubby_storage::archive::{self, IdShift, ReadLimits, Written};
use cubby_storage::{Btrfs, Mounts, Overlay, StorageError};
use cubby_store::{LayerKind, LayerRecord, NewContainer};
use serde::{Deserialize, Serialize};

use super::ContainerService;
use crate::{Caller, Error};

/// Most entries an import may have.
const MAX_IMPORT_ENTRIES: u64 = 2_000_000;

/// Which part of a tenant an export holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportScope {
    /// Its files above its image.
    #[default]
    Delta,
    /// Its whole root filesystem.
    Full,
    /// `/data` only.
    Data,
}

impl ExportScope {
    fn prefix(self) -> &'static str {
        match self {
            Self::Delta | Self::Full => "rootfs",
            Self::Data => "data",
        }
    }
}

/// How to export.
#[derive(Clone, Debug, Default)]
pub struct ExportOptions {
    pub scope: ExportScope,
    /// Environment values are left out (their names kept) unless asked.
    pub include_env: bool,
    /// Export this snapshot (name or alias) as it was, instead of the
    /// tenant's current state.
    pub snapshot: Option<String>,
}

/// The archive's first member: what the tenant was, and how to make it
/// again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportHeader {
    pub source_id: ContainerId,
    pub source_name: String,
    pub source_project: String,
    #[serde(with = "time::serde::rfc3339")]
    pub exported_at: cubby_model::Timestamp,
    pub scope: ExportScope,
    pub image: String,
    pub command: Vec<String>,
    /// Its environment (empty unless exported with `include_env`).
    pub env: BTreeMap<String, String>,
    /// The names whose values were left out.
    pub env_redacted: Vec<String>,
    pub port: u16,
    pub limits: Limits,
    pub workdir: Option<String>,
    pub user: Option<String>,
    pub access: Option<AccessMode>,
    pub autostart: bool,
    pub idle_timeout: Option<u32>,
    pub max_snapshots: u32,
    pub firewall: Firewall,
    pub network: NetworkRules,
    /// The address the exporting daemon's proxy connects from: rules that
    /// name it are moved to the importing daemon's.
    #[serde(default)]
    pub proxy_source: Option<String>,
    /// The snapshot exported (its name then), when it is not the current
    /// state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<String>,
}

/// What an export mounted and snapshotted, undone when dropped.
struct View {
    mounts: Arc<dyn Mounts>,
    btrfs: Arc<dyn Btrfs>,
    snapshot: PathBuf,
    bottom: PathBuf,
    scratch: PathBuf,
    mounted: bool,
}

impl Drop for View {
    fn drop(&mut self) {
        if self.mounted
            && let Err(e) = self.mounts.unmount(&self.scratch)
        {
            tracing::error!(path = %self.scratch.display(), error = %e, "an export's view stays mounted");
            return;
        }
        let _ = std::fs::remove_dir(&self.scratch);
        let _ = std::fs::remove_dir(&self.bottom);
        if self.btrfs.is_subvolume(&self.snapshot).unwrap_or(false)
            && let Err(e) = self.btrfs.delete_subvolume(&self.snapshot)
        {
            tracing::warn!(path = %self.snapshot.display(), error = %e, "an export's snapshot stays");
        }
    }
}

/// An export ready to be written: the tenant's state at one instant,
/// mounted read-only. Dropping it (written or not) removes it all.
pub struct PreparedExport {
    header: Vec<u8>,
    prefix: &'static str,
    tree: PathBuf,
    ids: IdShift,
    /// A file name for the download.
    pub file_name: String,
    _view: View,
}

impl std::fmt::Debug for PreparedExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedExport").field("tree", &self.tree).finish_non_exhaustive()
    }
}

impl PreparedExport {
    /// Writes the archive (zstd-compressed tar) to `out`: blocking, for a
    /// blocking thread.
    ///
    /// # Errors
    ///
    /// The tree cannot be read, or `out` fails.
    pub fn write_to(self, out: impl Write) -> Result<Written, Error> {
        archive::write(out, &self.header, &self.tree, self.prefix, self.ids).map_err(|e| Error::Storage {
            step: "export",
            container: None,
            source: Box::new(e),
        })
    }
}

/// How to import.
#[derive(Clone, Debug, Default)]
pub struct ImportOptions {
    /// The new tenant's name (the exported one's when `None`).
    pub name: Option<String>,
    /// Environment values to set (those the export left out, say).
    pub environment_vars: BTreeMap<String, String>,
    pub start: bool,
}

fn export_error(e: StorageError) -> Error {
    match e {
        StorageError::TooLarge { limit } => Error::TooLarge { limit },
        e @ (StorageError::Refused { .. } | StorageError::Archive { .. }) => {
            Error::InvalidExport { reason: crate::error::error_chain(&e) }
        }
        other => Error::Storage { step: "import", container: None, source: Box::new(other) },
    }
}

/// Refuses, before any file is unpacked, what cannot make a tenant.
fn accept_header(bytes: &[u8]) -> Result<(), String> {
    let header: ExportHeader =
        serde_json::from_slice(bytes).map_err(|e| format!("it is not a Cubby export header: {e}"))?;
    if header.scope == ExportScope::Data {
        return Err("a data-only export holds /data alone and cannot make a tenant; export without data_only".into());
    }
    Ok(())
}

impl ContainerService {
    fn id_shift(&self) -> IdShift {
        self.userns.map_or(IdShift::NONE, |r| IdShift { host_base: r.host_base, size: r.size })
    }

    /// Snapshots the tenant (frozen for the instant, if running) and
    /// mounts the view an export of `options.scope` reads.
    pub async fn prepare_export(
        self: &Arc<Self>,
        caller: &Caller,
        id: &ContainerId,
        options: ExportOptions,
    ) -> Result<PreparedExport, Error> {
        let rec = self.record(caller, id)?;
        let guard = self.lock(&rec.id).await;
        let rec = self.record(caller, id)?;
        if matches!(rec.status, ContainerStatus::Creating | ContainerStatus::Copying | ContainerStatus::Deleting) {
            return Err(Error::Conflict {
                code: "container_busy",
                message: format!("container {} is {}: wait and try again", rec.id, rec.status.as_str()),
            });
        }
        let mut view = View {
            mounts: Arc::clone(&self.host.mounts),
            btrfs: Arc::clone(&self.host.btrfs),
            snapshot: self.pool.tmp_path("export"),
            bottom: self.pool.tmp_path("export-empty"),
            scratch: self.pool.tmp_path("export-view"),
            mounted: false,
        };
        // The tenant's state now (frozen for the instant), or a snapshot's,
        // held by a snapshot of its own so deleting it cannot pull the
        // files from under the export.
        let snap = options.snapshot.as_deref().map(|key| self.snapshot_record(&rec.id, key)).transpose()?;
        let (layers, image) = match &snap {
            None => {
                self.consistent_snapshot(&rec, &view.snapshot)?;
                (self.store.container_lowers(&rec.id)?, rec.image.clone())
            }
            Some(s) => {
                let layer = self
                    .store
                    .layer(&s.layer_id)?
                    .ok_or_else(|| Error::NotFound { kind: "layer", id: s.layer_id.to_string() })?;
                self.host
                    .btrfs
                    .snapshot(&self.pool.root().join(&layer.subvolume), &view.snapshot, true)
                    .map_err(Error::storage("snapshot for an export", rec.id.as_str()))?;
                let mut lowers = Vec::with_capacity(s.lowers.len());
                for id in &s.lowers {
                    lowers.push(
                        self.store.layer(id)?.ok_or_else(|| Error::NotFound { kind: "layer", id: id.to_string() })?,
                    );
                }
                // The image the snapshot sits on (the tenant may have moved
                // to another since).
                let image_layer = lowers.iter().find(|l| l.kind == LayerKind::Image).map(|l| l.id.clone());
                let image = self
                    .store
                    .images()?
                    .into_iter()
                    .find(|i| Some(&i.layer_id) == image_layer.as_ref())
                    .map_or_else(|| rec.image.clone(), |i| i.image.name);
                (lowers, image)
            }
        };
        drop(guard);
        let mut lowers = vec![view.snapshot.join("upper")];
        match options.scope {
            ExportScope::Delta => {
                lowers.extend(layers.iter().filter(|l| l.kind != LayerKind::Image).map(|l| self.layer_root(l)));
                // An empty bottom: whiteouts resolve against nothing, and
                // overlayfs gets the two lowers it needs without an upper.
                std::fs::create_dir(&view.bottom).map_err(Error::io("create", &view.bottom))?;
                lowers.push(view.bottom.clone());
            }
            ExportScope::Full | ExportScope::Data => lowers.extend(layers.iter().map(|l| self.layer_root(l))),
        }
        std::fs::create_dir(&view.scratch).map_err(Error::io("create", &view.scratch))?;
        let overlay = Overlay { lowers, upper: None, target: view.scratch.clone() };
        self.host.mounts.mount_overlay(&overlay).map_err(Error::storage("mount the export's view", rec.id.as_str()))?;
        view.mounted = true;
        let tree = match options.scope {
            ExportScope::Data => view.scratch.join("data"),
            _ => view.scratch.clone(),
        };
        if !tree.is_dir() {
            return Err(Error::Conflict {
                code: "no_data",
                message: format!("container {} has no /data directory to export", rec.id),
            });
        }
        let (env, env_redacted) = if options.include_env {
            (rec.env.clone(), Vec::new())
        } else {
            (BTreeMap::new(), rec.env.keys().cloned().collect())
        };
        let project = self.project_name(&rec.project_id)?;
        let header = ExportHeader {
            source_id: rec.id.clone(),
            source_name: rec.name.clone(),
            source_project: project.clone(),
            exported_at: cubby_model::now(),
            scope: options.scope,
            image,
            command: rec.command.clone(),
            env,
            env_redacted,
            port: rec.port,
            limits: rec.limits,
            workdir: rec.workdir.clone(),
            user: rec.user.clone(),
            access: rec.access,
            autostart: rec.autostart,
            idle_timeout: rec.idle_timeout,
            max_snapshots: rec.max_snapshots,
            firewall: self.store.firewall(&rec.id)?,
            network: self.store.network(&rec.id)?,
            proxy_source: Some(self.network.proxy_source()),
            snapshot: snap.as_ref().map(|s| s.name.clone()),
        };
        let header = serde_json::to_vec_pretty(&header).map_err(|e| Error::Io {
            op: "encode",
            path: "the export header".into(),
            source: e.into(),
        })?;
        let scope = match options.scope {
            ExportScope::Delta => "delta",
            ExportScope::Full => "full",
            ExportScope::Data => "data",
        };
        Ok(PreparedExport {
            header,
            prefix: options.scope.prefix(),
            tree,
            ids: self.id_shift(),
            file_name: match &snap {
                None => format!("{}--{project}.{scope}.cubby.tar.zst", rec.name),
                Some(s) => format!("{}--{project}@{}.{scope}.cubby.tar.zst", rec.name, s.name),
            },
            _view: view,
        })
    }

    /// Makes a new tenant in `project` from an export read from `reader`
    /// (blocking; at most `max_bytes` of files), and starts it unless
    /// asked not to. Nothing of it is visible before every byte matched
    /// the archive's manifest.
    pub async fn import_container(
        self: &Arc<Self>,
        caller: &Caller,
        project: &ProjectId,
        options: ImportOptions,
        reader: impl Read + Send + 'static,
        max_bytes: u64,
    ) -> Result<Container, Error> {
        let started = Instant::now();
        let quota = crate::projects::visible(&*self.store, caller, project)?.quota;
        if let Some(name) = &options.name {
            validate_container_name(name)?;
        }
        validate_env("environment_vars", &options.environment_vars)?;
        let staging = self.pool.tmp_path("import");
        self.host.btrfs.create_subvolume(&staging).map_err(Error::storage("create subvolume", "import"))?;
        let unpacked = {
            let (dest, ids) = (staging.clone(), self.id_shift());
            let limits = ReadLimits { max_bytes, max_entries: MAX_IMPORT_ENTRIES };
            let mut reader = reader;
            tokio::task::spawn_blocking(move || {
                let read = archive::read(&mut reader, &dest, "rootfs", ids, limits, accept_header);
                if read.is_err() {
                    // The rest of a refused body is read (and dropped, up
                    // to the limit) so the client gets to read the answer.
                    let _ = std::io::copy(&mut reader.take(max_bytes), &mut std::io::sink());
                }
                read
            })
            .await
            .map_err(|e| Error::Io { op: "join", path: "the import task".into(), source: e.into() })?
            .map_err(export_error)
        };
        let made = match unpacked {
            Ok((header, _)) => self.import_verified(caller, project, &quota, &options, &header, &staging).await,
            Err(e) => Err(e),
        };
        let (rec, header) = match made {
            Ok(done) => done,
            Err(e) => {
                if self.host.btrfs.is_subvolume(&staging).unwrap_or(false) {
                    let _ = self.host.btrfs.delete_subvolume(&staging);
                }
                return Err(e);
            }
        };
        let born = (
            EventType::ContainerCreated,
            serde_json::json!({ "image": header.image, "imported_from": header.source_id }),
        );
        self.provision_new(rec, options.start, started, caller, born).await
    }

    /// Records the tenant of a verified archive: its tree, in `staging`,
    /// becomes a layer.
    async fn import_verified(
        &self,
        caller: &Caller,
        project: &ProjectId,
        quota: &cubby_model::ProjectQuota,
        options: &ImportOptions,
        header: &[u8],
        staging: &Path,
    ) -> Result<(cubby_store::ContainerRecord, ExportHeader), Error> {
        let _ = caller;
        let header: ExportHeader = serde_json::from_slice(header)
            .map_err(|e| Error::InvalidExport { reason: format!("its header is not a Cubby export header: {e}") })?;
        if header.scope == ExportScope::Data {
            return Err(Error::InvalidExport { reason: "a data-only export cannot make a tenant".into() });
        }
        let name = options.name.clone().unwrap_or_else(|| header.source_name.clone());
        validate_container_name(&name)?;
        validate_env("environment_vars", &header.env)?;
        let image = self.store.image(&header.image)?.ok_or_else(|| Error::Conflict {
            code: "image_missing",
            message: format!(
                "the export runs on image `{}`, which this box does not have: import it first (POST /api/v1/images)",
                header.image
            ),
        })?;
        let mut env = header.env.clone();
        env.extend(options.environment_vars.clone());
        let mut firewall = Firewall {
            ingress: super::copy::with_new_ids(header.firewall.ingress.clone()),
            egress: super::copy::with_new_ids(header.firewall.egress.clone()),
        };
        if let Some(from) = &header.proxy_source {
            crate::network::firewall::repoint(&mut firewall, from, &self.network.proxy_source());
        }
        let id = LayerId::random();
        let dest = self.pool.layers_dir().join(id.as_str());
        let layers = self.layers_lock.lock().await;
        // Moved first: a read-only subvolume cannot change its parent.
        std::fs::rename(staging, &dest).map_err(Error::io("move", staging))?;
        if let Err(e) = self.host.btrfs.set_readonly(&dest, true) {
            let _ = self.host.btrfs.delete_subvolume(&dest);
            return Err(Error::storage("freeze the import", "import")(e));
        }
        let layer = LayerRecord::standalone(id.clone(), LayerKind::Flattened, cubby_model::now());
        let new = NewContainer {
            id: ContainerId::random(),
            project_id: project.clone(),
            name,
            image: header.image.clone(),
            command: header.command.clone(),
            env,
            port: header.port,
            limits: quota.clamp(header.limits),
            workdir: header.workdir.clone(),
            user: header.user.clone(),
            created_at: cubby_model::now(),
            firewall,
            network: header.network.clone(),
            lowers: vec![id, image.layer_id.clone()],
            max_snapshots: header.max_snapshots,
            status: ContainerStatus::Creating,
            access: header.access,
            autostart: header.autostart,
            idle_timeout: header.idle_timeout,
        };
        let inserted = self
            .store
            .insert_layer(&layer)
            .map_err(Error::from)
            .and_then(|()| self.store.insert_container(&new, self.network.capacity()).map_err(Error::from));
        drop(layers);
        match inserted {
            Ok(rec) => Ok((rec, header)),
            Err(e) => {
                // The layer (row and subvolume) goes with nothing using it.
                if self.store.layer(&layer.id).ok().flatten().is_none() {
                    let _ = self.host.btrfs.delete_subvolume(&dest);
                }
                let _ = self.collect_layers().await;
                Err(e)
            }
        }
    }
}
