//! Storage for Cubby containers, on btrfs.
//!
//! - [`btrfs`]: subvolumes and snapshots (kernel concept: btrfs subvolume
//!   ioctls, through libbtrfsutil), behind the [`Btrfs`] trait.
//! - [`pool`]: the btrfs filesystem that holds everything; a loop file is
//!   made and mounted when the data dir is not on btrfs.
//! - [`mounts`]: overlay mounts of container root filesystems, behind the
//!   [`Mounts`] trait.
//! - [`image`]: building the built-in `minimal` image and importing rootfs
//!   tarballs into read-only subvolumes.
//!
//! Layout: an image is a read-only subvolume; a container's `/` is an
//! overlay whose lowers are read-only subvolumes and whose `upper/` and
//! `work/` share one subvolume that belongs to the container alone.

pub mod archive;
pub mod btrfs;
mod error;
pub mod flatten;
pub mod idmap;
pub mod image;
pub mod mountinfo;
pub mod mounts;
pub mod pool;

pub use btrfs::{Btrfs, BtrfsCall, DiskUsage, FakeBtrfs, LibBtrfs, QuotaMode};
pub use error::StorageError;
pub use mounts::{FakeMounts, KernelMounts, Mounts, Overlay};
pub use pool::{Pool, PoolOptions};
