//! Restoring a box from a backup directory into an empty data dir, with
//! the daemon not running (`cubby restore`). The daemon started on it
//! afterwards brings every container back as its start-up reconciliation
//! does after a reboot: the ones recorded running are started, with their
//! network, rules and routes made anew (under its own prefix and subnet;
//! the ids, names and so the URLs are the backup's).
//!
//! Every file the backup names is checked against its SHA-256 before the
//! data dir is touched. Streams are received with `btrfs receive
//! --chroot` into one directory per subvolume (an increment finds its
//! parent there), then snapshotted into place, so the pool holds only
//! subvolumes of its own. `files.tar` is unpacked under the data dir's fd
//! without following a link. A restore that fails removes what it placed and
//! the database, so it can be run again.

use std::path::{Path, PathBuf};

use cubby_storage::image::beneath::Beneath;
use cubby_storage::{Btrfs, Pool, PoolOptions, StorageError};
use cubby_store::{AuditEntry, ContainerStore, LayerStore, SqliteStore};

use super::{DATABASE, FileRef, Manifest, SubvolumeEntry, SubvolumeKind};
use crate::Error;

/// What to restore, and where.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// The directory of backups (`--to` of the backup).
    pub from: PathBuf,
    /// The backup to restore (`None`: the newest complete one).
    pub backup: Option<String>,
    /// The new box's data dir: must hold no state yet.
    pub data_dir: PathBuf,
    /// Size of the loop pool made when the data dir is not on btrfs.
    pub pool_size: Option<u64>,
    /// Where proc is mounted (normally `/proc`).
    pub proc_root: PathBuf,
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestoreReport {
    pub backup: String,
    pub containers: usize,
    pub layers: usize,
    /// Containers recorded in the state whose subvolume the backup does
    /// not hold (deleted while it was taken): left out.
    pub dropped: Vec<String>,
}

/// Restores backup `opts.backup` (or the newest) from `opts.from` into the
/// empty data dir `opts.data_dir`.
pub fn restore(btrfs: &dyn Btrfs, opts: &RestoreOptions) -> Result<RestoreReport, Error> {
    let id = match &opts.backup {
        Some(id) if super::is_backup_id(id) => id.clone(),
        Some(id) => {
            return Err(Error::InvalidBackup {
                dir: opts.from.clone(),
                reason: format!("`{id}` is not a backup id (they look like 20261204T225106.123Z)"),
            });
        }
        None => super::list(&opts.from)?.pop().ok_or_else(|| Error::InvalidBackup {
            dir: opts.from.clone(),
            reason: "it holds no complete backup".into(),
        })?,
    };
    let manifest = super::read_manifest(&opts.from, &id)?;
    // Every byte is checked before anything is changed.
    super::verify(&opts.from, &manifest.database)?;
    super::verify(&opts.from, &manifest.files)?;
    for entry in &manifest.subvolumes {
        check_entry(&opts.from, entry)?;
    }

    let db_path = opts.data_dir.join(DATABASE);
    if db_path.exists() {
        return Err(Error::Conflict {
            code: "data_dir_in_use",
            message: format!(
                "{} already holds a box's state: restore into an empty data dir (or `cubby purge` this one first)",
                opts.data_dir.display()
            ),
        });
    }
    let pool = Pool::open(
        btrfs,
        &PoolOptions { data_dir: opts.data_dir.clone(), loop_size: opts.pool_size, proc_root: opts.proc_root.clone() },
    )
    .map_err(|source| Error::Storage { step: "open pool", container: None, source: Box::new(source) })?;
    let mut placed = Vec::new();
    let result = restore_into(btrfs, opts, &manifest, &pool, &mut placed);
    let scratch = pool.tmp_dir().join(format!("restore-{id}"));
    remove_received(btrfs, &scratch);
    if result.is_err() {
        for path in placed.iter().rev() {
            let _ = btrfs.delete_subvolume(path);
        }
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(opts.data_dir.join(format!("{DATABASE}{suffix}")));
        }
    }
    result
}

fn check_entry(root: &Path, entry: &SubvolumeEntry) -> Result<(), Error> {
    let safe = entry.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && !entry.id.is_empty()
        && entry.path.split('/').all(|c| !c.is_empty() && c != "." && c != "..");
    if !safe || entry.chain.is_empty() {
        return Err(Error::InvalidBackup {
            dir: root.into(),
            reason: format!("the manifest's entry for {} is malformed", entry.id),
        });
    }
    for r in &entry.chain {
        super::verify(root, r)?;
    }
    Ok(())
}

fn restore_into(
    btrfs: &dyn Btrfs,
    opts: &RestoreOptions,
    manifest: &Manifest,
    pool: &Pool,
    placed: &mut Vec<PathBuf>,
) -> Result<RestoreReport, Error> {
    unpack_files(&super::verify(&opts.from, &manifest.files)?, &opts.data_dir, pool.root())?;
    let db_path = opts.data_dir.join(DATABASE);
    copy_file(&super::verify(&opts.from, &manifest.database)?, &db_path)?;
    let store = SqliteStore::open(&db_path)?;
    let scratch = pool.tmp_dir().join(format!("restore-{}", manifest.id));
    std::fs::create_dir(&scratch).map_err(Error::io("create", &scratch))?;

    let layers = store.all_layers()?;
    for layer in &layers {
        let entry = manifest.entry(SubvolumeKind::Layer, layer.id.as_str()).ok_or_else(|| Error::InvalidBackup {
            dir: opts.from.join(&manifest.id),
            reason: format!("layer {} is in the state but not in the backup", layer.id),
        })?;
        let received = receive_chain(btrfs, &opts.from, &entry.chain, &scratch.join(format!("layer-{}", layer.id)))?;
        let dest = pool.root().join(&layer.subvolume);
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io("create", parent))?;
        }
        btrfs.snapshot(&received, &dest, true).map_err(Error::storage("place layer", layer.id.as_str()))?;
        placed.push(dest);
    }

    let quotas = btrfs.enable_quotas(pool.root()).is_ok();
    let mut report =
        RestoreReport { backup: manifest.id.clone(), containers: 0, layers: layers.len(), dropped: vec![] };
    for rec in store.containers(None, None, u32::MAX)? {
        let Some(entry) = manifest.entry(SubvolumeKind::Container, rec.id.as_str()) else {
            store.delete_container(
                &rec.id,
                &AuditEntry {
                    at: cubby_model::now(),
                    action: "container.not_in_backup".into(),
                    project_id: Some(rec.project_id.clone()),
                    container_id: Some(rec.id.clone()),
                },
            )?;
            report.dropped.push(rec.id.to_string());
            continue;
        };
        let received = receive_chain(btrfs, &opts.from, &entry.chain, &scratch.join(format!("container-{}", rec.id)))?;
        let dest = pool.container(rec.id.as_str());
        btrfs.snapshot(&received, &dest, false).map_err(Error::storage("place container", rec.id.as_str()))?;
        placed.push(dest.clone());
        if let Some(limit) = rec.limits.disk
            && quotas
        {
            btrfs.set_disk_limit(&dest, Some(limit.0)).map_err(Error::storage("set disk limit", rec.id.as_str()))?;
        }
        report.containers += 1;
    }
    // Frozen-layer reuse keys on generations of the old pool's subvolumes.
    for rec in store.containers(None, None, u32::MAX)? {
        if rec.frozen.is_some() {
            store.set_frozen_layer(&rec.id, None)?;
        }
    }
    Ok(report)
}

/// Receives a chain (whole stream, then increments) into `dir`; the last
/// subvolume received is the state.
fn receive_chain(btrfs: &dyn Btrfs, root: &Path, chain: &[FileRef], dir: &Path) -> Result<PathBuf, Error> {
    std::fs::create_dir(dir).map_err(Error::io("create", dir))?;
    let mut last = None;
    for r in chain {
        let stream = root.join(&r.backup).join(&r.file);
        last = Some(btrfs.receive(&stream, dir).map_err(Error::storage("receive", &r.file))?);
    }
    last.ok_or_else(|| Error::InvalidBackup { dir: root.into(), reason: "an empty chain".into() })
}

/// Deletes the received subvolumes under the scratch directory, then it.
fn remove_received(btrfs: &dyn Btrfs, scratch: &Path) {
    let Ok(dirs) = std::fs::read_dir(scratch) else { return };
    for dir in dirs.flatten() {
        if let Ok(subvolumes) = std::fs::read_dir(dir.path()) {
            for s in subvolumes.flatten() {
                let _ = btrfs.delete_subvolume(&s.path());
            }
        }
    }
    let _ = std::fs::remove_dir_all(scratch);
}

/// Unpacks `files.tar` into the data dir: directories and regular files
/// only, every path resolved under the data dir's fd without following a
/// link (`Beneath`), no file written over.
/// `pool/…` goes under the pool's own fd: the pool may be another
/// filesystem mounted there, which the data dir's lookups do not cross.
fn unpack_files(tarball: &Path, data_dir: &Path, pool: &Path) -> Result<(), Error> {
    let file = std::fs::File::open(tarball).map_err(Error::io("open", tarball))?;
    let data = Beneath::open(data_dir).map_err(Error::storage("open the data dir", "restore"))?;
    let pool_root = Beneath::open(pool).map_err(Error::storage("open the pool", "restore"))?;
    let refuse = |reason: String| Error::InvalidBackup { dir: tarball.into(), reason };
    let placed = |e: StorageError| refuse(crate::error::error_chain(&e));
    let mut archive = tar::Archive::new(file);
    for entry in archive.entries().map_err(Error::io("read", tarball))? {
        let mut entry = entry.map_err(Error::io("read", tarball))?;
        let path = entry.path().map_err(Error::io("read", tarball))?.into_owned();
        let mode = entry.header().mode().map_err(Error::io("read", tarball))?;
        let kind = entry.header().entry_type();
        let (root, path) = match path.strip_prefix("pool") {
            Ok(rest) => (&pool_root, rest.to_path_buf()),
            Err(_) => (&data, path),
        };
        if kind.is_dir() {
            root.create_dir_all(&path, mode).map_err(placed)?;
        } else if kind.is_file() {
            if let Some(parent) = path.parent() {
                root.create_dir_all(parent, 0o700).map_err(placed)?;
            }
            let mut out = root.create_file(&path, mode).map_err(placed)?;
            std::io::copy(&mut entry, &mut out).map_err(Error::io("write", data_dir.join(&path)))?;
        } else {
            return Err(refuse(format!("{} is neither a file nor a directory", path.display())));
        }
    }
    Ok(())
}

fn copy_file(from: &Path, to: &Path) -> Result<(), Error> {
    let mut src = std::fs::File::open(from).map_err(Error::io("open", from))?;
    let mut dst = std::fs::OpenOptions::new().write(true).create_new(true).open(to).map_err(Error::io("create", to))?;
    std::io::copy(&mut src, &mut dst).map_err(Error::io("copy to", to))?;
    dst.sync_all().map_err(Error::io("sync", to))
}
