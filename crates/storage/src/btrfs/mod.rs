//! btrfs subvolumes and snapshots.
//!
//! [`Btrfs`] is the seam. [`LibBtrfs`] calls the kernel through
//! libbtrfsutil (the library btrfs-progs itself uses: ioctls, no process
//! spawned). [`FakeBtrfs`] models subvolumes as plain directories and
//! records each call, for unit tests without root. Send and receive, which
//! libbtrfsutil does not have, run btrfs-progs' `btrfs` (`send.rs`).

mod fake;
mod quota;
mod real;
mod send;

use std::path::{Path, PathBuf};

pub use fake::{BtrfsCall, FakeBtrfs};
pub use quota::{DiskUsage, QuotaMode};
pub use real::LibBtrfs;

use crate::StorageError;

/// The btrfs operations Cubby needs. Paths are absolute.
pub trait Btrfs: Send + Sync + std::fmt::Debug {
    /// Whether `path` lives on a btrfs filesystem.
    fn is_btrfs(&self, path: &Path) -> Result<bool, StorageError>;
    /// Whether `path` is the root of a subvolume.
    fn is_subvolume(&self, path: &Path) -> Result<bool, StorageError>;
    /// Creates an empty subvolume at `path` (its parent must exist).
    fn create_subvolume(&self, path: &Path) -> Result<(), StorageError>;
    /// Snapshots subvolume `source` to `dest`, read-only if asked. Costs no
    /// data copy: the snapshot shares every extent with its source.
    fn snapshot(&self, source: &Path, dest: &Path, readonly: bool) -> Result<(), StorageError>;
    /// Deletes the subvolume at `path` and every subvolume nested in it.
    /// Succeeds when `path` does not exist.
    fn delete_subvolume(&self, path: &Path) -> Result<(), StorageError>;
    /// Makes a subvolume read-only or writable.
    fn set_readonly(&self, path: &Path, readonly: bool) -> Result<(), StorageError>;
    /// The subvolume's generation: it grows with every change written to it.
    fn generation(&self, path: &Path) -> Result<u64, StorageError>;
    /// Subvolumes directly or indirectly under `dir` (not `dir` itself),
    /// as absolute paths, deepest first.
    fn subvolumes_under(&self, dir: &Path) -> Result<Vec<PathBuf>, StorageError>;
    /// Turns quota accounting on for the filesystem of `path`.
    fn enable_quotas(&self, path: &Path) -> Result<QuotaMode, StorageError>;
    /// Limits the bytes the subvolume at `path` may write (`None`: no limit).
    fn set_disk_limit(&self, path: &Path, limit: Option<u64>) -> Result<(), StorageError>;
    /// The subvolume's disk use, or `None` when quotas are off.
    fn disk_usage(&self, path: &Path) -> Result<Option<DiskUsage>, StorageError>;
    /// Removes the quota groups deleted subvolumes left behind, once they
    /// are empty; returns how many still wait for their extents to be freed.
    fn remove_stale_qgroups(&self, pool: &Path) -> Result<usize, StorageError>;
    /// Commits the current transaction of the filesystem holding `path`, so
    /// that [`Btrfs::generation`] reflects every write made so far.
    fn sync(&self, path: &Path) -> Result<(), StorageError>;
    /// Writes the read-only subvolume at `subvolume` to `out` as a send
    /// stream: whole, or only what differs from `parent` (a read-only
    /// snapshot the receiving side already has). Returns the bytes written.
    fn send(&self, subvolume: &Path, parent: Option<&Path>, out: &mut dyn std::io::Write) -> Result<u64, StorageError>;
    /// Makes the read-only subvolume a send stream file describes inside
    /// directory `into` (on the pool's filesystem); returns its path. An
    /// increment's parent must have been received into the same directory.
    fn receive(&self, stream: &Path, into: &Path) -> Result<PathBuf, StorageError>;
}
