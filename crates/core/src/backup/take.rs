//! Taking a backup while the daemon serves: the state copied with SQLite's
//! online backup, every layer and container snapshotted read-only (a
//! running container frozen for the instant, as a copy does), then the
//! snapshots sent as streams without any lock held.
//!
//! Order, so the copy of the state and the subvolumes agree:
//! 1. with the layer lock held (nothing creates or collects a layer), the
//!    database is copied and every layer it names is snapshotted (or
//!    found in the previous backup);
//! 2. each container, under its own lock, is snapshotted, or found
//!    unchanged since the previous backup by its btrfs generation;
//! 3. the streams are written, then `files.tar`, then the manifest, and the
//!    directory is renamed into place.
//!
//! A container deleted between 1 and 2 has a record and no subvolume:
//! restore drops it. One created after 1 is not in the copy of the state:
//! its subvolume is not written.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use cubby_model::{Backup, ContainerStatus};

use super::{
    DATABASE, FILES, FORMAT, FileRef, HashedFile, MANIFEST, MAX_CHAIN, Manifest, STREAMS, SubvolumeEntry,
    SubvolumeKind, Target,
};
use crate::Error;
use crate::containers::ContainerService;

/// Files and directories of the data dir a backup carries (the rest is the
/// pool, written as streams, or rebuilt at start).
const DATA_FILES: &[&str] =
    &["claims.key", "secrets.key", "admin.token", "subnet", "acme", "projects", "logs", "pool/idmap"];

/// The data dir's directory a backup to a bucket is written into before it
/// is uploaded (gone afterwards; one left by a crash goes at the next).
const STAGING: &str = "backup-staging";

/// Removes the staging directory and what it holds.
fn remove_staging(dir: &Path) -> Result<(), Error> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io("remove", dir)(e)),
        _ => Ok(()),
    }
}

/// A subvolume snapshotted for this backup, still to be written.
struct Pending {
    kind: SubvolumeKind,
    id: String,
    path: String,
    snapshot: PathBuf,
    /// The previous backup's snapshot to send an increment against, and the
    /// chain it continues.
    parent: Option<(PathBuf, Vec<FileRef>)>,
    generation: Option<u64>,
}

impl ContainerService {
    /// Writes a backup of the whole box to `target`, incremental against
    /// the newest backup already there. A bucket gets it through a staging
    /// directory under the data dir, removed afterwards.
    pub(crate) async fn take_backup(self: &Arc<Self>, target: &Target) -> Result<Backup, Error> {
        let _one = self.backup_lock.lock().await;
        let t0 = Instant::now();
        let (local, previous) = match target {
            Target::Dir(to) => {
                if !to.exists() {
                    std::fs::create_dir_all(to).map_err(Error::io("create", to))?;
                    crate::platform::set_mode(to, 0o700)?;
                }
                let previous = match super::list(to)?.last() {
                    Some(id) => Some(super::read_manifest(to, id)?),
                    None => None,
                };
                (to.clone(), previous)
            }
            Target::Bucket(bucket) => {
                let staging = self.config.data_dir.join(STAGING);
                remove_staging(&staging)?;
                std::fs::create_dir(&staging).map_err(Error::io("create", &staging))?;
                crate::platform::set_mode(&staging, 0o700)?;
                match bucket.newest().await {
                    Ok(previous) => (staging, previous),
                    Err(e) => {
                        remove_staging(&staging)?;
                        return Err(e);
                    }
                }
            }
        };
        let mut id = super::backup_id(cubby_model::now());
        if previous.as_ref().is_some_and(|p| p.id >= id) {
            // Two backups within a millisecond, or a clock that went back.
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
            id = super::backup_id(cubby_model::now());
            if previous.as_ref().is_some_and(|p| p.id >= id) {
                let place = match target {
                    Target::Dir(dir) => dir.display().to_string(),
                    Target::Bucket(bucket) => {
                        let _ = remove_staging(&local);
                        bucket.url().to_string()
                    }
                };
                return Err(Error::Conflict {
                    code: "backup_clock",
                    message: format!("the newest backup in {place} is from the future: check the clock"),
                });
            }
        }
        let partial = local.join(format!(".{id}.partial"));
        std::fs::create_dir(&partial).map_err(Error::io("create", &partial))?;
        let mut result = self.write_backup(&local, &partial, &id, previous.as_ref()).await;
        if let Target::Bucket(bucket) = target {
            if let Ok((report, manifest)) = &mut result {
                match bucket.upload(&local.join(&id), manifest).await {
                    Ok(_) => report.dir = format!("{}/{id}", bucket.url()),
                    Err(e) => {
                        bucket.remove(&id).await;
                        result = Err(e);
                    }
                }
            }
            if let Err(e) = remove_staging(&local) {
                tracing::warn!(error = %e.chain(), "could not remove the backup's staging directory; the next backup does");
            }
        }
        match result {
            Ok((mut report, manifest)) => {
                // The new backup's snapshots are the next one's parents; the rest go.
                let keep: HashSet<String> = manifest.subvolumes.iter().filter_map(|e| e.snapshot.clone()).collect();
                self.drop_backup_snapshots(|name| !keep.contains(name));
                report.duration_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
                tracing::info!(backup = %report.id, dir = %report.dir, streams = report.streams_written,
                    unchanged = report.unchanged, bytes = report.bytes_written, ms = report.duration_ms, "backup taken");
                Ok(report)
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&partial);
                self.drop_backup_snapshots(|name| name.ends_with(&format!("@{id}")));
                Err(e)
            }
        }
    }

    async fn write_backup(
        self: &Arc<Self>,
        to: &Path,
        partial: &Path,
        id: &str,
        previous: Option<&Manifest>,
    ) -> Result<(Backup, Manifest), Error> {
        let backups = self.pool.backups_dir();
        let mut entries: Vec<SubvolumeEntry> = Vec::new();
        let mut pending: Vec<Pending> = Vec::new();
        let mut unchanged = 0u32;

        // 1. The state and the layers it names, with no layer made or
        //    collected meanwhile.
        let containers = {
            let _layers = self.layers_lock.lock().await;
            let store = Arc::clone(&self.store);
            let db = partial.join(DATABASE);
            tokio::task::spawn_blocking(move || store.backup_to(&db))
                .await
                .expect("the database copy does not panic")?;
            for layer in self.store.all_layers()? {
                if let Some(e) = previous.and_then(|p| p.entry(SubvolumeKind::Layer, layer.id.as_str())) {
                    // A layer never changes: the previous backup's streams rebuild it.
                    entries.push(e.clone());
                    unchanged += 1;
                    continue;
                }
                let snapshot = backups.join(format!("{}@{id}", layer.id));
                self.host
                    .btrfs
                    .snapshot(&self.pool.root().join(&layer.subvolume), &snapshot, true)
                    .map_err(Error::storage("snapshot layer for a backup", layer.id.as_str()))?;
                pending.push(Pending {
                    kind: SubvolumeKind::Layer,
                    id: layer.id.to_string(),
                    path: layer.subvolume.clone(),
                    snapshot,
                    parent: None,
                    generation: None,
                });
            }
            self.store.containers(None, None, u32::MAX)?
        };

        // 2. Each container, consistent on its own. One commit of the pool
        //    first, so every generation read below counts every write made.
        self.host.btrfs.sync(self.pool.root()).map_err(Error::storage("sync", "pool"))?;
        for listed in containers {
            if matches!(listed.status, ContainerStatus::Creating | ContainerStatus::Copying | ContainerStatus::Deleting)
            {
                continue;
            }
            let _guard = self.lock(&listed.id).await;
            let Some(rec) = self.store.container(&listed.id)? else { continue };
            let source = self.pool.container(rec.id.as_str());
            if !source.exists() {
                continue;
            }
            let step = |s| Error::storage(s, rec.id.as_str());
            let now = self.host.btrfs.generation(&source).map_err(step("read generation"))?;
            let before = previous.and_then(|p| p.entry(SubvolumeKind::Container, rec.id.as_str())).and_then(|e| {
                let snapshot = backups.join(e.snapshot.as_deref()?);
                snapshot.exists().then_some((e, snapshot))
            });
            if let Some((e, _)) = &before
                && e.generation == Some(now)
            {
                entries.push((*e).clone());
                unchanged += 1;
                continue;
            }
            let snapshot = backups.join(format!("{}@{id}", rec.id));
            self.consistent_snapshot(&rec, &snapshot)?;
            let generation = self.host.btrfs.generation(&source).map_err(step("read generation"))?;
            pending.push(Pending {
                kind: SubvolumeKind::Container,
                id: rec.id.to_string(),
                path: format!("containers/{}", rec.id),
                snapshot,
                parent: before.filter(|(e, _)| e.chain.len() <= MAX_CHAIN).map(|(e, s)| (s, e.chain.clone())),
                generation: Some(generation),
            });
        }

        // 3. The streams, the files, the manifest.
        let this = Arc::clone(self);
        let (partial_dir, backup_id) = (partial.to_path_buf(), id.to_string());
        let written = tokio::task::spawn_blocking(move || this.write_streams(&partial_dir, &backup_id, pending))
            .await
            .expect("the stream writer does not panic")?;
        let streams_written = written.len();
        entries.extend(written);
        let database = super::hash_file(partial, id, DATABASE)?;
        let files = self.write_files(partial, id)?;
        let bytes_written = database.bytes
            + files.bytes
            + entries.iter().flat_map(|e| e.chain.last()).filter(|r| r.backup == id).map(|r| r.bytes).sum::<u64>();
        let manifest = Manifest {
            format: FORMAT,
            id: id.into(),
            parent: previous.map(|p| p.id.clone()),
            created_at: cubby_model::now(),
            prefix: self.config.prefix.clone(),
            domain: self.config.domain.clone(),
            database,
            files,
            subvolumes: entries,
        };
        let path = partial.join(MANIFEST);
        let mut out = HashedFile::create(&path)?;
        serde_json::to_writer_pretty(&mut out, &manifest).map_err(|e| Error::io("write", &path)(e.into()))?;
        out.finish(id, MANIFEST)?;
        let dir = to.join(id);
        std::fs::rename(partial, &dir).map_err(Error::io("rename", partial))?;
        std::fs::File::open(to).and_then(|d| d.sync_all()).map_err(Error::io("sync", to))?;

        let count = |k| u32::try_from(manifest.subvolumes.iter().filter(|e| e.kind == k).count()).unwrap_or(u32::MAX);
        let report = Backup {
            id: id.into(),
            dir: dir.display().to_string(),
            parent: manifest.parent.clone(),
            containers: count(SubvolumeKind::Container),
            layers: count(SubvolumeKind::Layer),
            streams_written: u32::try_from(streams_written).unwrap_or(u32::MAX),
            unchanged,
            bytes_written,
            duration_ms: 0,
        };
        Ok((report, manifest))
    }

    /// Sends each pending snapshot into `streams/`; layers' snapshots go
    /// once sent, containers' stay as the next increments' parents.
    fn write_streams(&self, partial: &Path, id: &str, pending: Vec<Pending>) -> Result<Vec<SubvolumeEntry>, Error> {
        let streams = partial.join(STREAMS);
        std::fs::create_dir(&streams).map_err(Error::io("create", &streams))?;
        let mut entries = Vec::with_capacity(pending.len());
        for p in pending {
            let kind = match p.kind {
                SubvolumeKind::Layer => "layer",
                SubvolumeKind::Container => "container",
            };
            let file = format!("{STREAMS}/{kind}-{}.btrfs", p.id);
            let mut out = HashedFile::create(&partial.join(&file))?;
            let sent = self.host.btrfs.send(&p.snapshot, p.parent.as_ref().map(|(s, _)| s.as_path()), &mut out);
            if let Err(e) = sent {
                // A tenant deleted since its snapshot took it along: it is
                // left out, as restore leaves out a record without files.
                let gone = p.kind == SubvolumeKind::Container
                    && self.store.container(&cubby_model::ContainerId::from_stored(p.id.clone()))?.is_none();
                if gone {
                    tracing::info!(container = %p.id, "deleted during the backup: left out");
                    drop(out);
                    let _ = std::fs::remove_file(partial.join(&file));
                    continue;
                }
                return Err(Error::storage("send for a backup", &p.id)(e));
            }
            let stream = out.finish(id, &file)?;
            let mut chain = p.parent.map(|(_, chain)| chain).unwrap_or_default();
            chain.push(stream);
            let snapshot = match p.kind {
                SubvolumeKind::Layer => {
                    self.host.btrfs.delete_subvolume(&p.snapshot).map_err(Error::storage("delete snapshot", &p.id))?;
                    None
                }
                SubvolumeKind::Container => p.snapshot.file_name().map(|n| n.to_string_lossy().into_owned()),
            };
            entries.push(SubvolumeEntry {
                kind: p.kind,
                id: p.id,
                path: p.path,
                generation: p.generation,
                snapshot,
                chain,
            });
        }
        Ok(entries)
    }

    /// `files.tar`: the data dir's keys, token, certificates, scripts and
    /// logs (never following a link).
    fn write_files(&self, partial: &Path, id: &str) -> Result<FileRef, Error> {
        let path = partial.join(FILES);
        let out = HashedFile::create(&path)?;
        let mut tar = tar::Builder::new(out);
        tar.follow_symlinks(false);
        let data_dir = &self.config.data_dir;
        let fail = |e| Error::io("write", &path)(e);
        for name in DATA_FILES {
            let source = data_dir.join(name);
            match std::fs::symlink_metadata(&source) {
                Ok(m) if m.is_dir() => tar.append_dir_all(name, &source).map_err(fail)?,
                Ok(m) if m.is_file() => tar.append_path_with_name(&source, name).map_err(fail)?,
                _ => {}
            }
        }
        let out = tar.into_inner().map_err(fail)?;
        out.finish(id, FILES)
    }

    /// Deletes what the backups keep in the pool of container `id` (its
    /// last backup's snapshot, the next increment's parent): a deleted
    /// tenant leaves nothing on the box. Its next backup is whole again.
    pub(crate) fn forget_backup_snapshots(&self, id: &cubby_model::ContainerId) {
        let prefix = format!("{id}@");
        self.drop_backup_snapshots(|name| name.starts_with(&prefix));
    }

    /// Deletes the snapshots in `pool/backups/` whose names `drop` picks.
    fn drop_backup_snapshots(&self, drop: impl Fn(&str) -> bool) {
        let dir = self.pool.backups_dir();
        let Ok(entries) = std::fs::read_dir(&dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if drop(&name)
                && let Err(e) = self.host.btrfs.delete_subvolume(&entry.path())
            {
                tracing::warn!(snapshot = %name, error = %e, "could not delete a backup snapshot");
            }
        }
    }
}
