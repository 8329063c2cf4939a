//! Network namespaces pinned by a bind mount on a file (what `ip netns add`
//! does), and netlink connections opened inside them, all without forking:
//! a short-lived thread unshares or enters the namespace and opens the
//! socket, which stays bound to that namespace after the thread has ended.
//! The connection is then driven on the tokio runtime like any other.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use nix::errno::Errno;
use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use nix::sys::statfs::{NSFS_MAGIC, statfs};
use rtnetlink::{Handle, LinkUnspec};
use tokio::runtime::Handle as Runtime;
use tokio::sync::oneshot;
use tracing::debug;

use crate::netlink::NetlinkError;

/// The calling thread's own network namespace, as a file to bind-mount.
const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// Directories this instance has already made shared mount points.
///
/// The directory holding the namespace files is, like iproute2's
/// `/run/netns`, a bind mount of itself with shared propagation: mount
/// namespaces created later (by runc) receive copies of the namespace bind
/// mounts, and unmounting one here then propagates to those copies, so the
/// namespace is really freed.
#[derive(Debug, Default)]
pub(super) struct SharedDirs(Mutex<HashSet<PathBuf>>);

impl SharedDirs {
    /// Makes `dir` (the directory of `netns`) a shared mount point, once.
    fn ensure(&self, dir: &Path, netns: &Path) -> Result<(), NetlinkError> {
        // Held across the mounts so that two first creations in one
        // directory do not stack two bind mounts.
        let mut done = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if done.contains(dir) {
            return Ok(());
        }
        make_shared_mount_point(dir).map_err(|e| NetlinkError::Netns {
            op: "make a shared mount point of the directory of",
            path: netns.to_path_buf(),
            source: e.into(),
        })?;
        debug!(dir = %dir.display(), "namespace directory is a shared mount point");
        done.insert(dir.to_path_buf());
        Ok(())
    }
}

fn make_shared_mount_point(dir: &Path) -> nix::Result<()> {
    let shared = MsFlags::MS_SHARED | MsFlags::MS_REC;
    match mount(None::<&str>, dir, None::<&str>, shared, None::<&str>) {
        // Not a mount point yet: make it one, bound onto itself.
        Err(Errno::EINVAL) => {
            mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)?;
            mount(None::<&str>, dir, None::<&str>, shared, None::<&str>)
        }
        other => other,
    }
}

/// Creates a new network namespace pinned at `path`, with its loopback up.
pub(super) async fn create(path: &Path, dirs: &SharedDirs) -> Result<(), NetlinkError> {
    let dir = path
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .ok_or_else(|| netns_err("create", path)(io::Error::new(io::ErrorKind::InvalidInput, "no parent directory")))?;
    std::fs::create_dir_all(dir).map_err(netns_err("create the directory of", path))?;
    dirs.ensure(dir, path)?;
    create_mount_point(path)?;

    let target = path.to_path_buf();
    let pinned = in_thread("create", path, move |runtime| {
        unshare(CloneFlags::CLONE_NEWNET).map_err(|e| netns_err("create", &target)(e.into()))?;
        mount(Some(THREAD_NETNS), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
            .map_err(|e| netns_err("bind-mount", &target)(e.into()))?;
        open_connection(&target, runtime).inspect_err(|_| {
            let _ = umount2(&target, MntFlags::MNT_DETACH);
        })
    })
    .await;
    let handle = match pinned {
        Ok(handle) => handle,
        Err(err) => {
            let _ = std::fs::remove_file(path);
            return Err(err);
        }
    };

    let lo_up = handle.link().change(LinkUnspec::new_with_name("lo").up().build()).execute().await;
    if let Err(source) = lo_up {
        let _ = delete(path);
        return Err(NetlinkError::NetnsLink {
            op: "set up",
            ifname: "lo".to_string(),
            netns: path.to_path_buf(),
            source: Box::new(source),
        });
    }
    Ok(())
}

/// Creates the empty file the namespace is mounted on. A file left over
/// without a namespace on it (a crash between creation and mount) is reused.
fn create_mount_point(path: &Path) -> Result<(), NetlinkError> {
    match OpenOptions::new().write(true).create_new(true).mode(0o444).open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            let mounted = statfs(path).is_ok_and(|fs| fs.filesystem_type() == NSFS_MAGIC);
            if mounted {
                let source =
                    io::Error::new(io::ErrorKind::AlreadyExists, "a network namespace is already mounted there");
                return Err(netns_err("create", path)(source));
            }
            debug!("reusing a leftover mount point file");
            Ok(())
        }
        Err(source) => Err(netns_err("create the mount point of", path)(source)),
    }
}

/// Unmounts and removes the namespace file; `Ok(false)` if it was absent.
pub(super) fn delete(path: &Path) -> Result<bool, NetlinkError> {
    match umount2(path, MntFlags::MNT_DETACH) {
        // ENOENT: no file; EINVAL: a file but not a mount point (half-made
        // namespace): still remove it below.
        Ok(()) | Err(Errno::ENOENT | Errno::EINVAL) => {}
        Err(e) => return Err(netns_err("unmount", path)(e.into())),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(source) => Err(netns_err("remove", path)(source)),
    }
}

/// Starts opening a netlink connection inside the namespace at `netns`; the
/// returned future resolves to its handle. The work starts at once, on its
/// own thread, so the caller can do other things meanwhile.
pub(super) fn connect(netns: &Path) -> impl Future<Output = Result<Handle, NetlinkError>> + Send + 'static {
    let target = netns.to_path_buf();
    in_thread("enter", netns, move |runtime| {
        let file = File::open(&target).map_err(netns_err("open", &target))?;
        setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| netns_err("enter", &target)(e.into()))?;
        open_connection(&target, runtime)
    })
}

/// Opens an rtnetlink socket in the calling thread's network namespace and
/// spawns its driver on `runtime`.
fn open_connection(netns: &Path, runtime: &Runtime) -> Result<Handle, NetlinkError> {
    // The socket registers with the runtime's reactor when it is created.
    let _entered = runtime.enter();
    let (connection, handle, _) = rtnetlink::new_connection()
        .map_err(|source| NetlinkError::Socket { netns: Some(netns.to_path_buf()), source })?;
    runtime.spawn(connection);
    Ok(handle)
}

/// Runs `work` on a new thread (which may change its own namespaces freely
/// and then ends) and resolves to its result.
fn in_thread<T, F>(
    op: &'static str,
    path: &Path,
    work: F,
) -> impl Future<Output = Result<T, NetlinkError>> + Send + 'static
where
    T: Send + 'static,
    F: FnOnce(&Runtime) -> Result<T, NetlinkError> + Send + 'static,
{
    let path = path.to_path_buf();
    let (tx, rx) = oneshot::channel();
    let spawned = Runtime::try_current().map_err(io::Error::other).and_then(|runtime| {
        std::thread::Builder::new().name("cubby-netns".to_string()).spawn(move || {
            let _ = tx.send(work(&runtime));
        })
    });
    async move {
        if let Err(source) = spawned {
            return Err(NetlinkError::Netns { op, path, source });
        }
        match rx.await {
            Ok(result) => result,
            Err(_) => Err(NetlinkError::Netns { op, path, source: io::Error::other("the namespace thread panicked") }),
        }
    }
}

fn netns_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> NetlinkError {
    let path = path.to_path_buf();
    move |source| NetlinkError::Netns { op, path, source }
}
