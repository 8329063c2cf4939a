//! Rootfs tarballs: plain, gzip or zstd, streamed and unpacked entry by
//! entry. Each entry is checked before it is written: no `..`, no links
//! that point out of the image, and a cap on the unpacked size. Device
//! nodes are left out (the runtime provides `/dev`) and reported, so an
//! image made by debootstrap or `podman import` still imports.

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
pub(crate) struct Capped<R> {
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

/// `reader`, failing with [`StorageError::TooLarge`] (through
/// [`archive_error`]) once it has given more than the limit.
pub(crate) fn capped<R: Read>(reader: R, limits: ImportLimits) -> Capped<R> {
    Capped { inner: reader, read: 0, limit: limits.max_unpacked_bytes }
}

/// The error of a failed archive read: too large, or unreadable.
pub(crate) fn archive_error(source: std::io::Error, limits: ImportLimits) -> StorageError {
    if source.kind() == std::io::ErrorKind::FileTooLarge {
        StorageError::TooLarge { limit: limits.max_unpacked_bytes }
    } else {
        StorageError::Archive { source }
    }
}

/// What an unpack wrote.
#[derive(Debug, Default)]
pub struct Unpacked {
    /// Bytes of file contents.
    pub bytes: u64,
    /// Entries left out (device nodes).
    pub skipped: Vec<String>,
}

/// One warning for the entries an import left out, naming a few.
pub fn skipped_warning(skipped: &[String]) -> Option<String> {
    const NAMED: usize = 5;
    let (first, rest) = skipped.split_at(skipped.len().min(NAMED));
    let first = first.first()?.clone() + &first[1..].iter().map(|p| format!(", {p}")).collect::<String>();
    let more = if rest.is_empty() { String::new() } else { format!(" and {} more", rest.len()) };
    Some(format!(
        "left out {} device node{} ({first}{more}): containers get their /dev from the runtime",
        skipped.len(),
        if skipped.len() == 1 { "" } else { "s" }
    ))
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
pub fn unpack(reader: impl Read, dest: &Path, limits: ImportLimits) -> Result<Unpacked, StorageError> {
    unpack_filtered(reader, dest, limits, |_| true)
}

/// [`unpack`], skipping entries whose path `keep` refuses.
pub fn unpack_filtered(
    reader: impl Read,
    dest: &Path,
    limits: ImportLimits,
    keep: impl Fn(&Path) -> bool,
) -> Result<Unpacked, StorageError> {
    let mut archive = tar::Archive::new(capped(decompress(reader)?, limits));
    archive.set_preserve_permissions(true);
    archive.set_preserve_ownerships(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(true);
    let archive_err = |source: std::io::Error| archive_error(source, limits);
    let mut unpacked = Unpacked::default();
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
            // The runtime provides /dev; a node here could only open a
            // host device where the device cgroup is lax.
            unpacked.skipped.push(path.display().to_string());
            continue;
        }
        if kind.is_hard_link() {
            let target = entry.link_name().map_err(archive_err)?.unwrap_or_default();
            if !is_contained(&target) {
                return Err(refuse(&path, "its hard link target leaves the image root"));
            }
        }
        unpacked.bytes += entry.header().size().unwrap_or(0);
        // unpack_in refuses paths that resolve outside `dest`, including
        // through symlinks unpacked earlier.
        let inside = entry.unpack_in(dest).map_err(archive_err)?;
        if !inside {
            return Err(refuse(&path, "it would be written outside the image root"));
        }
    }
    Ok(unpacked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::testing::tar_with;

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
            assert_eq!((n.bytes, n.skipped.len()), (18, 0));
            assert_eq!(std::fs::read_to_string(dir.path().join("bin/hello")).unwrap(), "#!/bin/sh\necho hi\n");
            assert_eq!(std::fs::read_link(dir.path().join("bin/sh")).unwrap(), Path::new("/bin/busybox"));
        }
    }

    #[test]
    fn refuses_dotdot_and_oversize_and_leaves_out_devices() {
        let dir = tempfile::tempdir().unwrap();
        let evil = tar_with(&[("../escape", tar::EntryType::Regular, b"x", None)]);
        let err = unpack(&evil[..], dir.path(), ImportLimits::default()).unwrap_err();
        assert!(matches!(err, StorageError::Refused { .. }), "{err}");
        assert!(!dir.path().parent().unwrap().join("escape").exists());

        let dev = tar_with(&[
            ("dev/", tar::EntryType::Directory, b"", None),
            ("dev/sda", tar::EntryType::Block, b"", None),
            ("dev/null", tar::EntryType::Char, b"", None),
            ("etc/", tar::EntryType::Directory, b"", None),
            ("etc/motd", tar::EntryType::Regular, b"hi", None),
        ]);
        let n = unpack(&dev[..], dir.path(), ImportLimits::default()).unwrap();
        assert_eq!(n.skipped, ["dev/sda", "dev/null"]);
        assert!(dir.path().join("dev").is_dir() && !dir.path().join("dev/sda").exists());
        assert_eq!(std::fs::read(dir.path().join("etc/motd")).unwrap(), b"hi", "the rest is imported");
        let warning = skipped_warning(&n.skipped).unwrap();
        assert!(warning.contains("2 device nodes (dev/sda, dev/null)"), "{warning}");
        assert_eq!(skipped_warning(&[]), None);
        let many: Vec<String> = (0..8).map(|i| format!("dev/n{i}")).collect();
        assert!(skipped_warning(&many).unwrap().contains("dev/n4 and 3 more"));

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
