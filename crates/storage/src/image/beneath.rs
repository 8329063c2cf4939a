//! A directory held by an fd, and paths from archives resolved under it
//! without following a single symlink (`openat2` with `RESOLVE_IN_ROOT |
//! RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV`). An
//! absolute path is taken from the root, `..` cannot climb out, and a
//! symlink anywhere on the way (planted by an earlier layer, or by the
//! archive itself) fails the lookup instead of leading elsewhere.
//!
//! Image import reads the archive's own members (manifests, configs,
//! layers) and applies whiteouts through this, so nothing outside the
//! image root is read or removed, whatever the archive says.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;

use crate::StorageError;

const RESOLVE: ResolveFlags = ResolveFlags::IN_ROOT
    .union(ResolveFlags::NO_SYMLINKS)
    .union(ResolveFlags::NO_MAGICLINKS)
    .union(ResolveFlags::NO_XDEV);

/// Deepest tree a removal descends (it holds one fd per level).
const MAX_DEPTH: usize = 512;

/// A directory that paths are resolved under.
#[derive(Debug)]
pub struct Beneath {
    fd: OwnedFd,
    /// For messages only: never used to reach anything.
    shown: PathBuf,
}

fn refused(entry: &Path, reason: impl Into<String>) -> StorageError {
    StorageError::Refused { entry: entry.display().to_string(), reason: reason.into() }
}

/// `rel` as normal components only: a leading `/` and `.` are dropped (as
/// tar does), and `..` is refused.
pub fn normal_components(rel: &Path) -> Result<PathBuf, StorageError> {
    let mut out = PathBuf::new();
    for c in rel.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir => {}
            Component::ParentDir | Component::Prefix(_) => {
                return Err(refused(rel, "its path leaves the image root (`..`)"));
            }
        }
    }
    Ok(out)
}

impl Beneath {
    /// Opens the directory `dir` (a path the daemon chose, not an archive's).
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let fd = rustix::fs::open(dir, OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
            .map_err(|e| StorageError::io("open", dir)(e.into()))?;
        Ok(Self { fd, shown: dir.to_path_buf() })
    }

    fn open_at(&self, rel: &Path, flags: OFlags) -> Result<OwnedFd, Errno> {
        let rel = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
        rustix::fs::openat2(&self.fd, rel, flags | OFlags::CLOEXEC | OFlags::NOFOLLOW, Mode::empty(), RESOLVE)
    }

    fn lookup_error(&self, entry: &Path, errno: Errno) -> StorageError {
        match errno {
            Errno::LOOP => refused(entry, "its path goes through a symlink"),
            Errno::XDEV => refused(entry, "its path leaves the image root"),
            Errno::NOTDIR => refused(entry, "a part of its path is a symlink or a file, not a directory"),
            other => StorageError::io("open", self.shown.join(entry))(other.into()),
        }
    }

    /// Opens the directory at `rel` under the root; `Ok(None)` when absent.
    pub fn dir(&self, rel: &Path) -> Result<Option<Self>, StorageError> {
        let rel = normal_components(rel)?;
        match self.open_at(&rel, OFlags::DIRECTORY | OFlags::RDONLY) {
            Ok(fd) => Ok(Some(Self { fd, shown: self.shown.join(&rel) })),
            Err(Errno::NOENT) => Ok(None),
            Err(e) => Err(self.lookup_error(&rel, e)),
        }
    }

    /// Opens the regular file at `rel` under the root for reading.
    pub fn file(&self, rel: &Path) -> Result<File, StorageError> {
        self.file_if_present(rel)?
            .ok_or_else(|| StorageError::Oci { detail: format!("`{}` is missing", rel.display()) })
    }

    /// [`Beneath::file`], or `Ok(None)` when nothing is at `rel`.
    pub fn file_if_present(&self, rel: &Path) -> Result<Option<File>, StorageError> {
        let rel = normal_components(rel)?;
        let fd = match self.open_at(&rel, OFlags::RDONLY) {
            Ok(fd) => fd,
            Err(Errno::NOENT) => return Ok(None),
            Err(other) => return Err(self.lookup_error(&rel, other)),
        };
        let stat = rustix::fs::fstat(&fd).map_err(|e| StorageError::io("stat", self.shown.join(&rel))(e.into()))?;
        if FileType::from_raw_mode(stat.st_mode) != FileType::RegularFile {
            return Err(refused(&rel, "it is not a regular file"));
        }
        Ok(Some(File::from(fd)))
    }

    /// Makes the directory at `rel` and any missing parents (each with
    /// `mode`); one that exists is fine.
    pub fn create_dir_all(&self, rel: &Path, mode: u32) -> Result<(), StorageError> {
        let rel = normal_components(rel)?;
        let mut at = PathBuf::new();
        for part in rel.components() {
            let parent =
                self.open_at(&at, OFlags::DIRECTORY | OFlags::RDONLY).map_err(|e| self.lookup_error(&at, e))?;
            match rustix::fs::mkdirat(&parent, part.as_os_str(), Mode::from_raw_mode(mode & 0o7777)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(StorageError::io("create", self.shown.join(&at).join(part))(e.into())),
            }
            at.push(part);
            // What exists must be a directory reached without a link.
            self.open_at(&at, OFlags::DIRECTORY | OFlags::RDONLY).map_err(|e| self.lookup_error(&at, e))?;
        }
        Ok(())
    }

    /// Creates the regular file at `rel` (its parent must exist) with
    /// `mode`; a file already there is refused.
    pub fn create_file(&self, rel: &Path, mode: u32) -> Result<File, StorageError> {
        let rel = normal_components(rel)?;
        let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC | OFlags::NOFOLLOW;
        let fd = rustix::fs::openat2(&self.fd, &rel, flags, Mode::from_raw_mode(mode & 0o7777), RESOLVE).map_err(
            |e| match e {
                Errno::EXIST => refused(&rel, "it is there already"),
                other => self.lookup_error(&rel, other),
            },
        )?;
        Ok(File::from(fd))
    }

    /// Reads the regular file at `rel`, refusing more than `max` bytes.
    pub fn read(&self, rel: &Path, max: u64) -> Result<Vec<u8>, StorageError> {
        let mut bytes = Vec::new();
        self.file(rel)?
            .take(max.saturating_add(1))
            .read_to_end(&mut bytes)
            .map_err(|source| StorageError::Archive { source })?;
        if bytes.len() as u64 > max {
            return Err(StorageError::TooLarge { limit: max });
        }
        Ok(bytes)
    }

    /// Removes the entry `name` of this directory, a whole tree if it is a
    /// directory, never following a symlink. Absent is fine.
    pub fn remove(&self, name: &OsStr) -> Result<(), StorageError> {
        self.remove_at_depth(name, 0)
    }

    fn remove_at_depth(&self, name: &OsStr, depth: usize) -> Result<(), StorageError> {
        check_name(name)?;
        let shown = self.shown.join(name);
        let stat = match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(stat) => stat,
            Err(Errno::NOENT) => return Ok(()),
            Err(e) => return Err(StorageError::io("stat", shown)(e.into())),
        };
        if FileType::from_raw_mode(stat.st_mode) != FileType::Directory {
            return rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())
                .map_err(|e| StorageError::io("remove", shown)(e.into()));
        }
        let flags = OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::openat(&self.fd, name, flags, Mode::empty())
            .map_err(|e| StorageError::io("open", &shown)(e.into()))?;
        if depth >= MAX_DEPTH {
            return Err(refused(&shown, format!("it is nested deeper than {MAX_DEPTH} directories")));
        }
        Self { fd, shown: shown.clone() }.clear_at_depth(depth + 1)?;
        rustix::fs::unlinkat(&self.fd, name, AtFlags::REMOVEDIR)
            .map_err(|e| StorageError::io("remove", shown)(e.into()))
    }

    /// Removes everything in this directory, keeping the directory.
    pub fn clear(&self) -> Result<(), StorageError> {
        self.clear_at_depth(0)
    }

    fn clear_at_depth(&self, depth: usize) -> Result<(), StorageError> {
        for name in self.names()? {
            self.remove_at_depth(&name, depth)?;
        }
        Ok(())
    }

    /// The entries of this directory, without `.` and `..`.
    fn names(&self) -> Result<Vec<OsString>, StorageError> {
        let list = |e: Errno| StorageError::io("list", &self.shown)(e.into());
        let dup = rustix::io::fcntl_dupfd_cloexec(&self.fd, 0).map_err(list)?;
        let mut names = Vec::new();
        for entry in rustix::fs::Dir::new(dup).map_err(list)? {
            let name = entry.map_err(list)?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                names.push(OsString::from_vec(name));
            }
        }
        Ok(names)
    }
}

impl AsFd for Beneath {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

/// A single path component that names something in a directory.
fn check_name(name: &OsStr) -> Result<(), StorageError> {
    let bytes = name.as_bytes();
    if bytes.is_empty() || bytes == b"." || bytes == b".." || bytes.contains(&b'/') || bytes.contains(&0) {
        return Err(refused(Path::new(name), "it does not name an entry of its directory"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_and_directories_are_made_under_the_root_never_through_a_link() {
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = Beneath::open(dir.path()).unwrap();
        // The control: a nested file is made where it belongs.
        root.create_dir_all(Path::new("projects/p1/scripts"), 0o755).unwrap();
        std::io::Write::write_all(&mut root.create_file(Path::new("projects/p1/scripts/a.js"), 0o640).unwrap(), b"x")
            .unwrap();
        assert_eq!(std::fs::read(dir.path().join("projects/p1/scripts/a.js")).unwrap(), b"x");
        assert!(matches!(
            root.create_file(Path::new("projects/p1/scripts/a.js"), 0o640),
            Err(StorageError::Refused { .. })
        ));
        // A link planted on the way is not followed, for files or directories.
        std::os::unix::fs::symlink(outside.path(), dir.path().join("escape")).unwrap();
        assert!(root.create_file(Path::new("escape/planted"), 0o644).is_err());
        assert!(root.create_dir_all(Path::new("escape/deeper"), 0o755).is_err());
        assert!(root.create_file(Path::new("../up"), 0o644).is_err());
        assert_eq!(std::fs::read_dir(outside.path()).unwrap().count(), 0, "nothing made outside");
    }
}
