//! [`LibBtrfs`]: [`Btrfs`] through libbtrfsutil's ioctl wrappers.

use std::path::{Path, PathBuf};

use libbtrfsutil::{CreateSnapshotOptions, DeleteSubvolumeOptions};
use nix::sys::statfs::{BTRFS_SUPER_MAGIC, statfs};

use super::{Btrfs, DiskUsage, QuotaMode};
use crate::StorageError;

/// The real btrfs, through libbtrfsutil and a few ioctls of its own.
#[derive(Debug, Clone)]
pub struct LibBtrfs {
    sys_root: PathBuf,
}

impl LibBtrfs {
    /// Reads quota usage under `sys_root` (normally `/sys`).
    pub fn new(sys_root: impl Into<PathBuf>) -> Self {
        Self { sys_root: sys_root.into() }
    }
}

impl Default for LibBtrfs {
    fn default() -> Self {
        Self::new("/sys")
    }
}

fn err(op: &'static str, path: &Path) -> impl FnOnce(libbtrfsutil::Error) -> StorageError {
    let path = path.to_path_buf();
    move |source| StorageError::Btrfs { op, path, source }
}

impl Btrfs for LibBtrfs {
    fn is_btrfs(&self, path: &Path) -> Result<bool, StorageError> {
        let st = statfs(path).map_err(|e| StorageError::Io {
            op: "statfs",
            path: path.to_path_buf(),
            source: std::io::Error::from(e),
        })?;
        Ok(st.filesystem_type() == BTRFS_SUPER_MAGIC)
    }

    fn is_subvolume(&self, path: &Path) -> Result<bool, StorageError> {
        if !path.exists() {
            return Ok(false);
        }
        libbtrfsutil::is_subvolume(path).map_err(err("subvolume check", path))
    }

    fn create_subvolume(&self, path: &Path) -> Result<(), StorageError> {
        let _span = tracing::debug_span!("btrfs.create_subvolume", path = %path.display()).entered();
        libbtrfsutil::create_subvolume(path).map_err(err("subvolume create", path))
    }

    fn snapshot(&self, source: &Path, dest: &Path, readonly: bool) -> Result<(), StorageError> {
        let _span =
            tracing::debug_span!("btrfs.snapshot", source = %source.display(), dest = %dest.display()).entered();
        CreateSnapshotOptions::new().readonly(readonly).create(source, dest).map_err(err("snapshot", dest))
    }

    fn delete_subvolume(&self, path: &Path) -> Result<(), StorageError> {
        let _span = tracing::debug_span!("btrfs.delete_subvolume", path = %path.display()).entered();
        if !path.exists() {
            return Ok(());
        }
        // Nested subvolumes made inside read-only ones cannot exist, but a
        // read-only nested subvolume can: make each writable first so the
        // recursive delete is allowed to unlink it.
        for nested in self.subvolumes_under(path)? {
            let _ = libbtrfsutil::set_subvolume_read_only(&nested, false);
        }
        DeleteSubvolumeOptions::new().recursive(true).delete(path).map_err(err("subvolume delete", path))
    }

    fn set_readonly(&self, path: &Path, readonly: bool) -> Result<(), StorageError> {
        libbtrfsutil::set_subvolume_read_only(path, readonly).map_err(err("set read-only flag", path))
    }

    fn generation(&self, path: &Path) -> Result<u64, StorageError> {
        libbtrfsutil::subvolume_info(path).map(|i| i.generation()).map_err(err("subvolume info", path))
    }

    fn enable_quotas(&self, path: &Path) -> Result<QuotaMode, StorageError> {
        super::quota::enable(&self.sys_root, path)
    }

    fn set_disk_limit(&self, path: &Path, limit: Option<u64>) -> Result<(), StorageError> {
        super::quota::set_limit(path, limit)
    }

    fn disk_usage(&self, path: &Path) -> Result<Option<DiskUsage>, StorageError> {
        super::quota::usage(&self.sys_root, path)
    }

    fn remove_stale_qgroups(&self, pool: &Path) -> Result<usize, StorageError> {
        super::quota::remove_stale(&self.sys_root, pool)
    }

    fn sync(&self, path: &Path) -> Result<(), StorageError> {
        super::quota::sync(path)
    }

    fn send(&self, subvolume: &Path, parent: Option<&Path>, out: &mut dyn std::io::Write) -> Result<u64, StorageError> {
        super::send::send(subvolume, parent, out)
    }

    fn receive(&self, stream: &Path, into: &Path) -> Result<PathBuf, StorageError> {
        super::send::receive(stream, into)
    }

    fn subvolumes_under(&self, dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
        // A subvolume root has inode number 256 on btrfs; walking the tree
        // finds them without the privileged tree-search ioctl.
        let mut found = Vec::new();
        walk(dir, &mut found, true)?;
        found.reverse();
        Ok(found)
    }
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>, top: bool) -> Result<(), StorageError> {
    use std::os::unix::fs::MetadataExt;
    let meta = match std::fs::symlink_metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(StorageError::io("stat", dir)(e)),
    };
    if !meta.is_dir() {
        return Ok(());
    }
    if !top && meta.ino() == 256 {
        found.push(dir.to_path_buf());
    }
    let entries = std::fs::read_dir(dir).map_err(StorageError::io("list", dir))?;
    for entry in entries {
        let entry = entry.map_err(StorageError::io("list", dir))?;
        if entry.file_type().map_err(StorageError::io("stat", entry.path()))?.is_dir() {
            walk(&entry.path(), found, false)?;
        }
    }
    Ok(())
}
