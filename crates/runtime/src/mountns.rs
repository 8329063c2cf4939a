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
//! - [`BaseNamespace`]: a copy of the daemon's mount namespace, its mounts
//!   made slaves (the host's unmounts and new mounts still reach it; its own
//!   never reach the host), with the mounts at or under some directories
//!   (namespace pins, container roots) detached. Held by an fd; it has no
//!   process. [`LazyBase`] makes it at the first creation, when the daemon
//!   has mounted its storage pool.
//! - [`spawn_private`]: a new thread enters a fresh copy of the base (or,
//!   without one, of the caller's namespace, made a slave), makes a
//!   container's [`PrivateMount`]s there (its overlay root; binds of its
//!   namespace pins, which the kernel allows across mount namespaces), and
//!   spawns the runtime. Those mounts exist only for that runtime process
//!   and the container it creates: the host's table does not grow with the
//!   number of tenants, and a container's mounts go away with it.

use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use nix::fcntl::{OFlag, open};
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::stat::Mode;

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

/// A copy of the daemon's mount namespace without its tenants' mounts, to
/// copy each container's creation namespace from.
#[derive(Debug)]
pub struct BaseNamespace {
    ns: OwnedFd,
}

fn ns_err(op: &'static str) -> impl FnOnce(nix::Error) -> RuntimeError {
    move |e| RuntimeError::MountNamespace { op, source: e.into() }
}

fn path_err(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(nix::Error) -> RuntimeError {
    let path = path.into();
    move |e| RuntimeError::Io { op, path, source: e.into() }
}

/// Runs `f` on a new thread (namespace changes apply to the calling
/// thread only, so they are made on one that ends right after).
fn on_own_thread<T: Send + 'static>(
    op: &'static str,
    f: impl FnOnce() -> Result<T, RuntimeError> + Send + 'static,
) -> Result<std::thread::JoinHandle<Result<T, RuntimeError>>, RuntimeError> {
    std::thread::Builder::new()
        .name("cubby-mountns".into())
        .spawn(f)
        .map_err(|source| RuntimeError::MountNamespace { op, source })
}

fn panicked(op: &'static str) -> RuntimeError {
    RuntimeError::MountNamespace { op, source: std::io::Error::other("its thread panicked") }
}

impl BaseNamespace {
    /// Copies the calling process's mount namespace, makes every mount of
    /// the copy a slave, and detaches the mounts at or below each of
    /// `hide`. Reads the copy's table from `{proc_root}/thread-self`.
    pub fn create(proc_root: &Path, hide: &[PathBuf]) -> Result<Self, RuntimeError> {
        let proc_root = proc_root.to_path_buf();
        let hide = hide.to_vec();
        let op = "copy the mount namespace";
        on_own_thread(op, move || {
            unshare(CloneFlags::CLONE_FS | CloneFlags::CLONE_NEWNS).map_err(ns_err(op))?;
            // Slaves, not private: a mount the host takes away (a disk, the
            // pool at purge) must not live on in here.
            mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>)
                .map_err(ns_err("make the copy's mounts slaves"))?;
            let table = proc_root.join("thread-self/mountinfo");
            let under_hidden = || -> Result<Vec<PathBuf>, RuntimeError> {
                let text = std::fs::read_to_string(&table).map_err(RuntimeError::io("read", &table))?;
                let mut found: Vec<PathBuf> = cubby_storage::mountinfo::parse(&text)
                    .into_iter()
                    .map(|m| m.mount_point)
                    .filter(|p| hide.iter().any(|h| p.starts_with(h)))
                    .collect();
                found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
                Ok(found)
            };
            // A path can hold several mounts: under a shared parent (what
            // systemd makes `/run`), a pin propagates to the parent too, and
            // shows once the dir's own mount is gone. Passes until none is left.
            let mut detached = 0;
            for _ in 0..8 {
                let hidden = under_hidden()?;
                if hidden.is_empty() {
                    break;
                }
                for target in &hidden {
                    // EINVAL: not the top mount at that path any more.
                    match umount2(target, MntFlags::MNT_DETACH) {
                        Ok(()) => detached += 1,
                        Err(nix::Error::EINVAL | nix::Error::ENOENT) => {}
                        Err(e) => return Err(path_err("detach from the base mount namespace", target)(e)),
                    }
                }
            }
            let own = proc_root.join("thread-self/ns/mnt");
            let ns = File::open(&own).map_err(RuntimeError::io("open", &own))?;
            tracing::debug!(detached, "base mount namespace for container creation made");
            Ok(Self { ns: ns.into() })
        })?
        .join()
        .unwrap_or_else(|_| Err(panicked(op)))
    }
}

/// A [`BaseNamespace`] made at its first use; a failure is logged and
/// tried again at the next use, and creations meanwhile copy the caller's
/// namespace.
#[derive(Debug)]
pub struct LazyBase {
    proc_root: PathBuf,
    hide: Vec<PathBuf>,
    made: Mutex<Option<Arc<BaseNamespace>>>,
}

impl LazyBase {
    /// A base that will hide the mounts under `hide`.
    pub fn new(proc_root: impl Into<PathBuf>, hide: Vec<PathBuf>) -> Self {
        Self { proc_root: proc_root.into(), hide, made: Mutex::new(None) }
    }

    /// The base, made now if it is not yet. Blocks.
    fn get(&self) -> Option<Arc<BaseNamespace>> {
        let mut made = self.made.lock().unwrap_or_else(PoisonError::into_inner);
        if made.is_none() {
            match BaseNamespace::create(&self.proc_root, &self.hide) {
                Ok(base) => *made = Some(Arc::new(base)),
                Err(e) => tracing::warn!(
                    error = %e,
                    cause = ?std::error::Error::source(&e).map(ToString::to_string),
                    "no base mount namespace: this container creation copies the whole host mount table"
                ),
            }
        }
        made.clone()
    }
}

/// Runs `spawn` on a new thread whose mount namespace is a new copy of
/// `base` (without one, of the caller's namespace, made a slave so nothing
/// mounted in it reaches the host) with `mounts` made in it, and the
/// caller's working directory. Whatever `spawn` starts inherits that
/// namespace; the thread then ends. Nothing is mounted or spawned once the
/// returned future has been dropped.
pub async fn spawn_private<T, F>(
    proc_root: &Path,
    base: Option<Arc<LazyBase>>,
    mounts: Vec<PrivateMount>,
    spawn: F,
) -> Result<T, RuntimeError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let proc_root = proc_root.to_path_buf();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let op = "enter a private mount namespace";
    on_own_thread(op, move || {
        let base = base.and_then(|b| b.get());
        let wanted = || !tx.is_closed();
        let result = enter_and_spawn(&proc_root, base.as_deref(), &mounts, wanted, spawn);
        let _ = tx.send(result);
        Ok(())
    })?;
    rx.await.unwrap_or_else(|_| Err(panicked(op)))?.ok_or(RuntimeError::MountNamespace {
        op,
        source: std::io::Error::new(std::io::ErrorKind::Interrupted, "the caller gave up"),
    })
}

/// `None` when `wanted` turned false before the spawn.
fn enter_and_spawn<T>(
    proc_root: &Path,
    base: Option<&BaseNamespace>,
    mounts: &[PrivateMount],
    wanted: impl Fn() -> bool,
    spawn: impl FnOnce() -> T,
) -> Result<Option<T>, RuntimeError> {
    // Opened here, in the daemon's namespace, before leaving it: the bind
    // sources (which the base does not show) and the working directory.
    let path_fd = |p: &Path| open(p, OFlag::O_PATH | OFlag::O_CLOEXEC, Mode::empty()).map_err(path_err("open", p));
    let sources = mounts
        .iter()
        .map(|m| match m {
            PrivateMount::Bind { source, .. } => path_fd(source).map(Some),
            PrivateMount::Filesystem { .. } => Ok(None),
        })
        .collect::<Result<Vec<Option<OwnedFd>>, _>>()?;
    let cwd = path_fd(Path::new("."))?;
    // Entering a mount namespace needs a filesystem context (root, cwd) of
    // this thread's own.
    unshare(CloneFlags::CLONE_FS).map_err(ns_err("unshare the filesystem context"))?;
    if let Some(base) = base {
        setns(&base.ns, CloneFlags::CLONE_NEWNS).map_err(ns_err("enter the base mount namespace"))?;
    }
    unshare(CloneFlags::CLONE_NEWNS).map_err(ns_err("copy the mount namespace"))?;
    if base.is_none() {
        mount(None::<&str>, "/", None::<&str>, MsFlags::MS_REC | MsFlags::MS_SLAVE, None::<&str>)
            .map_err(ns_err("make the copy's mounts slaves"))?;
    }
    // Entering a namespace moved the working directory to its root.
    nix::unistd::fchdir(&cwd).map_err(ns_err("return to the working directory"))?;
    if !wanted() {
        return Ok(None);
    }
    for (m, source) in mounts.iter().zip(&sources) {
        match (m, source) {
            (PrivateMount::Filesystem { fstype, source, data, flags, target }, _) => {
                mount(Some(source.as_str()), target, Some(fstype.as_str()), *flags, Some(data.as_str()))
                    .map_err(path_err("mount the container's filesystem on", target))?;
            }
            (PrivateMount::Bind { target, .. }, Some(fd)) => {
                let by_fd = proc_root.join(format!("self/fd/{}", fd.as_raw_fd()));
                mount(Some(&by_fd), target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                    .map_err(path_err("bind-mount", target))?;
            }
            (PrivateMount::Bind { target, .. }, None) => unreachable!("bind {} was opened above", target.display()),
        }
    }
    Ok(wanted().then(spawn))
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

    /// Detaches a test mount of the host, even when an assertion failed.
    struct Mounted(PathBuf);

    impl Mounted {
        fn new(source: &Path, target: &Path, fstype: Option<&str>, flags: MsFlags) -> Self {
            mount(Some(source), target, fstype, flags, None::<&str>).unwrap();
            Self(target.to_path_buf())
        }
    }

    impl Drop for Mounted {
        fn drop(&mut self) {
            let _ = umount2(&self.0, MntFlags::MNT_DETACH);
        }
    }

    fn tmpfs(target: &Path) -> PrivateMount {
        PrivateMount::Filesystem {
            fstype: "tmpfs".into(),
            source: "cubby-test".into(),
            data: "size=1m".into(),
            flags: MsFlags::empty(),
            target: target.to_path_buf(),
        }
    }

    /// Runs `script` with `sh` from a private namespace; its stdout.
    async fn sh(
        base: Option<Arc<LazyBase>>,
        mounts: Vec<PrivateMount>,
        script: String,
    ) -> Result<String, RuntimeError> {
        let out = spawn_private(Path::new("/proc"), base, mounts, move || {
            std::process::Command::new("sh").arg("-c").arg(script).output()
        })
        .await?
        .unwrap();
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    }

    #[tokio::test]
    async fn a_private_mount_is_seen_by_the_spawned_process_and_never_by_the_host() {
        if !is_root() {
            assert!(std::env::var_os("CI").is_none(), "CI runs tests as root");
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        // Shared, as systemd makes every mount: the host's mounts and
        // unmounts under it propagate to slaves.
        let _shared = Mounted::new(dir.path(), dir.path(), None, MsFlags::MS_BIND);
        mount(None::<&str>, dir.path(), None::<&str>, MsFlags::MS_SHARED, None::<&str>).unwrap();
        let target = dir.path().join("root");
        std::fs::create_dir(&target).unwrap();
        let script = format!("echo inside > {0}/f && cat {0}/f", target.display());
        assert_eq!(sh(None, vec![tmpfs(&target)], script).await.unwrap(), "inside");
        assert!(!mounted_here(&target), "the host's mount table stays without the private mount");
        assert!(!target.join("f").exists(), "what the process wrote went to its own tmpfs");

        // The base hides what is mounted under a hidden dir (here, like
        // the daemon's pins, a namespace file under a dir bound on itself);
        // a bind brings one pin back, for one spawned process only.
        let pins = dir.path().join("pins");
        std::fs::create_dir(&pins).unwrap();
        let pin = pins.join("net");
        std::fs::write(&pin, "").unwrap();
        let _pins = Mounted::new(&pins, &pins, None, MsFlags::MS_BIND);
        let _pin = Mounted::new(Path::new("/proc/self/ns/net"), &pin, None, MsFlags::MS_BIND);
        // A disk the host has when the base is made, and takes away later.
        let disk = dir.path().join("disk");
        std::fs::create_dir(&disk).unwrap();
        let disk_mount = Mounted::new(Path::new("cubby-test"), &disk, Some("tmpfs"), MsFlags::empty());
        std::fs::write(disk.join("file"), "on the disk").unwrap();

        let base = Some(Arc::new(LazyBase::new("/proc", vec![pins.clone()])));
        let fs_type = format!("stat -f -c %T {}", pin.display());
        assert_ne!(sh(base.clone(), vec![], fs_type.clone()).await.unwrap(), "nsfs", "the base hides the pin");
        let bind = PrivateMount::Bind { source: pin.clone(), target: pin.clone() };
        assert_eq!(sh(base.clone(), vec![bind], fs_type).await.unwrap(), "nsfs", "the bind shows it again");
        let nowhere = PrivateMount::Bind { source: pin.clone(), target: pins.join("absent") };
        let failed = sh(base.clone(), vec![nowhere], "true".into()).await;
        assert!(failed.is_err(), "a bind onto a target that the base lacks fails with an error");
        assert!(mounted_here(&pin), "the host keeps its own pin");

        let read_disk = format!("cat {}/file 2>/dev/null || echo gone", disk.display());
        assert_eq!(sh(base.clone(), vec![], read_disk.clone()).await.unwrap(), "on the disk");
        drop(disk_mount);
        assert_eq!(sh(base.clone(), vec![], read_disk).await.unwrap(), "gone", "the host's unmount reached the base");

        let cwd = std::env::current_dir().unwrap();
        assert_eq!(sh(base, vec![], "pwd".into()).await.unwrap(), cwd.display().to_string(), "the caller's cwd");
    }
}
