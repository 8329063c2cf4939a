//! [`FakeBtrfs`]: subvolumes as plain directories, with a call log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{Btrfs, DiskUsage, QuotaMode};
use crate::StorageError;

/// One call made to a [`FakeBtrfs`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BtrfsCall {
    Create(PathBuf),
    Snapshot {
        source: PathBuf,
        dest: PathBuf,
        readonly: bool,
    },
    Delete(PathBuf),
    SetReadonly(PathBuf, bool),
    /// A sweep of the quota groups of deleted subvolumes.
    RemoveStaleQgroups(PathBuf),
    Send {
        subvolume: PathBuf,
        parent: Option<PathBuf>,
    },
}

/// A writer that counts what passes through.
struct Counted<'a> {
    inner: &'a mut dyn std::io::Write,
    bytes: u64,
}

impl std::io::Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Models subvolumes as directories on any filesystem. Snapshots copy the
/// directory tree; generations grow on every call that writes.
#[derive(Debug, Default)]
pub struct FakeBtrfs {
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    calls: Vec<BtrfsCall>,
    subvolumes: BTreeMap<PathBuf, (bool, u64)>,
    limits: BTreeMap<PathBuf, Option<u64>>,
    generation: u64,
}

impl FakeBtrfs {
    /// A fake with no subvolumes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every call so far, oldest first.
    pub fn calls(&self) -> Vec<BtrfsCall> {
        self.lock().calls.clone()
    }

    /// Whether the fake holds a subvolume at `path`.
    pub fn has_subvolume(&self, path: &Path) -> bool {
        self.lock().subvolumes.contains_key(path)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let dest = to.join(entry.file_name());
        if kind.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else if kind.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, dest)?;
        } else {
            #[allow(clippy::disallowed_methods, reason = "the fake's snapshot is a plain copy")]
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

impl Btrfs for FakeBtrfs {
    fn is_btrfs(&self, _path: &Path) -> Result<bool, StorageError> {
        Ok(true)
    }

    fn is_subvolume(&self, path: &Path) -> Result<bool, StorageError> {
        Ok(self.has_subvolume(path))
    }

    fn create_subvolume(&self, path: &Path) -> Result<(), StorageError> {
        std::fs::create_dir(path).map_err(StorageError::io("create subvolume", path))?;
        let mut s = self.lock();
        s.generation += 1;
        let generation = s.generation;
        s.subvolumes.insert(path.to_path_buf(), (false, generation));
        s.calls.push(BtrfsCall::Create(path.to_path_buf()));
        Ok(())
    }

    fn snapshot(&self, source: &Path, dest: &Path, readonly: bool) -> Result<(), StorageError> {
        copy_tree(source, dest).map_err(StorageError::io("snapshot", dest))?;
        let mut s = self.lock();
        s.generation += 1;
        let generation = s.generation;
        s.subvolumes.insert(dest.to_path_buf(), (readonly, generation));
        s.calls.push(BtrfsCall::Snapshot { source: source.to_path_buf(), dest: dest.to_path_buf(), readonly });
        Ok(())
    }

    fn delete_subvolume(&self, path: &Path) -> Result<(), StorageError> {
        if path.exists() {
            std::fs::remove_dir_all(path).map_err(StorageError::io("delete subvolume", path))?;
        }
        let mut s = self.lock();
        s.subvolumes.retain(|p, _| !p.starts_with(path));
        s.calls.push(BtrfsCall::Delete(path.to_path_buf()));
        Ok(())
    }

    fn set_readonly(&self, path: &Path, readonly: bool) -> Result<(), StorageError> {
        let mut s = self.lock();
        match s.subvolumes.get_mut(path) {
            Some(entry) => entry.0 = readonly,
            None => return Err(StorageError::Missing { what: "subvolume", path: path.to_path_buf() }),
        }
        s.calls.push(BtrfsCall::SetReadonly(path.to_path_buf(), readonly));
        Ok(())
    }

    fn generation(&self, path: &Path) -> Result<u64, StorageError> {
        self.lock()
            .subvolumes
            .get(path)
            .map(|(_, g)| *g)
            .ok_or_else(|| StorageError::Missing { what: "subvolume", path: path.to_path_buf() })
    }

    fn enable_quotas(&self, _path: &Path) -> Result<QuotaMode, StorageError> {
        Ok(QuotaMode::Simple)
    }

    fn set_disk_limit(&self, path: &Path, limit: Option<u64>) -> Result<(), StorageError> {
        self.lock().limits.insert(path.to_path_buf(), limit);
        Ok(())
    }

    fn disk_usage(&self, path: &Path) -> Result<Option<DiskUsage>, StorageError> {
        let bytes = crate::image::tree_size(path).unwrap_or(0);
        let limit = self.lock().limits.get(path).copied().flatten();
        Ok(Some(DiskUsage { referenced: bytes, exclusive: bytes, limit }))
    }

    fn remove_stale_qgroups(&self, pool: &Path) -> Result<usize, StorageError> {
        self.lock().calls.push(BtrfsCall::RemoveStaleQgroups(pool.to_path_buf()));
        Ok(0)
    }

    fn sync(&self, _path: &Path) -> Result<(), StorageError> {
        Ok(())
    }

    /// A tar of the tree under the subvolume's name (the parent is only
    /// recorded: the fake's streams are always whole).
    fn send(&self, subvolume: &Path, parent: Option<&Path>, out: &mut dyn std::io::Write) -> Result<u64, StorageError> {
        let name = subvolume.file_name().ok_or(StorageError::Missing { what: "subvolume", path: subvolume.into() })?;
        let mut counted = Counted { inner: out, bytes: 0 };
        let mut tar = tar::Builder::new(&mut counted);
        tar.follow_symlinks(false);
        tar.append_dir_all(name, subvolume).and_then(|()| tar.finish()).map_err(StorageError::io("send", subvolume))?;
        drop(tar);
        self.lock()
            .calls
            .push(BtrfsCall::Send { subvolume: subvolume.to_path_buf(), parent: parent.map(Path::to_path_buf) });
        Ok(counted.bytes)
    }

    fn receive(&self, stream: &Path, into: &Path) -> Result<PathBuf, StorageError> {
        let before = super::send::entries(into)?;
        let file = std::fs::File::open(stream).map_err(StorageError::io("open", stream))?;
        tar::Archive::new(file).unpack(into).map_err(StorageError::io("receive", stream))?;
        let received = super::send::received(into, &before)?;
        let mut s = self.lock();
        s.generation += 1;
        let generation = s.generation;
        s.subvolumes.insert(received.clone(), (true, generation));
        Ok(received)
    }

    fn subvolumes_under(&self, dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
        let s = self.lock();
        let mut found: Vec<PathBuf> =
            s.subvolumes.keys().filter(|p| p.starts_with(dir) && p.as_path() != dir).cloned().collect();
        found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fake_models_subvolumes_as_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let b = FakeBtrfs::new();
        let a = dir.path().join("a");
        b.create_subvolume(&a).unwrap();
        std::fs::write(a.join("f"), "x").unwrap();
        let snap = dir.path().join("snap");
        b.snapshot(&a, &snap, true).unwrap();
        assert_eq!(std::fs::read_to_string(snap.join("f")).unwrap(), "x");
        assert!(b.generation(&snap).unwrap() > b.generation(&a).unwrap());
        b.delete_subvolume(&a).unwrap();
        assert!(!a.exists());
        b.delete_subvolume(&a).unwrap();
        assert_eq!(b.calls().len(), 4, "two deletes are both recorded");
    }
}
