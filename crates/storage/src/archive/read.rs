//! Reading an archive into a directory. Every path is resolved under the
//! destination's fd without following links; only directories, regular
//! files and symlinks are made; and the result counts only once the whole
//! tree, owners and modes included, matches the manifest.

use std::ffi::OsStr;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{AtFlags, Mode, OFlags, Timespec, Timestamps};
use rustix::fs::{Gid, Uid};
use rustix::io::Errno;
use sha2::{Digest, Sha256};

use super::{Entry, FORMAT, HEADER, IdShift, Kind, MANIFEST, Manifest};
use crate::StorageError;
use crate::image::beneath::{Beneath, normal_components};

/// What an archive may unpack to.
#[derive(Clone, Copy, Debug)]
pub struct ReadLimits {
    /// Bytes of file content in all.
    pub max_bytes: u64,
    /// Tree entries.
    pub max_entries: u64,
}

/// Largest header member.
const MAX_HEADER: u64 = 1 << 20;
/// Largest manifest member.
const MAX_MANIFEST: u64 = 256 << 20;

fn refused(entry: &[u8], reason: impl Into<String>) -> StorageError {
    StorageError::Refused { entry: String::from_utf8_lossy(entry).escape_default().to_string(), reason: reason.into() }
}

/// Unpacks the zstd-compressed archive from `input` into the empty
/// directory `dest` (owners shifted by `ids`), checks it against its
/// manifest, and returns the header's bytes and the manifest. The header
/// goes to `accept` as soon as it is read: an `Err(reason)` refuses the
/// archive before anything is unpacked. On an error `dest` may hold part
/// of the tree: the caller removes it.
///
/// # Errors
///
/// A malformed, oversized or tampered archive (the entry and the reason
/// named), or a file that cannot be made.
pub fn read(
    input: impl Read,
    dest: &Path,
    prefix: &str,
    ids: IdShift,
    limits: ReadLimits,
    accept: impl FnOnce(&[u8]) -> Result<(), String>,
) -> Result<(Vec<u8>, Manifest), StorageError> {
    let mut accept = Some(accept);
    let archive_io = |source| StorageError::Archive { source };
    let decoder = zstd::Decoder::new(input).map_err(archive_io)?;
    let mut archive = tar::Archive::new(decoder);
    let root = Beneath::open(dest)?;
    let mut header: Option<Vec<u8>> = None;
    let mut manifest: Option<Manifest> = None;
    let mut seen: Vec<Entry> = Vec::new();
    let mut bytes = 0u64;
    for member in archive.entries().map_err(archive_io)? {
        let mut member = member.map_err(archive_io)?;
        let raw = member.path_bytes().into_owned();
        let name = raw.strip_suffix(b"/").unwrap_or(&raw).to_vec();
        if manifest.is_some() {
            return Err(refused(&name, format!("nothing may follow {MANIFEST}")));
        }
        if name == HEADER.as_bytes() {
            if header.is_some() || !seen.is_empty() {
                return Err(refused(&name, format!("{HEADER} must come first, once")));
            }
            let bytes = read_small(&mut member, MAX_HEADER, &name)?;
            if let Some(accept) = accept.take() {
                accept(&bytes).map_err(|reason| refused(&name, reason))?;
            }
            header = Some(bytes);
            continue;
        }
        if name == MANIFEST.as_bytes() {
            let json = read_small(&mut member, MAX_MANIFEST, &name)?;
            manifest = Some(
                serde_json::from_slice(&json)
                    .map_err(|e| refused(&name, format!("it is not a Cubby manifest: {e}")))?,
            );
            continue;
        }
        if header.is_none() {
            return Err(refused(&name, format!("{HEADER} must come first")));
        }
        seen.push(unpack(&root, &mut member, &name, prefix, ids, &mut bytes, limits)?);
        if seen.len() as u64 > limits.max_entries {
            return Err(refused(&name, format!("the archive has more than {} entries", limits.max_entries)));
        }
    }
    let header =
        header.ok_or_else(|| refused(HEADER.as_bytes(), "the archive has no header: is it a Cubby export?"))?;
    let manifest = manifest.ok_or_else(|| refused(MANIFEST.as_bytes(), "missing: the archive is cut short"))?;
    verify(&header, &manifest, prefix, &seen)?;
    Ok((header, manifest))
}

fn read_small(member: &mut impl Read, max: u64, name: &[u8]) -> Result<Vec<u8>, StorageError> {
    let mut out = Vec::new();
    member.take(max + 1).read_to_end(&mut out).map_err(|source| StorageError::Archive { source })?;
    if out.len() as u64 > max {
        return Err(refused(name, format!("it is larger than {max} bytes")));
    }
    Ok(out)
}

/// Everything must be as the manifest says, in its order, and nothing more.
fn verify(header: &[u8], manifest: &Manifest, prefix: &str, seen: &[Entry]) -> Result<(), StorageError> {
    let name = MANIFEST.as_bytes();
    if manifest.format != FORMAT {
        return Err(refused(name, format!("format `{}` is not {FORMAT}", manifest.format)));
    }
    if manifest.prefix != prefix {
        return Err(refused(name, format!("it holds `{}`, not `{prefix}`", manifest.prefix)));
    }
    if manifest.header_sha256 != hex::encode(Sha256::digest(header)) {
        return Err(refused(HEADER.as_bytes(), "its checksum does not match the manifest"));
    }
    for (i, listed) in manifest.entries.iter().enumerate() {
        let Some(found) = seen.get(i) else {
            let path = listed.path_bytes().unwrap_or_default();
            return Err(refused(&path, "listed in the manifest but missing from the archive"));
        };
        if found != listed {
            let path = found.path_bytes().unwrap_or_default();
            return Err(refused(&path, "it does not match the manifest (content, mode or owner)"));
        }
    }
    if let Some(extra) = seen.get(manifest.entries.len()) {
        return Err(refused(&extra.path_bytes().unwrap_or_default(), "it is not in the manifest"));
    }
    Ok(())
}

/// Makes one tree entry; what it was, as the manifest records it.
fn unpack(
    root: &Beneath,
    member: &mut tar::Entry<'_, impl Read>,
    name: &[u8],
    prefix: &str,
    ids: IdShift,
    bytes: &mut u64,
    limits: ReadLimits,
) -> Result<Entry, StorageError> {
    let rel = if name == prefix.as_bytes() {
        None
    } else {
        let rest = name
            .strip_prefix(prefix.as_bytes())
            .and_then(|r| r.strip_prefix(b"/"))
            .ok_or_else(|| refused(name, format!("it is outside `{prefix}/`")))?;
        Some(normal_components(Path::new(OsStr::from_bytes(rest)))?)
    };
    let head = member.header();
    let mode = head.mode().map_err(|source| StorageError::Archive { source })? & 0o7777;
    let tenant_uid = u32::try_from(head.uid().map_err(|source| StorageError::Archive { source })?).unwrap_or(65_534);
    let tenant_gid = u32::try_from(head.gid().map_err(|source| StorageError::Archive { source })?).unwrap_or(65_534);
    let mtime = head.mtime().unwrap_or(0);
    let (uid, gid) = (Uid::from_raw(ids.to_host(tenant_uid)), Gid::from_raw(ids.to_host(tenant_gid)));
    let kind = head.entry_type();
    let mut entry = Entry {
        path: None,
        path_hex: None,
        kind: Kind::Dir,
        mode,
        uid: tenant_uid,
        gid: tenant_gid,
        size: 0,
        sha256: hex::encode(Sha256::digest(b"")),
    };
    entry.set_path(name);
    let made = |op: &'static str| move |e: Errno| refused(name, format!("cannot {op} it: {e}"));
    let Some(rel) = rel else {
        // The tree's root: the destination itself.
        if !kind.is_dir() {
            return Err(refused(name, "the tree's root must be a directory"));
        }
        rustix::fs::fchown(root, Some(uid), Some(gid)).map_err(made("own"))?;
        rustix::fs::fchmod(root, Mode::from_raw_mode(mode)).map_err(made("chmod"))?;
        return Ok(entry);
    };
    let (parent, leaf) = match (rel.parent(), rel.file_name()) {
        (Some(parent), Some(leaf)) => (parent, leaf),
        _ => return Err(refused(name, "it names no entry")),
    };
    let dir = root
        .dir(parent)
        .map_err(|e| match e {
            // Named by the whole entry, as the user sees it in the archive.
            StorageError::Refused { reason, .. } => refused(name, reason),
            other => other,
        })?
        .ok_or_else(|| refused(name, "its directory does not come before it"))?;
    let exists = |e: Errno| {
        if e == Errno::EXIST {
            refused(name, "it is in the archive twice")
        } else {
            refused(name, format!("cannot make it: {e}"))
        }
    };
    match kind {
        tar::EntryType::Directory => {
            rustix::fs::mkdirat(&dir, leaf, Mode::from_raw_mode(0o700)).map_err(exists)?;
            let fd = rustix::fs::openat(
                &dir,
                leaf,
                OFlags::DIRECTORY | OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::empty(),
            )
            .map_err(made("open"))?;
            rustix::fs::fchown(&fd, Some(uid), Some(gid)).map_err(made("own"))?;
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode)).map_err(made("chmod"))?;
        }
        tar::EntryType::Symlink => {
            let target =
                member.link_name_bytes().ok_or_else(|| refused(name, "a symlink without a target"))?.into_owned();
            rustix::fs::symlinkat(OsStr::from_bytes(&target), &dir, leaf).map_err(exists)?;
            rustix::fs::chownat(&dir, leaf, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW).map_err(made("own"))?;
            entry.kind = Kind::Symlink;
            entry.size = target.len() as u64;
            entry.sha256 = hex::encode(Sha256::digest(&target));
        }
        tar::EntryType::Regular | tar::EntryType::Continuous => {
            let size = member.size();
            *bytes = bytes.saturating_add(size);
            if *bytes > limits.max_bytes {
                return Err(StorageError::TooLarge { limit: limits.max_bytes });
            }
            let fd = rustix::fs::openat(
                &dir,
                leaf,
                OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
                Mode::from_raw_mode(0o600),
            )
            .map_err(exists)?;
            let mut file = std::fs::File::from(fd);
            let mut hash = Sha256::new();
            let mut buf = vec![0u8; 64 << 10];
            let mut copied = 0u64;
            loop {
                let n = member.read(&mut buf).map_err(|source| StorageError::Archive { source })?;
                if n == 0 {
                    break;
                }
                hash.update(&buf[..n]);
                file.write_all(&buf[..n]).map_err(|e| refused(name, format!("cannot write it: {e}")))?;
                copied += n as u64;
            }
            if copied != size {
                return Err(refused(name, "the archive is cut short inside it"));
            }
            rustix::fs::fchown(file.as_fd(), Some(uid), Some(gid)).map_err(made("own"))?;
            // After the chown, which clears set-id bits.
            rustix::fs::fchmod(file.as_fd(), Mode::from_raw_mode(mode)).map_err(made("chmod"))?;
            let at = Timespec { tv_sec: i64::try_from(mtime).unwrap_or(0), tv_nsec: 0 };
            let _ = rustix::fs::futimens(file.as_fd(), &Timestamps { last_access: at, last_modification: at });
            entry.kind = Kind::File;
            entry.size = size;
            entry.sha256 = hex::encode(hash.finalize());
        }
        other => {
            return Err(refused(
                name,
                format!("entries of type {other:?} are not allowed (only directories, files and symlinks)"),
            ));
        }
    }
    Ok(entry)
}
