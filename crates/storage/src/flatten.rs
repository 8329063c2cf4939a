//! Flattening a chain of layers into one: the merged, read-only view of the
//! chain (an overlay with no upper, so the kernel resolves whiteouts and
//! opaque directories) is copied into a new subvolume. File data is
//! reflinked (copy_file_range on btrfs shares extents), so flattening costs
//! metadata, not data.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::{Mounts, Overlay, StorageError};

/// Merges `lowers` (topmost first) into the empty directory `dest`, using
/// `scratch` (an empty directory) as a temporary mount point.
pub fn flatten(mounts: &dyn Mounts, lowers: &[PathBuf], scratch: &Path, dest: &Path) -> Result<(), StorageError> {
    let overlay = Overlay { lowers: lowers.to_vec(), upper: None, target: scratch.to_path_buf() };
    mounts.mount_overlay(&overlay)?;
    let copied = copy_tree(scratch, dest).and_then(|()| {
        // The merged root's mode, not the one the new subvolume was made with.
        let mode = std::fs::metadata(scratch).map_err(StorageError::io("stat", scratch))?.mode() & 0o7777;
        std::fs::set_permissions(dest, std::fs::Permissions::from_mode(mode)).map_err(StorageError::io("chmod", dest))
    });
    let unmounted = mounts.unmount(scratch);
    copied.and(unmounted)
}

/// Copies the tree at `from` into the existing directory `to`, keeping
/// modes, owners, times and symlinks. Device nodes are skipped.
pub fn copy_tree(from: &Path, to: &Path) -> Result<(), StorageError> {
    for entry in std::fs::read_dir(from).map_err(StorageError::io("list", from))? {
        let entry = entry.map_err(StorageError::io("list", from))?;
        let src = entry.path();
        let dst = to.join(entry.file_name());
        let meta = std::fs::symlink_metadata(&src).map_err(StorageError::io("stat", &src))?;
        let kind = meta.file_type();
        if kind.is_dir() {
            std::fs::create_dir(&dst).map_err(StorageError::io("create", &dst))?;
            copy_tree(&src, &dst)?;
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&src).map_err(StorageError::io("read link", &src))?;
            std::os::unix::fs::symlink(&target, &dst).map_err(StorageError::io("link", &dst))?;
        } else if kind.is_file() {
            #[allow(clippy::disallowed_methods, reason = "copy_tree itself: on btrfs the data is reflinked")]
            std::fs::copy(&src, &dst).map_err(StorageError::io("copy", &dst))?;
        } else {
            continue;
        }
        let _ = std::os::unix::fs::lchown(&dst, Some(meta.uid()), Some(meta.gid()));
        if !kind.is_symlink() {
            std::fs::set_permissions(&dst, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(StorageError::io("chmod", &dst))?;
            let times = [
                nix::sys::time::TimeSpec::new(meta.atime(), meta.atime_nsec()),
                nix::sys::time::TimeSpec::new(meta.mtime(), meta.mtime_nsec()),
            ];
            let _ = nix::sys::stat::utimensat(
                nix::fcntl::AT_FDCWD,
                &dst,
                &times[0],
                &times[1],
                nix::sys::stat::UtimensatFlags::NoFollowSymlink,
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_tree_keeps_files_links_and_modes() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::create_dir_all(a.join("sub")).unwrap();
        std::fs::write(a.join("sub/f"), "data").unwrap();
        std::fs::set_permissions(a.join("sub/f"), std::fs::Permissions::from_mode(0o640)).unwrap();
        std::os::unix::fs::symlink("sub/f", a.join("link")).unwrap();
        std::fs::create_dir(&b).unwrap();
        copy_tree(&a, &b).unwrap();
        assert_eq!(std::fs::read_to_string(b.join("sub/f")).unwrap(), "data");
        assert_eq!(std::fs::read_link(b.join("link")).unwrap(), PathBuf::from("sub/f"));
        assert_eq!(std::fs::metadata(b.join("sub/f")).unwrap().mode() & 0o777, 0o640);
    }
}
