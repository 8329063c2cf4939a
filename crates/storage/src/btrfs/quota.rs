//! btrfs quota groups: per-subvolume disk limits and usage.
//!
//! Cubby turns on *simple quotas* where the kernel has them (6.7+): each
//! extent is charged to the subvolume that wrote it, so a container's
//! qgroup counts exactly its own writes, snapshots cost nothing to account,
//! and deleting a subvolume needs no backref walk. Older kernels get full
//! qgroups. The ioctls are issued directly: Debian 12's btrfs-progs (6.2)
//! cannot enable simple quotas. Usage is read from sysfs
//! (`/sys/fs/btrfs/<fsid>/qgroups/0_<subvolid>/`), rooted at a path.

use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

use crate::StorageError;

/// Which accounting the pool uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuotaMode {
    /// Simple quotas: extents charged to their creator.
    Simple,
    /// Full qgroups.
    Full,
}

/// A subvolume's disk use, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DiskUsage {
    /// Bytes of extents the subvolume refers to.
    pub referenced: u64,
    /// Bytes charged to this subvolume alone.
    pub exclusive: u64,
    /// The limit on exclusive bytes, if any.
    pub limit: Option<u64>,
}

#[repr(C)]
#[derive(Debug, Default)]
struct QuotaCtlArgs {
    cmd: u64,
    status: u64,
}

#[repr(C)]
#[derive(Debug, Default)]
struct QgroupLimit {
    flags: u64,
    max_rfer: u64,
    max_excl: u64,
    rsv_rfer: u64,
    rsv_excl: u64,
}

#[repr(C)]
#[derive(Debug, Default)]
struct QgroupLimitArgs {
    qgroupid: u64,
    lim: QgroupLimit,
}

#[repr(C)]
#[derive(Debug)]
struct FsInfoArgs {
    max_id: u64,
    num_devices: u64,
    fsid: [u8; 16],
    rest: [u8; 992],
}

const QUOTA_CTL_ENABLE: u64 = 1;
const QUOTA_CTL_ENABLE_SIMPLE: u64 = 4;
const LIMIT_MAX_EXCL: u64 = 1 << 1;

#[repr(C)]
#[derive(Debug, Default)]
struct QgroupCreateArgs {
    create: u64,
    qgroupid: u64,
}

nix::ioctl_readwrite!(btrfs_quota_ctl, 0x94, 40, QuotaCtlArgs);
nix::ioctl_write_ptr!(btrfs_qgroup_create, 0x94, 42, QgroupCreateArgs);
// The kernel declares QGROUP_LIMIT as _IOR although it reads the argument.
nix::ioctl_read!(btrfs_qgroup_limit, 0x94, 43, QgroupLimitArgs);
nix::ioctl_read!(btrfs_fs_info, 0x94, 31, FsInfoArgs);

fn open(path: &Path) -> Result<std::fs::File, StorageError> {
    std::fs::File::open(path).map_err(StorageError::io("open", path))
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(nix::Error) -> StorageError {
    let path = path.to_path_buf();
    move |e| StorageError::Io { op, path, source: std::io::Error::from(e) }
}

/// The filesystem's UUID, as sysfs names it.
pub(crate) fn fsid(path: &Path) -> Result<String, StorageError> {
    let file = open(path)?;
    let mut args = FsInfoArgs { max_id: 0, num_devices: 0, fsid: [0; 16], rest: [0; 992] };
    // SAFETY: the descriptor is open for the call's duration and `args` is
    // a properly sized, writable `btrfs_ioctl_fs_info_args`.
    unsafe { btrfs_fs_info(file.as_raw_fd(), &mut args) }.map_err(io_err("read filesystem info of", path))?;
    let h: String = args.fsid.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32]))
}

/// Turns quotas on for the filesystem of `path` (simple if the kernel can).
pub(crate) fn enable(sys_root: &Path, path: &Path) -> Result<QuotaMode, StorageError> {
    let qgroups = sys_root.join("fs/btrfs").join(fsid(path)?).join("qgroups");
    if let Ok(mode) = std::fs::read_to_string(qgroups.join("mode")) {
        return Ok(if mode.trim() == "squota" { QuotaMode::Simple } else { QuotaMode::Full });
    }
    let file = open(path)?;
    for (cmd, mode) in [(QUOTA_CTL_ENABLE_SIMPLE, QuotaMode::Simple), (QUOTA_CTL_ENABLE, QuotaMode::Full)] {
        let mut args = QuotaCtlArgs { cmd, status: 0 };
        // SAFETY: as above; `args` is a `btrfs_ioctl_quota_ctl_args`.
        match unsafe { btrfs_quota_ctl(file.as_raw_fd(), &mut args) } {
            Ok(_) => return Ok(mode),
            Err(nix::Error::EINVAL | nix::Error::EOPNOTSUPP) if cmd == QUOTA_CTL_ENABLE_SIMPLE => {}
            Err(e) => return Err(io_err("enable quotas on", path)(e)),
        }
    }
    Ok(QuotaMode::Full)
}

/// Limits the exclusive bytes of the subvolume at `path` (`None` lifts it).
pub(crate) fn set_limit(path: &Path, limit: Option<u64>) -> Result<(), StorageError> {
    let file = open(path)?;
    let mut args = QgroupLimitArgs {
        qgroupid: 0, // the subvolume the descriptor is in
        lim: QgroupLimit { flags: LIMIT_MAX_EXCL, max_excl: limit.unwrap_or(u64::MAX), ..Default::default() },
    };
    // SAFETY: as above; `args` is a `btrfs_ioctl_qgroup_limit_args`.
    unsafe { btrfs_qgroup_limit(file.as_raw_fd(), &mut args) }.map_err(io_err("set the disk limit of", path))?;
    Ok(())
}

fn read_u64(path: PathBuf) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Usage of the subvolume at `path`, or `None` when quotas are off.
pub(crate) fn usage(sys_root: &Path, path: &Path) -> Result<Option<DiskUsage>, StorageError> {
    let id = libbtrfsutil::subvolume_id(path).map_err(|source| StorageError::Btrfs {
        op: "subvolume id",
        path: path.to_path_buf(),
        source,
    })?;
    let dir = sys_root.join("fs/btrfs").join(fsid(path)?).join("qgroups").join(format!("0_{id}"));
    let (Some(referenced), Some(exclusive)) = (read_u64(dir.join("referenced")), read_u64(dir.join("exclusive")))
    else {
        return Ok(None);
    };
    let limit = read_u64(dir.join("max_exclusive")).filter(|l| *l != 0 && *l != u64::MAX);
    Ok(Some(DiskUsage { referenced, exclusive, limit }))
}

/// Removes the qgroups of deleted subvolumes once nothing is charged to
/// them any more (the kernel keeps them until told). Returns how many
/// stale ones remain (still charged: their extents are not freed yet).
pub(crate) fn remove_stale(sys_root: &Path, pool: &Path) -> Result<usize, StorageError> {
    let dir = sys_root.join("fs/btrfs").join(fsid(pool)?).join("qgroups");
    // A commit wakes the cleaner, which frees deleted subvolumes' extents.
    sync(pool)?;
    let Ok(entries) = std::fs::read_dir(&dir) else { return Ok(0) };
    let file = open(pool)?;
    let mut remaining = 0;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_prefix("0_").and_then(|i| i.parse::<u64>().ok()) else { continue };
        if id == 5 {
            continue; // the top-level subvolume
        }
        // Only qgroups whose subvolume is gone: a live subvolume's qgroup
        // carries its limit.
        if libbtrfsutil::subvolume_path_with_id(pool, id).is_ok() {
            continue;
        }
        let idle =
            read_u64(entry.path().join("referenced")) == Some(0) && read_u64(entry.path().join("exclusive")) == Some(0);
        if !idle {
            remaining += 1;
            continue;
        }
        let args = QgroupCreateArgs { create: 0, qgroupid: id };
        // SAFETY: the descriptor is open for the call and `args` is a
        // `btrfs_ioctl_qgroup_create_args` the kernel only reads.
        if let Err(e) = unsafe { btrfs_qgroup_create(file.as_raw_fd(), &args) } {
            tracing::debug!(qgroup = id, error = %e, "qgroup removal");
            remaining += 1;
        }
    }
    Ok(remaining)
}

/// Commits the filesystem's current transaction, so generations are current.
pub(crate) fn sync(path: &Path) -> Result<(), StorageError> {
    libbtrfsutil::sync(path).map_err(|source| StorageError::Btrfs { op: "sync", path: path.to_path_buf(), source })
}
