//! Overlay mounts of container root filesystems.
//!
//! [`Mounts`] is the seam: [`KernelMounts`] calls mount(2)/umount2(2), and
//! [`FakeMounts`] records calls for unit tests.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use nix::mount::{MntFlags, MsFlags, mount, umount2};

use crate::{StorageError, mountinfo};

/// An overlay: read-only `lowers` (topmost first) under a writable
/// `upper` whose `work` dir is on the same filesystem (same subvolume, or
/// the kernel answers EXDEV). Without `upper` the overlay is read-only.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    pub lowers: Vec<PathBuf>,
    /// `(upper, work)`.
    pub upper: Option<(PathBuf, PathBuf)>,
    pub target: PathBuf,
}

impl Overlay {
    /// The mount data string for overlayfs. Features that would write
    /// overlay-private xattrs into the upper (redirects, metacopy, index)
    /// stay off, so an upper can later serve as a plain lower layer.
    pub fn options(&self) -> String {
        let lowers: Vec<String> = self.lowers.iter().map(|p| p.display().to_string()).collect();
        let mut options = format!("lowerdir={}", lowers.join(":"));
        if let Some((upper, work)) = &self.upper {
            options.push_str(&format!(",upperdir={},workdir={}", upper.display(), work.display()));
        }
        options.push_str(",redirect_dir=off,index=off,metacopy=off");
        options
    }
}

/// Mount operations on the host.
pub trait Mounts: Send + Sync + std::fmt::Debug {
    /// Mounts `overlay` at its target (which must exist).
    fn mount_overlay(&self, overlay: &Overlay) -> Result<(), StorageError>;
    /// Unmounts `target`. Succeeds when nothing is mounted there.
    fn unmount(&self, target: &Path) -> Result<(), StorageError>;
    /// Whether something is mounted at `target`.
    fn is_mounted(&self, target: &Path) -> Result<bool, StorageError>;
    /// Mount points at or below `dir`, deepest first.
    fn mounts_under(&self, dir: &Path) -> Result<Vec<PathBuf>, StorageError>;
}

/// The kernel's mount table. Reads `{proc_root}/self/mountinfo`.
#[derive(Debug, Clone)]
pub struct KernelMounts {
    proc_root: PathBuf,
}

impl KernelMounts {
    /// Uses `proc_root` (normally `/proc`) to read the mount table.
    pub fn new(proc_root: impl Into<PathBuf>) -> Self {
        Self { proc_root: proc_root.into() }
    }
}

impl Mounts for KernelMounts {
    fn mount_overlay(&self, overlay: &Overlay) -> Result<(), StorageError> {
        let _span = tracing::debug_span!("mount.overlay", target = %overlay.target.display()).entered();
        let mut flags = MsFlags::MS_NOATIME;
        if overlay.upper.is_none() {
            flags |= MsFlags::MS_RDONLY;
        }
        mount(Some("overlay"), &overlay.target, Some("overlay"), flags, Some(overlay.options().as_str()))
            .map_err(|source| StorageError::Mount { op: "mount overlay on", target: overlay.target.clone(), source })
    }

    fn unmount(&self, target: &Path) -> Result<(), StorageError> {
        let _span = tracing::debug_span!("mount.unmount", target = %target.display()).entered();
        match umount2(target, MntFlags::empty()) {
            Ok(()) => Ok(()),
            Err(nix::Error::EINVAL | nix::Error::ENOENT) => Ok(()),
            // Something still holds it (a process that just exited and whose
            // files are being closed): detach it now, the kernel frees it later.
            Err(nix::Error::EBUSY) => umount2(target, MntFlags::MNT_DETACH).map_err(|source| StorageError::Mount {
                op: "detach",
                target: target.to_path_buf(),
                source,
            }),
            Err(source) => Err(StorageError::Mount { op: "unmount", target: target.to_path_buf(), source }),
        }
    }

    fn is_mounted(&self, target: &Path) -> Result<bool, StorageError> {
        mountinfo::is_mount_point(&self.proc_root, target)
    }

    fn mounts_under(&self, dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
        let mut found: Vec<PathBuf> = mountinfo::read(&self.proc_root)?
            .into_iter()
            .map(|m| m.mount_point)
            .filter(|p| p.starts_with(dir))
            .collect();
        found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        found.dedup();
        Ok(found)
    }
}

/// Records mounts instead of making them.
#[derive(Debug, Default)]
pub struct FakeMounts {
    mounted: Mutex<Vec<Overlay>>,
}

impl FakeMounts {
    /// A fake with nothing mounted.
    pub fn new() -> Self {
        Self::default()
    }

    /// The overlays currently "mounted".
    pub fn mounted(&self) -> Vec<Overlay> {
        self.mounted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

impl Mounts for FakeMounts {
    fn mount_overlay(&self, overlay: &Overlay) -> Result<(), StorageError> {
        let mut m = self.mounted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if m.iter().any(|o| o.target == overlay.target) {
            return Err(StorageError::Mount {
                op: "mount overlay on",
                target: overlay.target.clone(),
                source: nix::Error::EBUSY,
            });
        }
        m.push(overlay.clone());
        Ok(())
    }

    fn unmount(&self, target: &Path) -> Result<(), StorageError> {
        self.mounted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).retain(|o| o.target != target);
        Ok(())
    }

    fn is_mounted(&self, target: &Path) -> Result<bool, StorageError> {
        Ok(self.mounted().iter().any(|o| o.target == target))
    }

    fn mounts_under(&self, dir: &Path) -> Result<Vec<PathBuf>, StorageError> {
        Ok(self.mounted().into_iter().map(|o| o.target).filter(|p| p.starts_with(dir)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlay_options_list_lowers_top_first() {
        let o = Overlay {
            lowers: vec!["/p/layers/l2".into(), "/p/images/minimal".into()],
            upper: Some(("/p/containers/c/upper".into(), "/p/containers/c/work".into())),
            target: "/run/x/rootfs".into(),
        };
        assert!(o.options().starts_with(
            "lowerdir=/p/layers/l2:/p/images/minimal,upperdir=/p/containers/c/upper,workdir=/p/containers/c/work,"
        ));
        let ro = Overlay { upper: None, ..o };
        assert!(!ro.options().contains("upperdir"));
    }

    #[test]
    fn fake_refuses_double_mount() {
        let f = FakeMounts::new();
        let o = Overlay { lowers: vec![], upper: Some(("/u".into(), "/w".into())), target: "/t".into() };
        f.mount_overlay(&o).unwrap();
        assert!(f.mount_overlay(&o).is_err());
        assert!(f.is_mounted(Path::new("/t")).unwrap());
        f.unmount(Path::new("/t")).unwrap();
        assert!(!f.is_mounted(Path::new("/t")).unwrap());
    }
}
