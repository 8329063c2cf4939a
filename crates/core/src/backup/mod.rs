//! Backups of a whole box, and restoring one on a fresh machine.
//!
//! A backup is a directory `<to>/<id>/` (the id is the UTC time it was
//! taken, so names sort by age):
//!
//! | file                    | what                                              |
//! |-------------------------|---------------------------------------------------|
//! | `backup.json`           | the [`Manifest`], written last                    |
//! | `cubby.db`              | the state, by SQLite's online backup API          |
//! | `files.tar`             | keys, the admin token, certificates, scripts, logs|
//! | `streams/*.btrfs`       | `btrfs send` streams of layers and containers     |
//!
//! Incremental by construction: a layer (images, frozen templates,
//! snapshots) never changes, so a layer the previous backup in the same
//! directory holds is named in the manifest, not written again; a
//! container's own subvolume is sent with `btrfs send -p` against the
//! read-only snapshot the daemon kept from the previous backup
//! (`pool/backups/<container>@<backup>`), and not at all when its btrfs
//! generation has not moved since. Each subvolume's entry lists the chain
//! of streams that rebuilds it (whole first, then each increment), which
//! may point into earlier backups: a backup needs the ones its manifest
//! names. A chain longer than [`MAX_CHAIN`] starts over with a whole
//! stream.
//!
//! A backup is written under `.<id>.partial/` and renamed when complete, so
//! a crash never leaves a directory that looks whole. The same layout goes
//! to an S3-compatible bucket (`s3://bucket/prefix`, [`bucket`]), the
//! manifest uploaded last. Restore
//! ([`restore::restore`]) checks every file's SHA-256 before it changes
//! anything.

pub mod bucket;
mod restore;
mod take;

pub use bucket::{Bucket, Target};
pub use restore::{RestoreOptions, RestoreReport, restore};

use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cubby_model::{Backup, CreateBackup};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Caller, Error, Platform};

/// The manifest's name in a backup directory.
pub const MANIFEST: &str = "backup.json";
/// The database copy's name.
pub const DATABASE: &str = "cubby.db";
/// The tarball of the data dir's files.
pub const FILES: &str = "files.tar";
/// Where the send streams are.
pub const STREAMS: &str = "streams";
/// The format this daemon writes and reads.
pub const FORMAT: u32 = 1;
/// Increments a container's chain may have before a whole stream again.
pub const MAX_CHAIN: usize = 16;

/// What one backup holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    pub id: String,
    /// The backup this one was made incremental to.
    pub parent: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: cubby_model::Timestamp,
    /// The daemon that wrote it (for the operator; restore does not need
    /// them).
    pub prefix: String,
    pub domain: String,
    pub database: FileRef,
    pub files: FileRef,
    pub subvolumes: Vec<SubvolumeEntry>,
}

/// A file of the backup with its checksum.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    /// The backup that holds the file.
    pub backup: String,
    /// Its path in that backup's directory.
    pub file: String,
    pub sha256: String,
    pub bytes: u64,
}

/// What a subvolume is to the state.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SubvolumeKind {
    /// A read-only layer: an image, a frozen template, a snapshot.
    Layer,
    /// A container's own writable subvolume.
    Container,
}

/// One subvolume and the streams that rebuild it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SubvolumeEntry {
    pub kind: SubvolumeKind,
    /// The layer's or the container's id.
    pub id: String,
    /// Where it goes, relative to the pool root.
    pub path: String,
    /// Containers: the subvolume's generation right after its snapshot.
    pub generation: Option<u64>,
    /// Containers: the name of the read-only snapshot the daemon keeps in
    /// `pool/backups/` as the next increment's parent.
    pub snapshot: Option<String>,
    /// Whole stream first, then each increment in order.
    pub chain: Vec<FileRef>,
}

impl Platform {
    /// Takes a backup of the whole box (admin only) into `req.to`, or the
    /// daemon's `--backup-dir`: a directory or `s3://bucket/prefix`.
    pub async fn backup(&self, caller: &Caller, req: &CreateBackup) -> Result<Backup, Error> {
        if !caller.is_admin() {
            return Err(Error::Forbidden);
        }
        let to = match (&req.to, &self.config().backup_to) {
            (Some(to), _) => to.clone(),
            (None, Some(to)) => to.clone(),
            (None, None) => {
                return Err(Error::invalid(
                    "to",
                    "name a directory or s3://bucket/prefix: this daemon was started without --backup-dir",
                ));
            }
        };
        let target = self.backup_target(&to)?;
        // On a task of its own: a client that stops waiting (a backup can
        // outlast an HTTP timeout) does not cut it off halfway, where its
        // cleanup would not run.
        let containers = Arc::clone(self.containers());
        tokio::spawn(async move { containers.take_backup(&target).await })
            .await
            .map_err(|e| Error::Conflict { code: "backup_failed", message: format!("the backup task failed: {e}") })?
    }

    /// Checks and opens where backups go: an absolute directory out of the
    /// data dir, or a bucket.
    pub fn backup_target(&self, to: &str) -> Result<Target, Error> {
        let target = Target::parse(to)?;
        if let Target::Dir(to) = &target {
            let data_dir = &self.config().data_dir;
            if !to.is_absolute() || to.components().any(|c| matches!(c, Component::ParentDir)) {
                return Err(Error::invalid("to", "give an absolute path without `..`, or s3://bucket/prefix"));
            }
            if to.starts_with(data_dir) || data_dir.starts_with(to) {
                return Err(Error::invalid(
                    "to",
                    "a backup inside the data dir (or around it) is lost with it: choose a directory on another disk",
                ));
            }
        }
        Ok(target)
    }

    /// Takes a backup into `--backup-dir` every `interval` (the first one
    /// an interval after start). A failed one is logged and tried again at
    /// the next.
    pub fn schedule_backups(&self, interval: Duration) -> Result<(), Error> {
        let Some(to) = self.config().backup_to.clone() else { return Ok(()) };
        let target = self.backup_target(&to)?;
        let containers = Arc::clone(self.containers());
        self.background.push(tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = containers.take_backup(&target).await {
                    tracing::error!(to = %to, error = %e.chain(), "scheduled backup failed");
                }
            }
        }));
        Ok(())
    }
}

impl Manifest {
    /// The entry of subvolume `id` of `kind`.
    pub fn entry(&self, kind: SubvolumeKind, id: &str) -> Option<&SubvolumeEntry> {
        self.subvolumes.iter().find(|e| e.kind == kind && e.id == id)
    }

    /// The files (but the manifest) that backup `backup` holds of this one.
    pub fn files_of<'a>(&'a self, backup: &'a str) -> impl Iterator<Item = &'a FileRef> + 'a {
        [&self.database, &self.files]
            .into_iter()
            .chain(self.subvolumes.iter().flat_map(|e| &e.chain))
            .filter(move |r| r.backup == backup)
    }
}

/// A backup id for `at`: `20261204T225106.123Z`, which sorts by time.
pub(crate) fn backup_id(at: time::OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// Whether `name` is a backup id this daemon could have made (and so a
/// safe single path component).
pub fn is_backup_id(name: &str) -> bool {
    name.len() == 20
        && name.bytes().enumerate().all(|(i, b)| match i {
            8 => b == b'T',
            15 => b == b'.',
            19 => b == b'Z',
            _ => b.is_ascii_digit(),
        })
}

/// Reads the manifest of backup `id` under `root`.
pub fn read_manifest(root: &Path, id: &str) -> Result<Manifest, Error> {
    let path = root.join(id).join(MANIFEST);
    let text = std::fs::read(&path).map_err(Error::io("read", &path))?;
    parse_manifest(&text, id, root)
}

/// Parses the manifest `text` of backup `id` found in `root`.
pub(crate) fn parse_manifest(text: &[u8], id: &str, root: &Path) -> Result<Manifest, Error> {
    let manifest: Manifest = serde_json::from_slice(text)
        .map_err(|e| Error::InvalidBackup { dir: root.join(id), reason: format!("{MANIFEST} cannot be read: {e}") })?;
    if manifest.format != FORMAT || manifest.id != id {
        return Err(Error::InvalidBackup {
            dir: root.join(id),
            reason: format!("{MANIFEST} is format {} of backup {}", manifest.format, manifest.id),
        });
    }
    Ok(manifest)
}

/// Whether the file `r` names stays inside its backup's directory.
pub(crate) fn is_safe_ref(r: &FileRef) -> bool {
    is_backup_id(&r.backup) && r.file.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
}

/// The ids of the complete backups under `root`, oldest first (a missing
/// directory has none).
pub fn list(root: &Path) -> Result<Vec<String>, Error> {
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io("list", root)(e)),
    };
    let mut ids = Vec::new();
    for entry in entries {
        let entry = entry.map_err(Error::io("list", root))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if is_backup_id(&name) && entry.path().join(MANIFEST).is_file() {
            ids.push(name);
        }
    }
    ids.sort();
    Ok(ids)
}

/// A file being written with its SHA-256 counted on the way.
pub(crate) struct HashedFile {
    file: std::fs::File,
    hasher: Sha256,
    bytes: u64,
    path: PathBuf,
}

impl HashedFile {
    pub(crate) fn create(path: &Path) -> Result<Self, Error> {
        let file =
            std::fs::OpenOptions::new().write(true).create_new(true).open(path).map_err(Error::io("create", path))?;
        Ok(Self { file, hasher: Sha256::new(), bytes: 0, path: path.to_path_buf() })
    }

    /// Syncs the file and names it in backup `backup` as `file`.
    pub(crate) fn finish(self, backup: &str, file: &str) -> Result<FileRef, Error> {
        self.file.sync_all().map_err(Error::io("sync", &self.path))?;
        Ok(FileRef {
            backup: backup.into(),
            file: file.into(),
            sha256: hex::encode(self.hasher.finalize()),
            bytes: self.bytes,
        })
    }
}

impl Write for HashedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// The SHA-256 and size of the file at `path`.
fn digest(path: &Path) -> Result<(String, u64), Error> {
    let mut file = std::fs::File::open(path).map_err(Error::io("open", path))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut bytes = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(Error::io("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n as u64;
    }
    Ok((hex::encode(hasher.finalize()), bytes))
}

/// Names the file `file` of the backup being written in `dir` (backup
/// `backup`) with its checksum.
pub(crate) fn hash_file(dir: &Path, backup: &str, file: &str) -> Result<FileRef, Error> {
    let (sha256, bytes) = digest(&dir.join(file))?;
    Ok(FileRef { backup: backup.into(), file: file.into(), sha256, bytes })
}

/// Checks that the file `r` names under `root` has its recorded size and
/// SHA-256.
pub(crate) fn verify(root: &Path, r: &FileRef) -> Result<PathBuf, Error> {
    let dir = root.join(&r.backup);
    let bad = |reason: String| Error::InvalidBackup { dir: dir.clone(), reason };
    if !is_safe_ref(r) {
        return Err(bad(format!("the manifest names an unsafe path {}/{}", r.backup, r.file)));
    }
    let path = dir.join(&r.file);
    if !path.is_file() {
        return Err(bad(format!("{} is missing", r.file)));
    }
    let (sha256, bytes) = digest(&path)?;
    if bytes != r.bytes || sha256 != r.sha256 {
        return Err(bad(format!("{} does not match its checksum: it changed or was cut", r.file)));
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_time_and_are_single_components() {
        let a = backup_id(time::macros::datetime!(2026-12-04 09:05:01.002 UTC));
        let b = backup_id(time::macros::datetime!(2026-12-04 10:00:00 UTC));
        assert_eq!(a, "20261204T090501.002Z");
        assert!(a < b);
        assert!(is_backup_id(&a) && is_backup_id(&b));
        for bad in ["..", "20261204T090501.002Z/..", "2026120AT090501.002Z", ""] {
            assert!(!is_backup_id(bad), "{bad}");
        }
    }

    #[test]
    fn verify_refuses_a_changed_file_and_an_escaping_name() {
        let root = tempfile::tempdir().unwrap();
        let id = "20261204T090501.002Z";
        std::fs::create_dir(root.path().join(id)).unwrap();
        let mut f = HashedFile::create(&root.path().join(id).join("x")).unwrap();
        f.write_all(b"hello").unwrap();
        let r = f.finish(id, "x").unwrap();
        // The honest file passes first.
        verify(root.path(), &r).unwrap();
        std::fs::write(root.path().join(id).join("x"), b"hellO").unwrap();
        assert!(matches!(verify(root.path(), &r), Err(Error::InvalidBackup { .. })));
        let escape = FileRef { file: "../../etc/passwd".into(), ..r.clone() };
        assert!(matches!(verify(root.path(), &escape), Err(Error::InvalidBackup { .. })));
    }
}
