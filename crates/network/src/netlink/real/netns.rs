//! Network namespaces pinned by a bind mount on a file (what `ip netns add`
//! does), and netlink connections opened inside them, all without forking:
//! a short-lived thread unshares or enters the namespace and opens the
//! socket, which stays bound to that namespace after the thread has ended.
//! The connection is then driven on the tokio runtime like any other.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::OwnedFd;
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

use crate::netlink::{NetlinkError, UserNamespace};

/// The calling thread's own network namespace, as a file to bind-mount.
const THREAD_NETNS: &str = "/proc/thread-self/ns/net";

/// Directories this instance has already made shared mount points.
///
/// The directory holding the namespace files is, like iproute2's
/// `/run/netns`, a bind mount of itself with shared propagation, in a peer
/// group of its own: unmounting a namespace file here also unmounts the
/// copies that mount namespaces made meanwhile hold, so the namespace is
/// really freed; and the files do not propagate to the parent's peers (a
/// bind inside a shared `/run`, as systemd makes it, would otherwise join
/// `/run`'s group, and every pin would appear again under `/run` in each
/// namespace copied from the host, such as the runtime's base namespace).
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
    let own = |flags| mount(None::<&str>, dir, None::<&str>, flags, None::<&str>);
    // Private, then shared: out of any peer group, then in a new one.
    match own(MsFlags::MS_PRIVATE) {
        // Not a mount point yet: make it one, bound onto itself.
        Err(Errno::EINVAL) => {
            mount(Some(dir), dir, None::<&str>, MsFlags::MS_BIND | MsFlags::MS_REC, None::<&str>)?;
            own(MsFlags::MS_PRIVATE)?;
        }
        other => other?,
    }
    own(MsFlags::MS_SHARED)
}

/// Creates a new network namespace pinned at `path`, with its loopback up;
/// with `owner`, inside a new user namespace pinned at `owner.path`.
pub(super) async fn create(path: &Path, owner: Option<&UserNamespace>, dirs: &SharedDirs) -> Result<(), NetlinkError> {
    for file in std::iter::once(path).chain(owner.map(|o| o.path.as_path())) {
        let dir = file.parent().filter(|dir| !dir.as_os_str().is_empty()).ok_or_else(|| {
            netns_err("create", file)(io::Error::new(io::ErrorKind::InvalidInput, "no parent directory"))
        })?;
        std::fs::create_dir_all(dir).map_err(netns_err("create the directory of", file))?;
        dirs.ensure(dir, file)?;
        create_mount_point(file)?;
    }

    let target = path.to_path_buf();
    let pinned = match owner {
        None => {
            in_thread("create", path, move |runtime| {
                unshare(CloneFlags::CLONE_NEWNET).map_err(|e| netns_err("create", &target)(e.into()))?;
                mount(Some(THREAD_NETNS), &target, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                    .map_err(|e| netns_err("bind-mount", &target)(e.into()))?;
                open_connection(&target, runtime).inspect_err(|_| {
                    let _ = umount2(&target, MntFlags::MNT_DETACH);
                })
            })
            .await
        }
        Some(owner) => {
            let owner = owner.clone();
            let made = tokio::task::spawn_blocking(move || userns::create_pinned(&owner, &target))
                .await
                .unwrap_or_else(|e| Err(netns_err("create", path)(io::Error::other(e))));
            match made {
                Ok(()) => connect(path).await.inspect_err(|_| {
                    let _ = umount2(path, MntFlags::MNT_DETACH);
                }),
                Err(e) => Err(e),
            }
        }
    };
    let handle = match pinned {
        Ok(handle) => handle,
        Err(err) => {
            let _ = std::fs::remove_file(path);
            if let Some(owner) = owner {
                let _ = delete(&owner.path);
            }
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

mod userns {
    //! A user namespace and a network namespace it owns, made by a
    //! short-lived child process (a multithreaded process cannot unshare
    //! its user namespace): the child is cloned straight into both, the
    //! parent writes its id maps and pins both namespaces on files, then
    //! kills it.
    //!
    //! The child is a clone without exec, so it starts with a copy of every
    //! fd of the daemon, `O_CLOEXEC` or not: its listening sockets among
    //! them. Its first act is to close them all, and it dies with the
    //! thread that made it, so a daemon killed at any instruction leaves no
    //! child holding its addresses.

    use std::io::Write;
    use std::path::Path;

    use nix::mount::{MsFlags, mount};
    use nix::sched::CloneFlags;
    use nix::sys::wait::waitpid;
    use nix::unistd::Pid;

    use super::netns_err;
    use crate::netlink::{NetlinkError, UserNamespace};

    /// The body of the holder child: no fd of the parent kept, death with
    /// the parent's thread, then nothing until it is killed. Only raw
    /// system calls: all a child of a multithreaded parent may make.
    fn hold(parent: libc::pid_t) -> isize {
        // SAFETY: prctl(PR_SET_PDEATHSIG), getppid, close_range, close,
        // _exit and pause are async-signal-safe system calls that touch
        // no memory of the (copied) parent: no lock, no allocator.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            // The parent may have died before the line above took effect.
            if libc::getppid() != parent {
                libc::_exit(0);
            }
            if libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32) != 0 {
                // Kernels before 5.9: close what an fd table of the
                // default limit can hold.
                for fd in 0..65_536 {
                    libc::close(fd);
                }
            }
            loop {
                libc::pause();
            }
        }
    }

    /// A child in a new user and network namespace, killed and reaped on drop.
    pub(super) struct Holder {
        pub(super) pid: Pid,
    }

    impl Holder {
        pub(super) fn spawn() -> nix::Result<Self> {
            let mut stack = vec![0u8; 64 * 1024];
            // SAFETY: getpid has no preconditions.
            let parent = unsafe { libc::getpid() };
            let child_main = Box::new(move || hold(parent));
            let flags = CloneFlags::CLONE_NEWUSER | CloneFlags::CLONE_NEWNET;
            #[allow(
                clippy::disallowed_methods,
                reason = "the holder itself: its child closes every inherited fd first"
            )]
            // SAFETY: the child runs only `hold`, on its own stack, making
            // raw system calls and touching no lock or allocator state that
            // another thread of the parent may hold.
            let pid = unsafe { nix::sched::clone(child_main, &mut stack, flags, Some(libc::SIGCHLD)) }?;
            Ok(Self { pid })
        }
    }

    impl Drop for Holder {
        fn drop(&mut self) {
            let _ = nix::sys::signal::kill(self.pid, nix::sys::signal::Signal::SIGKILL);
            let _ = waitpid(self.pid, None);
        }
    }

    /// Makes the pair and pins the user namespace at `owner.path` and the
    /// network namespace at `netns` (both files exist already).
    pub(super) fn create_pinned(owner: &UserNamespace, netns: &Path) -> Result<(), NetlinkError> {
        let err = |op: &'static str| netns_err(op, &owner.path);
        // (It waits to be killed, not for the end of a pipe: a child cloned
        // at the same time by another thread held the pipe too, and two
        // concurrent creates waited on each other forever.)
        let child = Holder::spawn().map_err(|e| err("create")(e.into()))?;
        let pinned = (|| {
            let proc = Path::new("/proc").join(child.pid.as_raw().to_string());
            let map = format!("0 {} {}\n", owner.host_base, owner.size);
            for file in ["uid_map", "gid_map"] {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(proc.join(file))
                    .and_then(|mut f| f.write_all(map.as_bytes()))
                    .map_err(err("write the id map of"))?;
            }
            mount(Some(&proc.join("ns/user")), &owner.path, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(|e| err("bind-mount")(e.into()))?;
            mount(Some(&proc.join("ns/net")), netns, None::<&str>, MsFlags::MS_BIND, None::<&str>)
                .map_err(|e| netns_err("bind-mount", netns)(e.into()))
        })();
        // The mounts hold both namespaces now; the child has done its part.
        drop(child);
        if pinned.is_err() {
            let _ = nix::mount::umount2(&owner.path, nix::mount::MntFlags::MNT_DETACH);
        }
        pinned
    }

    #[cfg(test)]
    mod tests {
        use std::os::unix::fs::MetadataExt;
        use std::time::{Duration, Instant};

        use super::*;

        fn fds_of(pid: Pid) -> Vec<u64> {
            let dir = format!("/proc/{pid}/fd");
            std::fs::read_dir(&dir)
                .map(|entries| {
                    entries.flatten().filter_map(|e| std::fs::metadata(e.path()).ok()).map(|m| m.ino()).collect()
                })
                .unwrap_or_default()
        }

        fn gone(pid: Pid) -> bool {
            // Reaped, or a zombie: either way it holds nothing.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| s.rsplit_once(')').is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')))
                .unwrap_or(true)
        }

        #[test]
        fn the_holder_keeps_no_fd_of_the_daemon_and_dies_with_its_thread() {
            if !nix::unistd::geteuid().is_root() {
                assert!(std::env::var_os("CI").is_none(), "needs root, and CI forbids skipping");
                eprintln!("SKIPPED: needs root (user namespaces made by root)");
                return;
            }
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let socket = std::fs::metadata(format!("/proc/self/fd/{}", std::os::fd::AsRawFd::as_raw_fd(&listener)))
                .unwrap()
                .ino();
            // Positive control: this process itself holds the socket.
            assert!(fds_of(Pid::this()).contains(&socket));

            let holder = Holder::spawn().unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            while !fds_of(holder.pid).is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert_eq!(fds_of(holder.pid), Vec::<u64>::new(), "the holder keeps fds of its parent");
            drop(holder);

            // Made by a thread that ends without killing it (as when the
            // daemon dies): it goes too.
            let pid = std::thread::spawn(|| {
                let holder = Holder::spawn().unwrap();
                let pid = holder.pid;
                // Once its fds are closed, its death signal is set.
                let deadline = Instant::now() + Duration::from_secs(5);
                while !fds_of(pid).is_empty() && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(5));
                }
                std::mem::forget(holder);
                pid
            })
            .join()
            .unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            while !gone(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            assert!(gone(pid), "the holder outlived the thread that made it");
            let _ = waitpid(pid, None);
            drop(listener);
        }
    }
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

/// Makes a TCP socket inside the namespace at `netns`, on a thread of its
/// own that enters the namespace and then ends (so no thread of the caller
/// ever changes namespace). The socket keeps its namespace for life.
pub(super) fn tcp_socket(netns: &Path) -> impl Future<Output = Result<OwnedFd, NetlinkError>> + Send + 'static {
    let target = netns.to_path_buf();
    in_thread("make a socket in", netns, move |_| {
        let file = File::open(&target).map_err(netns_err("open", &target))?;
        setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| netns_err("enter", &target)(e.into()))?;
        crate::netlink::new_tcp_socket().map_err(netns_err("make a socket in", &target))
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
