//! Writing an archive: the header, a tree walked without following links,
//! and the manifest, through zstd into any `Write` (a file, an HTTP body).

use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use sha2::{Digest, Sha256};

use super::{Entry, FORMAT, HEADER, IdShift, Kind, MANIFEST, Manifest};
use crate::StorageError;

/// Bytes read from a file at a time.
const READ_CHUNK: usize = 1 << 20;

/// Deepest tree written (the walk holds one directory listing per level).
const MAX_DEPTH: usize = 512;

/// What [`write`] put in the archive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Tree entries.
    pub entries: u64,
    /// Bytes of file content (before compression).
    pub bytes: u64,
    /// Entries left out: device nodes, sockets, fifos (and overlay
    /// whiteouts, which a merged view never shows).
    pub skipped: u64,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Writes `header`, the tree at `root` under `prefix`, and the manifest as
/// a zstd-compressed tar stream to `out`. Owners are stored as the tenant
/// sees them (`ids`); hard links become separate files.
///
/// # Errors
///
/// The tree cannot be read, or `out` fails (a client that went away).
pub fn write(out: impl Write, header: &[u8], root: &Path, prefix: &str, ids: IdShift) -> Result<Written, StorageError> {
    let archive_io = |source| StorageError::Archive { source };
    // Level 1: archives stream out as fast as they are read; level 3
    // measured slower with little gain on data already compressed. zstd's
    // own workers compress while this thread reads and hashes.
    let mut encoder = zstd::Encoder::new(out, 1).map_err(archive_io)?;
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get().min(4));
    encoder.multithread(u32::try_from(workers).unwrap_or(1)).map_err(archive_io)?;
    let mut tar = tar::Builder::new(encoder);
    let mut head = tar::Header::new_gnu();
    head.set_mode(0o600);
    head.set_size(header.len() as u64);
    head.set_mtime(0);
    tar.append_data(&mut head, HEADER, header).map_err(archive_io)?;
    let mut walk = Walk { tar, ids, entries: Vec::new(), written: Written::default() };
    walk.entry(root, prefix.as_bytes(), 0)?;
    let Walk { mut tar, entries, written, .. } = walk;
    let manifest =
        Manifest { format: FORMAT.into(), header_sha256: sha256_hex(header), prefix: prefix.into(), entries };
    let json = serde_json::to_vec(&manifest).map_err(|e| archive_io(std::io::Error::other(e)))?;
    let mut head = tar::Header::new_gnu();
    head.set_mode(0o600);
    head.set_size(json.len() as u64);
    head.set_mtime(0);
    tar.append_data(&mut head, MANIFEST, json.as_slice()).map_err(archive_io)?;
    let encoder = tar.into_inner().map_err(archive_io)?;
    encoder.finish().map_err(archive_io)?.flush().map_err(archive_io)?;
    Ok(written)
}

struct Walk<W: Write> {
    tar: tar::Builder<W>,
    ids: IdShift,
    entries: Vec<Entry>,
    written: Written,
}

impl<W: Write> Walk<W> {
    /// Writes the entry at `path` as `name` in the archive (and, for a
    /// directory, everything under it, in name order).
    fn entry(&mut self, path: &Path, name: &[u8], depth: usize) -> Result<(), StorageError> {
        let archive_io = |source| StorageError::Archive { source };
        let meta = std::fs::symlink_metadata(path).map_err(StorageError::io("stat", path))?;
        let kind = meta.file_type();
        let (uid, gid) = (self.ids.to_tenant(meta.uid()), self.ids.to_tenant(meta.gid()));
        let mode = meta.mode() & 0o7777;
        let mut head = tar::Header::new_gnu();
        head.set_mode(mode);
        head.set_uid(u64::from(uid));
        head.set_gid(u64::from(gid));
        head.set_mtime(u64::try_from(meta.mtime()).unwrap_or(0));
        let name_path = Path::new(std::ffi::OsStr::from_bytes(name));
        let mut entry =
            Entry { path: None, path_hex: None, kind: Kind::Dir, mode, uid, gid, size: 0, sha256: sha256_hex(b"") };
        entry.set_path(name);
        if kind.is_dir() {
            if depth > MAX_DEPTH {
                return Err(StorageError::Refused {
                    entry: path.display().to_string(),
                    reason: format!("it is nested deeper than {MAX_DEPTH} directories"),
                });
            }
            head.set_entry_type(tar::EntryType::Directory);
            head.set_size(0);
            self.tar.append_data(&mut head, name_path, std::io::empty()).map_err(archive_io)?;
            self.note(entry);
            let mut children: Vec<_> = std::fs::read_dir(path)
                .map_err(StorageError::io("list", path))?
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<_, _>>()
                .map_err(StorageError::io("list", path))?;
            children.sort();
            for child in children {
                let mut child_name = name.to_vec();
                child_name.push(b'/');
                child_name.extend_from_slice(child.as_bytes());
                self.entry(&path.join(&child), &child_name, depth + 1)?;
            }
        } else if kind.is_symlink() {
            let target = std::fs::read_link(path).map_err(StorageError::io("read link", path))?;
            let bytes = target.as_os_str().as_bytes();
            head.set_entry_type(tar::EntryType::Symlink);
            head.set_size(0);
            self.tar.append_link(&mut head, name_path, &target).map_err(archive_io)?;
            entry.kind = Kind::Symlink;
            entry.size = bytes.len() as u64;
            entry.sha256 = sha256_hex(bytes);
            self.note(entry);
        } else if kind.is_file() {
            let file = File::open(path).map_err(StorageError::io("open", path))?;
            // Read ahead twice as far, and in large reads: the disk stays
            // busy while the rest of the pipeline works.
            let _ = nix::fcntl::posix_fadvise(&file, 0, 0, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_SEQUENTIAL);
            let file = std::io::BufReader::with_capacity(READ_CHUNK, file);
            let mut hashing = Hashing { inner: file.take(meta.len()), hash: Sha256::new(), read: 0 };
            head.set_entry_type(tar::EntryType::Regular);
            head.set_size(meta.len());
            self.tar.append_data(&mut head, name_path, &mut hashing).map_err(archive_io)?;
            if hashing.read != meta.len() {
                return Err(StorageError::Io {
                    op: "read",
                    path: path.to_path_buf(),
                    source: std::io::Error::other("the file changed size while it was archived"),
                });
            }
            entry.kind = Kind::File;
            entry.size = meta.len();
            entry.sha256 = hex::encode(hashing.hash.finalize());
            self.written.bytes += meta.len();
            self.note(entry);
        } else {
            self.written.skipped += 1;
        }
        Ok(())
    }

    fn note(&mut self, entry: Entry) {
        self.written.entries += 1;
        self.entries.push(entry);
    }
}

/// A reader that hashes what passes through.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    read: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}
