//! Images: how their root filesystems are filled.
//!
//! - [`minimal`]: the built-in image, from the host's static busybox and
//!   Cubby's demo app, with no download.
//! - [`tarball`]: a rootfs tarball (plain, gzip or zstd), unpacked with
//!   every entry checked so nothing lands outside the image.
//! - [`oci`]: an OCI image archive, its layers applied in order with their
//!   whiteouts, every path resolved under the image root through
//!   [`beneath`] (a directory fd, no symlink followed).
//!
//! Both fill a directory; the caller makes it a subvolume first and marks
//! it read-only after.

pub mod beneath;
pub mod minimal;
pub mod oci;
pub mod tarball;
#[cfg(test)]
mod testing;

use std::io::Read;
use std::path::Path;

use cubby_model::ImageConfig;

use crate::StorageError;

/// Whether the first entry of a tar stream belongs to an OCI image archive
/// (`docker save` or an OCI layout) rather than to a root filesystem.
pub fn is_oci_archive(first_header: &[u8; 512]) -> bool {
    let name_end = first_header[..100].iter().position(|&b| b == 0).unwrap_or(100);
    let name = String::from_utf8_lossy(&first_header[..name_end]);
    let name = name.trim_start_matches("./");
    let hex64 = |s: &str| s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit());
    matches!(name, "oci-layout" | "index.json" | "manifest.json" | "repositories" | "blobs" | "blobs/")
        || name.starts_with("blobs/")
        || name.split(['/', '.']).next().is_some_and(hex64)
}

/// What an import put into an image's root.
#[derive(Debug, Default)]
pub struct Imported {
    /// Bytes of file contents.
    pub bytes: u64,
    /// The defaults an OCI image's config gives.
    pub config: Option<ImageConfig>,
    /// Whether it was an OCI image archive (else a rootfs tarball).
    pub oci: bool,
    /// What was left out, for the user (device nodes).
    pub warnings: Vec<String>,
}

/// Imports an image into `root`: an OCI image archive or a rootfs tarball,
/// told apart by the first entry. `scratch` is a path (not yet existing)
/// an OCI archive may be unpacked to.
pub fn import(
    reader: impl Read,
    root: &Path,
    scratch: &Path,
    limits: tarball::ImportLimits,
) -> Result<Imported, StorageError> {
    let mut stream = tarball::decompress(reader)?;
    let mut head = [0u8; 512];
    stream.read_exact(&mut head).map_err(|source| StorageError::Archive { source })?;
    let whole = std::io::Cursor::new(head).chain(stream);
    if is_oci_archive(&head) {
        oci::import_archive(whole, root, scratch, limits)
    } else {
        let unpacked = tarball::unpack(whole, root, limits)?;
        let warnings = tarball::skipped_warning(&unpacked.skipped).into_iter().collect();
        Ok(Imported { bytes: unpacked.bytes, config: None, oci: false, warnings })
    }
}

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
