//! Tenant archives: one file tree and a header of the caller's, as a tar
//! stream (zstd-compressed by [`write`]), with a manifest that lets the
//! reader check every byte before it uses anything.
//!
//! Layout, in this order:
//! - `cubby-export.json`: the header (the caller's bytes, opaque here);
//! - `{prefix}/…`: the tree (directories, regular files, symlinks; owners
//!   as the tenant sees them, not as they are on the host);
//! - `cubby-manifest.json` ([`Manifest`]): every entry's path, kind, mode,
//!   owner and SHA-256, and the header's SHA-256. It comes last because it
//!   is computed while the tree streams out.
//!
//! [`read`] unpacks into a directory without following a single link
//! ([`crate::image::beneath`]), then refuses the whole archive if anything
//! differs from its manifest, so a damaged or edited archive makes nothing.

mod read;
mod write;

use serde::{Deserialize, Serialize};

pub use read::{ReadLimits, read};
pub use write::{Written, write};

/// The first member: the caller's header.
pub const HEADER: &str = "cubby-export.json";
/// The last member: the [`Manifest`].
pub const MANIFEST: &str = "cubby-manifest.json";
/// This format's version, in the manifest.
pub const FORMAT: &str = "cubby-export/1";

/// Owners as stored in the archive: the tenant's ids. On the host a
/// tenant's files may be shifted into a user namespace's range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IdShift {
    /// Host id of the tenant's 0 (0 without a user namespace).
    pub host_base: u32,
    /// How many ids the range has (`u32::MAX` without a user namespace).
    pub size: u32,
}

impl IdShift {
    /// No user namespace: ids as they are.
    pub const NONE: Self = Self { host_base: 0, size: u32::MAX };

    /// The tenant's id of host id `id` (outside the range: nobody).
    pub fn to_tenant(self, id: u32) -> u32 {
        match id.checked_sub(self.host_base) {
            Some(inner) if inner < self.size => inner,
            _ => 65_534,
        }
    }

    /// The host id of the tenant's `id` (outside the range: nobody's).
    pub fn to_host(self, id: u32) -> u32 {
        let inner = if id < self.size { id } else { 65_534.min(self.size.saturating_sub(1)) };
        self.host_base.saturating_add(inner)
    }
}

/// What kind of tree entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Dir,
    File,
    Symlink,
}

/// One tree entry as the manifest records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The path in the archive, when it is UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// The path's bytes in hex, when it is not UTF-8.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hex: Option<String>,
    pub kind: Kind,
    /// Permission bits (with set-id and sticky bits).
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Content length (a symlink's: its target's).
    pub size: u64,
    /// SHA-256 of the content (a symlink's target; nothing for a
    /// directory), hex.
    pub sha256: String,
}

impl Entry {
    fn path_bytes(&self) -> Option<Vec<u8>> {
        match (&self.path, &self.path_hex) {
            (Some(p), None) => Some(p.as_bytes().to_vec()),
            (None, Some(h)) => hex::decode(h).ok(),
            _ => None,
        }
    }

    fn set_path(&mut self, bytes: &[u8]) {
        match std::str::from_utf8(bytes) {
            Ok(p) => (self.path, self.path_hex) = (Some(p.to_owned()), None),
            Err(_) => (self.path, self.path_hex) = (None, Some(hex::encode(bytes))),
        }
    }
}

/// The archive's last member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// SHA-256 of the header member, hex.
    pub header_sha256: String,
    /// The tree's prefix (`rootfs`, `data`).
    pub prefix: String,
    /// Every tree entry, in archive order.
    pub entries: Vec<Entry>,
}

#[cfg(test)]
mod tests;
