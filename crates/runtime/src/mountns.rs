//! Private mount namespaces for the OCI runtime's container creation.
//!
//! A new mount namespace starts as a copy of its parent's, and runc reads
//! the whole mount table several times while it creates a container (twice
//! in its parent process, twice in `runc init`). When every tenant leaves
//! mounts on the host (its root filesystem, the files pinning its network
//! and user namespaces), each start pays for every other tenant: with 300
//! tenants the table has ~940 lines and a start takes ~15 ms longer.
//!
//! So the runtime creates containers from namespaces of their own:
//! - [`BaseNamespace`]: a copy of the daemon's mount namespace taken once,
//!   made private (nothing the host mounts later reaches it), with the
//!   mounts at or under some directories (namespace pins, container roots)
//!   detached. Held by an fd; it has no process.
//! - [`spawn_private`]: a new thread enters a fresh private copy of the base
//!   (or, without a base, of the caller's namespace made a slave), makes a
//!   container's [`PrivateMount`]s there (its overlay root; binds of its
//!   namespace pins, which the kernel allows across mount namespaces), and
//!   spawns the runtime. Those mounts exist only for that runtime process
//!   and the container it creates: the host's table does not grow with the
//!   number of tenants, and a container's mounts go away with it.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};

use crate::RuntimeError;

/// A mount made in a container's private creation namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrivateMount {
    /// A filesystem (`mount(source, target, fstype, flags, data)`), such
    /// as the container's overlay root.
    Filesystem { fstype: String, source: String, data: String, flags: MsFlags, target: PathBuf },
    /// A bind of `source`, a path opened in the daemon's own namespace
    /// (a namespace pin that the base namespace hides), onto `target`.
    Bind { source: PathBuf, target: PathBuf },
}

impl PrivateMount {
    /// Where it is mounted.
    pub fn target(&self) -> &Path {
        match self {
            Self::Filesystem { target, .. } | Self::Bind { target, .. } => target,
        }
    }
}

/// A private copy of the daemon's mount namespace without its tenants'
/// mounts, to copy each container's creation namespace from.
#[derive(Debug)]
pub struct BaseNamespace {
    ns: OwnedFd,
}

fn io_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(nix::Error) -> RuntimeError {
    let path = path.into();
    move |e| RuntimeError::Io { op, path, source: e.into() }
}

fn thread_gone(op: &'static str) -> RuntimeError {
    RuntimeError::Io { op, path: PathBuf::from("/"), source: std::io::Error::other("the namespace thread panicked") }
}

impl BaseNamespace {
    /// Copies the calling process's mount namespace, makes every mount of
    /// the copy private, and detaches the mounts at or below each of
    /// `hide`. Reads the copy's table from `{proc_root}/thread-self`.
    pub fn create(proc_root: &Path, hide: &[PathBuf]) -> Result<Self, RuntimeError> {
        let proc_root = proc_root.to_path_buf();
        let hide = hide.to_vec();
        // A thread of its own: unsharing changes the namespace of the
        // calling thread only, and this one ends right after.
        std::thread::spawn(move || {
            unshare(CloneFlags::CLONE_FS | CloneFlags::CLONE_NEWNS).map_err(io_err("copy the mount namespace", "/"))?;
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_PRIVATE, None::<&str>)
                .map_err(io_err("make private the mounts of the copy at", "/"))?;
            let table = proc_root.join("thread-self/mountinfo");
            let text = std::fs::read_to_string(&table).map_err(RuntimeError::io("read", &table))?;
            let mut hidden: Vec<PathBuf> = cubby_storage::mountinfo::parse(&text)
                .into_iter()
                .map(|m| m.mount_point)
                .filter(|p| hide.iter().any(|h| p.starts_with(h)))
                .collect();
            hidden.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
            for target in &hidden {
                // EINVAL: already gone with a detached parent.
                match umount2(target, MntFlags::MNT_DETACH) {
                    Ok(()) | Err(nix::Error::EINVAL | nix::Error::ENOENT) => {}
                    Err(e) => return Err(io_err("detach from the base mount namespace", target)(e)),
                }
            }
            let own = proc_root.join("thread-self/ns/mnt");
            let ns = File::open(&own).map_err(RuntimeError::io("open", &own))?;
            tracing::debug!(hidden = hidden.len(), "base mount namespace for container creation made");
            Ok(Self { ns: ns.into() })
        })
        .join()
        .unwrap_or_else(|_| Err(thread_gone("copy the mount namespace")))
    }
}

/// Runs `spawn` on a new thread whose mount namespace is a new private
/// copy of `base` (without one, of the caller's namespace, made a slave so
/// nothing mounted in it reaches the host) with `mounts` made in it.
/// Whatever `spawn` starts inherits that namespace; the thread then ends.
pub async fn spawn_private<T, F>(
    proc_root: &Path,
    base: Option<Arc<BaseNamespace>>,
    mounts: Vec<PrivateMount>,
    spawn: F,
) -> Result<T, RuntimeError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let proc_root = proc_root.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(enter_and_spawn(&proc_root, base.as_deref(), &mounts, spawn));
    });
    rx.await.unwrap_or_else(|_| Err(thread_gone("enter a private mount namespace")))
}

fn enter_and_spawn<T>(
    proc_root: &Path,
    base: Option<&BaseNamespace>,
    mounts: &[PrivateMount],
    spawn: impl FnOnce() -> T,
) -> Result<T, RuntimeError> {
    // Bind sources are opened here, in the daemon's namespace, before
    // leaving it: the base namespace does not show them.
    let sources = mounts
        .iter()
        .map(|m| match m {
            PrivateMount::Bind { source, .. } => nix::fcntl::open(
                source,
                nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_CLOEXEC,
                nix::sys::stat::Mode::empty(),
            )
            .map(Some)
            .map_err(io_err("open", source)),
            PrivateMount::Filesystem { .. } => Ok(None),
        })
        .collect::<Result<Vec<Option<OwnedFd>>, _>>()?;
    // Entering a mount namespace needs a filesystem context (root, cwd) of
    // this thread's own.
    unshare(CloneFlags::CLONE_FS).map_err(io_err("unshare the filesystem context at", "/"))?;
    if let Some(base) = base {
        setns(&base.ns, CloneFlags::CLONE_NEWNS).map_err(io_err("enter the base mount namespace at", "/"))?;
    }
    unshare(CloneFlags::CLONE_NEWNS).map_err(io_err("copy the mount namespace", "/"))?;
    if base.is_none() {
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>)
            .map_err(io_err("make slaves the mounts of the copy at", "/"))?;
    }
    for (m, source) in mounts.iter().zip(&sources) {
        match (m, source) {
            (PrivateMount::Filesystem { fstype, source, data, flags, target }, _) => {
                mount(Some(source.as_str()), target, Some(fstype.as_str()), *flags, Some(data.as_str()))
                    .map_err(io_err("mount the container's filesystem on", target))?;
            }
            (PrivateMount::Bind { target, .. }, Some(fd)) => {
                let by_fd = proc_root.join(format!("self/fd/{}", fd.as_raw_fd()));
                mount(Some(&by_fd), target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                    .map_err(io_err("bind-mount", target))?;
            }
            (PrivateMount::Bind { target, .. }, None) => unreachable!("bind {} was opened above", target.display()),
        }
    }
    Ok(spawn())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_root() -> bool {
        nix::unistd::geteuid().is_root()
    }

    fn mounted_here(target: &Path) -> bool {
        let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        cubby_storage::mountinfo::parse(&text).iter().any(|m| m.mount_point == target)
    }

    #[tokio::test]
    async fn a_private_mount_is_seen_by_the_spawned_process_and_never_by_the_host() {
        if !is_root() {
            assert!(std::env::var_os("CI").is_none(), "CI runs tests as root");
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("root");
        std::fs::create_dir(&target).unwrap();
        let tmpfs = |target: &Path| PrivateMount::Filesystem {
            fstype: "tmpfs".into(),
            source: "cubby-test".into(),
            data: "size=1m".into(),
            flags: MsFlags::empty(),
            target: target.to_path_buf(),
        };
        // A process that writes into the private tmpfs and reads it back.
        let t = target.clone();
        let out = spawn_private(Path::new("/proc"), None, vec![tmpfs(&target)], move || {
            std::process::Command::new("sh")
                .arg("-c")
                .arg(format!("echo inside > {0}/f && cat {0}/f", t.display()))
                .output()
        })
        .await
        .unwrap()
        .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "inside\n");
        assert!(!mounted_here(&target), "the host's mount table stays without the private mount");
        assert!(!target.join("f").exists(), "what the process wrote went to its own tmpfs");

        // The base hides what is mounted under a hidden dir (here, like
        // the daemon's pins, a namespace file under a dir bound on itself);
        // a bind brings one pin back, for one spawned process only.
        let pins = dir.path().join("pins");
        std::fs::create_dir(&pins).unwrap();
        let pin = pins.join("net");
        std::fs::write(&pin, "").unwrap();
        mount(Some(&pins), &pins, None::<&str>, MsFlags::MS_BIND, None::<&str>).unwrap();
        mount(Some("/proc/self/ns/net"), &pin, None::<&str>, MsFlags::MS_BIND, None::<&str>).unwrap();
        let fs_type = |p: &Path| {
            let p = p.display().to_string();
            move || std::process::Command::new("stat").args(["-f", "-c", "%T", &p]).output()
        };
        let result = async {
            let base = Arc::new(BaseNamespace::create(Path::new("/proc"), std::slice::from_ref(&pins)).unwrap());
            let plain = spawn_private(Path::new("/proc"), Some(base.clone()), vec![], fs_type(&pin)).await.unwrap();
            let plain = String::from_utf8_lossy(&plain.unwrap().stdout).trim().to_string();
            assert_ne!(plain, "nsfs", "the base namespace does not show the pin");
            let bind = PrivateMount::Bind { source: pin.clone(), target: pin.clone() };
            let bound = spawn_private(Path::new("/proc"), Some(base.clone()), vec![bind], fs_type(&pin)).await.unwrap();
            assert_eq!(String::from_utf8_lossy(&bound.unwrap().stdout).trim(), "nsfs", "the bind shows it again");
            let nowhere = PrivateMount::Bind { source: pin.clone(), target: pins.join("absent") };
            let failed = spawn_private(Path::new("/proc"), Some(base), vec![nowhere], || ()).await;
            assert!(failed.is_err(), "a bind onto a target that the base lacks fails with an error");
            assert!(mounted_here(&pin), "the host keeps its own pin");
        }
        .await;
        umount2(&pins, MntFlags::MNT_DETACH).unwrap();
        result
    }
}
