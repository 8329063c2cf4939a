//! Shifting a tree's file owners into a user namespace's id range, once,
//! when an image is made: a file owned by uid `u` becomes owned by
//! `host_base + u`, so inside a container whose uid 0 is `host_base` on the
//! host it is owned by `u` again. Ids past the range become its `nobody`
//! (65534). Set-id bits, which chown(2) clears, are put back; file
//! capabilities (`security.capability`), which it also clears, are not.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use crate::StorageError;

/// The id every id outside the range maps to, as in the kernel.
const NOBODY: u32 = 65_534;

/// Shifts every owner under `root` (`root` included, symlinks not
/// followed) by `host_base`, for a range of `size` ids. Returns how many
/// entries were changed. Running it twice shifts twice: callers shift a
/// tree they just made.
pub fn shift_tree(root: &Path, host_base: u32, size: u32) -> Result<u64, StorageError> {
    let mut changed = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path).map_err(StorageError::io("stat", &path))?;
        let shift = |id: u32| host_base.saturating_add(if id < size { id } else { NOBODY.min(size.saturating_sub(1)) });
        std::os::unix::fs::lchown(&path, Some(shift(meta.uid())), Some(shift(meta.gid())))
            .map_err(StorageError::io("chown", &path))?;
        let kind = meta.file_type();
        if !kind.is_symlink() && meta.mode() & 0o6000 != 0 {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
                .map_err(StorageError::io("chmod", &path))?;
        }
        changed += 1;
        if kind.is_dir() {
            for entry in std::fs::read_dir(&path).map_err(StorageError::io("read", &path))? {
                stack.push(entry.map_err(StorageError::io("read", &path))?.path());
            }
        }
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_move_into_the_range_and_setuid_bits_stay() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("*** SKIPPED owners_move_into_the_range_and_setuid_bits_stay: chown needs root ***");
            assert!(std::env::var("CI").is_err(), "CI=true forbids skipping: run as root");
            return;
        }
        let dir = std::env::temp_dir().join(format!("cubby-idmap-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        std::fs::write(dir.join("bin/su"), b"x").unwrap();
        std::fs::set_permissions(dir.join("bin/su"), std::fs::Permissions::from_mode(0o4755)).unwrap();
        std::fs::write(dir.join("owned"), b"x").unwrap();
        std::os::unix::fs::lchown(dir.join("owned"), Some(1000), Some(100)).unwrap();
        std::fs::write(dir.join("far"), b"x").unwrap();
        std::os::unix::fs::lchown(dir.join("far"), Some(70_000), Some(70_000)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.join("link")).unwrap();

        assert_eq!(shift_tree(&dir, 500_000, 65_536).unwrap(), 6);
        let meta = |p: &str| std::fs::symlink_metadata(dir.join(p)).unwrap();
        assert_eq!((meta("").uid(), meta("").gid()), (500_000, 500_000));
        assert_eq!((meta("owned").uid(), meta("owned").gid()), (501_000, 500_100));
        assert_eq!(meta("far").uid(), 500_000 + NOBODY);
        assert_eq!(meta("link").uid(), 500_000, "the link itself, not its target");
        assert_eq!(std::fs::metadata("/etc/passwd").unwrap().uid(), 0);
        assert_eq!(meta("bin/su").mode() & 0o7777, 0o4755, "setuid kept");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
