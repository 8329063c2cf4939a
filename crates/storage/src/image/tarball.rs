//! Rootfs tarballs: plain, gzip or zstd, streamed and unpacked entry by
//! entry. Each entry is checked before it is written: no `..`, no device
//! nodes, no links that point out of the image, and a cap on the unpacked
//! size.

use std::io::{BufRead, BufReader, Read};
use std::path::{Component, Path};

use crate::StorageError;

/// Limits on an import.
#[derive(Debug, Clone, Copy)]
pub struct ImportLimits {
    /// Most bytes of archive once decompressed.
    pub max_unpacked_bytes: u64,
}

impl Default for ImportLimits {
    fn default() -> Self {
        Self { max_unpacked_bytes: 8 << 30 }
    }
}

/// Counts bytes and fails once past the limit.
struct Capped<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::new(std::io::ErrorKind::FileTooLarge, "archive exceeds the size limit"));
        }
        Ok(n)
    }
}

/// Compression of a stream, told by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// Sniffs the compression from the stream's magic number.
pub fn sniff(head: &[u8]) -> Compression {
    if head.starts_with(&[0x1f, 0x8b]) {
        Compression::Gzip
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Compression::Zstd
    } else {
        Compression::None
    }
}

/// Wraps `reader` in the decompressor its first bytes call for.
pub fn decompress<'a>(reader: impl Read + 'a) -> Result<Box<dyn Read + 'a>, StorageError> {
    let mut buffered = BufReader::with_capacity(1 << 16, reader);
    let head = buffered.fill_buf().map_err(|source| StorageError::Archive { source })?;
    Ok(match sniff(head) {
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(buffered)),
        Compression::Zstd => Box::new(
            zstd::stream::read::Decoder::with_buffer(buffered).map_err(|source| StorageError::Archive { source })?,
        ),
        Compression::None => Box::new(buffered),
    })
}

fn refuse(entry: &Path, reason: &str) -> StorageError {
    StorageError::Refused { entry: entry.display().to_string(), reason: reason.to_string() }
}

/// Whether `path` stays inside the root: only normal components (a leading
/// `/` or `./` is ignored, as GNU tar does).
fn is_contained(path: &Path) -> bool {
    path.components().all(|c| matches!(c, Component::Normal(_) | Component::CurDir | Component::RootDir))
}

/// Unpacks the (possibly compressed) tar stream `reader` into `dest`.
/// Returns the number of bytes unpacked. On error `dest` holds a partial
/// tree; the caller deletes it.
pub fn unpack(reader: impl Read, dest: &Path, limits: ImportLimits) -> Result<u64, StorageError> {
    unpack_filtered(reader, dest, limits, |_| true)
}

/// [`unpack`], skipping entries whose path `keep` refuses.
pub fn unpack_filtered(
    reader: impl Read,
    dest: &Path,
    limits: ImportLimits,
    keep: impl Fn(&Path) -> bool,
) -> Result<u64, StorageError> {
    let stream = decompress(reader)?;
    let capped = Capped { inner: stream, read: 0, limit: limits.max_unpacked_bytes };
    let mut archive = tar::Archive::new(capped);
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    let archive_err = |source: std::io::Error| {
        if source.kind() == std::io::ErrorKind::FileTooLarge {
            StorageError::TooLarge { limit: limits.max_unpacked_bytes }
        } else {
            StorageError::Archive { source }
        }
    };
    let mut total = 0u64;
    for entry in archive.entries().map_err(archive_err)? {
        let mut entry = entry.map_err(archive_err)?;
        let path = entry.path().map_err(archive_err)?.into_owned();
        if !keep(&path) {
            continue;
        }
        if !is_contained(&path) {
            return Err(refuse(&path, "its path leaves the image root (`..`)"));
        }
        let kind = entry.header().entry_type();
        if kind.is_block_special() || kind.is_character_special() {
            return Err(refuse(&path, "device nodes are not allowed in images; the runtime provides /dev"));
        }
        if kind.is_hard_link() {
            let target = entry.link_name().map_err(archive_err)?.unwrap_or_default();
            if !is_contained(&target) {
                return Err(refuse(&path, "its hard link target leaves the image root"));
            }
        }
        total += entry.header().size().unwrap_or(0);
        // unpack_in refuses paths that resolve outside `dest`, including
        // through symlinks unpacked earlier.
        let inside = entry.unpack_in(dest).map_err(archive_err)?;
        if !inside {
            return Err(refuse(&path, "it would be written outside the image root"));
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o755);
            h.set_uid(0);
            h.set_gid(0);
            h.set_mtime(0);
            if let Some(link) = link {
                h.set_link_name(link).unwrap();
            }
            // Write the raw name so tests can build hostile paths the
            // builder would refuse.
            let name = h.as_old_mut();
            name.name[..path.len()].copy_from_slice(path.as_bytes());
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn unpacks_plain_gzip_and_zstd() {
        let plain = tar_with(&[
            ("bin/", tar::EntryType::Directory, b"", None),
            ("bin/hello", tar::EntryType::Regular, b"#!/bin/sh\necho hi\n", None),
            ("bin/sh", tar::EntryType::Symlink, b"", Some("/bin/busybox")),
        ]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &plain).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&plain[..], 1).unwrap();
        for data in [plain.clone(), gz, zst] {
            let dir = tempfile::tempdir().unwrap();
            let n = unpack(&data[..], dir.path(), ImportLimits::default()).unwrap();
            assert_eq!(n, 18);
            assert_eq!(std::fs::read_to_string(dir.path().join("bin/hello")).unwrap(), "#!/bin/sh\necho hi\n");
            assert_eq!(std::fs::read_link(dir.path().join("bin/sh")).unwrap(), Path::new("/bin/busybox"));
        }
    }

    #[test]
    fn refuses_dotdot_devices_and_oversize() {
        let dir = tempfile::tempdir().unwrap();
        let evil = tar_with(&[("../escape", tar::EntryType::Regular, b"x", None)]);
        let err = unpack(&evil[..], dir.path(), ImportLimits::default()).unwrap_err();
        assert!(matches!(err, StorageError::Refused { .. }), "{err}");
        assert!(!dir.path().parent().unwrap().join("escape").exists());

        let dev = tar_with(&[("dev/sda", tar::EntryType::Block, b"", None)]);
        let err = unpack(&dev[..], dir.path(), ImportLimits::default()).unwrap_err();
        assert!(err.to_string().contains("device nodes"), "{err}");

        let big = tar_with(&[("big", tar::EntryType::Regular, &[0u8; 10_000], None)]);
        let err = unpack(&big[..], dir.path(), ImportLimits { max_unpacked_bytes: 4096 }).unwrap_err();
        assert!(matches!(err, StorageError::TooLarge { .. }), "{err}");
    }

    #[test]
    fn refuses_writing_through_a_symlink_out_of_root() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        let evil = tar_with(&[
            ("link", tar::EntryType::Symlink, b"", Some(outside.to_str().unwrap())),
            ("link/pwned", tar::EntryType::Regular, b"x", None),
        ]);
        assert!(unpack(&evil[..], &root, ImportLimits::default()).is_err());
        assert!(!outside.join("pwned").exists());
    }
}
