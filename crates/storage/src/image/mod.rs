//! Images: how their root filesystems are filled.
//!
//! - [`minimal`]: the built-in image, from the host's static busybox and
//!   Cubby's demo app, with no download.
//! - [`tarball`]: a rootfs tarball (plain, gzip or zstd), unpacked with
//!   every entry checked so nothing lands outside the image.
//!
//! Both fill a directory; the caller makes it a subvolume first and marks
//! it read-only after.

pub mod minimal;
pub mod tarball;

use std::path::Path;

use crate::StorageError;

/// Bytes of regular files under `dir` (not following symlinks).
pub fn tree_size(dir: &Path) -> Result<u64, StorageError> {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).map_err(StorageError::io("list", &d))? {
            let entry = entry.map_err(StorageError::io("list", &d))?;
            let kind = entry.file_type().map_err(StorageError::io("stat", entry.path()))?;
            if kind.is_dir() {
                stack.push(entry.path());
            } else if kind.is_file() {
                total += entry.metadata().map_err(StorageError::io("stat", entry.path()))?.len();
            }
        }
    }
    Ok(total)
}
