//! The pool: the btrfs filesystem that holds images, container subvolumes,
//! layers and snapshots.
//!
//! If the data dir is on btrfs, the pool is the directory `pool/` inside
//! it. Otherwise Cubby makes a sparse file `pool.img`, formats it btrfs and
//! loop-mounts it at `pool/`; a later start mounts the same file again.
//!
//! ```text
//! {data_dir}/pool/
//!   layers/{id}          read-only subvolumes: images, frozen templates,
//!                        snapshots, flattened chains
//!   containers/{id}      one subvolume per container: upper/ and work/
//!   tmp/                 half-built subvolumes; emptied at start
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{Btrfs, StorageError, mountinfo};

/// Size of a new loop pool when none is asked for: a quarter of the free
/// space of the data dir's filesystem, between 4 GiB and 64 GiB. The file
/// is sparse, so it costs only what is written.
pub fn default_loop_size(data_dir: &Path) -> u64 {
    const GIB: u64 = 1 << 30;
    let free = nix::sys::statvfs::statvfs(data_dir)
        .map(|s| s.blocks_available().saturating_mul(s.fragment_size()))
        .unwrap_or(16 * GIB);
    (free / 4).clamp(4 * GIB, 64 * GIB)
}

/// How to open the pool.
#[derive(Debug, Clone)]
pub struct PoolOptions {
    /// The daemon's data dir.
    pub data_dir: PathBuf,
    /// Size of the loop file if one must be made; [`default_loop_size`] when `None`.
    pub loop_size: Option<u64>,
    /// Where proc is mounted (normally `/proc`).
    pub proc_root: PathBuf,
}

/// An open pool.
#[derive(Debug, Clone)]
pub struct Pool {
    root: PathBuf,
    loop_file: Option<PathBuf>,
}

fn run(cmd: &mut Command) -> Result<(), StorageError> {
    let shown = format!("{cmd:?}").replace('"', "");
    let out = cmd.output().map_err(|source| StorageError::Spawn { command: shown.clone(), source })?;
    if out.status.success() {
        Ok(())
    } else {
        Err(StorageError::Command {
            command: shown,
            status: out.status.to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }
}

impl Pool {
    /// Opens the pool under `opts.data_dir`, making and mounting a loop
    /// file when the data dir is not on btrfs, and creates the layout.
    pub fn open(btrfs: &dyn Btrfs, opts: &PoolOptions) -> Result<Self, StorageError> {
        let data_dir = &opts.data_dir;
        std::fs::create_dir_all(data_dir).map_err(StorageError::io("create data dir", data_dir))?;
        let root = data_dir.join("pool");
        std::fs::create_dir_all(&root).map_err(StorageError::io("create pool dir", &root))?;

        let mut loop_file = None;
        if !btrfs.is_btrfs(&root)? {
            let img = data_dir.join("pool.img");
            if !img.exists() {
                let size = opts.loop_size.unwrap_or_else(|| default_loop_size(data_dir));
                tracing::info!(path = %img.display(), size, "data dir is not on btrfs: creating a loop pool");
                let file = std::fs::File::create(&img).map_err(StorageError::io("create", &img))?;
                file.set_len(size).map_err(StorageError::io("size", &img))?;
                drop(file);
                if let Err(e) = run(Command::new("mkfs.btrfs").arg("-q").arg("-L").arg("cubby").arg(&img)) {
                    let _ = std::fs::remove_file(&img);
                    return Err(e);
                }
            }
            if !mountinfo::is_mount_point(&opts.proc_root, &root)? {
                tracing::info!(path = %img.display(), mount = %root.display(), "mounting the loop pool");
                // util-linux picks a free loop device and sets autoclear, so
                // unmounting the pool also frees the device.
                run(Command::new("mount").arg("-o").arg("loop,noatime").arg(&img).arg(&root))?;
            }
            if !btrfs.is_btrfs(&root)? {
                return Err(StorageError::NotBtrfs { path: root });
            }
            loop_file = Some(img);
        }

        let pool = Self { root, loop_file };
        for dir in [pool.images_dir(), pool.containers_dir(), pool.layers_dir(), pool.tmp_dir(), pool.backups_dir()] {
            std::fs::create_dir_all(&dir).map_err(StorageError::io("create", &dir))?;
        }
        pool.clear_tmp(btrfs)?;
        Ok(pool)
    }

    /// Removes whatever a crash left half-built in `tmp/`.
    fn clear_tmp(&self, btrfs: &dyn Btrfs) -> Result<(), StorageError> {
        let tmp = self.tmp_dir();
        let entries = std::fs::read_dir(&tmp).map_err(StorageError::io("list", &tmp))?;
        for entry in entries {
            let path = entry.map_err(StorageError::io("list", &tmp))?.path();
            // A view an export had mounted when the daemon died.
            let _ = nix::mount::umount2(&path, nix::mount::MntFlags::MNT_DETACH);
            if btrfs.is_subvolume(&path)? {
                btrfs.delete_subvolume(&path)?;
            } else if path.is_dir() {
                std::fs::remove_dir_all(&path).map_err(StorageError::io("remove", &path))?;
            } else {
                std::fs::remove_file(&path).map_err(StorageError::io("remove", &path))?;
            }
        }
        Ok(())
    }

    /// The pool's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The loop file backing the pool, if there is one.
    pub fn loop_file(&self) -> Option<&Path> {
        self.loop_file.as_deref()
    }

    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }

    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }

    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The read-only snapshots kept as the parents of the next backup's
    /// increments (`<container>@<backup>`).
    pub fn backups_dir(&self) -> PathBuf {
        self.root.join("backups")
    }

    /// The read-only subvolume of image `name`.
    pub fn image(&self, name: &str) -> PathBuf {
        self.images_dir().join(name)
    }

    /// The subvolume that belongs to container `id`.
    pub fn container(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }

    /// A fresh path in `tmp/` for something being built.
    pub fn tmp_path(&self, what: &str) -> PathBuf {
        self.tmp_dir().join(format!("{what}-{}", cubby_model::random_id(8)))
    }
}

/// Unmounts a loop pool mounted at `{data_dir}/pool` (for `cubby purge`).
/// Succeeds when it is not mounted.
pub fn unmount_pool(proc_root: &Path, data_dir: &Path) -> Result<(), StorageError> {
    let root = data_dir.join("pool");
    if mountinfo::is_mount_point(proc_root, &root)? {
        nix::mount::umount2(&root, nix::mount::MntFlags::empty())
            .or_else(|_| nix::mount::umount2(&root, nix::mount::MntFlags::MNT_DETACH))
            .map_err(|source| StorageError::Mount { op: "unmount pool", target: root, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FakeBtrfs;

    #[test]
    fn layout_is_created_and_tmp_is_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let btrfs = FakeBtrfs::new();
        let opts = PoolOptions { data_dir: dir.path().to_path_buf(), loop_size: None, proc_root: "/proc".into() };
        let pool = Pool::open(&btrfs, &opts).unwrap();
        assert!(pool.images_dir().is_dir());
        assert!(pool.loop_file().is_none(), "fake btrfs says the dir is btrfs");
        let leftover = pool.tmp_path("image");
        btrfs.create_subvolume(&leftover).unwrap();
        std::fs::write(pool.tmp_dir().join("stray"), "x").unwrap();
        let pool = Pool::open(&btrfs, &opts).unwrap();
        assert_eq!(std::fs::read_dir(pool.tmp_dir()).unwrap().count(), 0);
        assert!(pool.container("cabc").ends_with("pool/containers/cabc"));
    }

    #[test]
    fn default_size_is_bounded() {
        let size = default_loop_size(Path::new("/"));
        assert!((4 << 30..=64 << 30).contains(&size));
    }
}
