//! Links, addresses, routes and network namespaces, through rtnetlink.
//!
//! [`Netlink`] is the seam: [`RtNetlink`] talks to the kernel, and
//! [`FakeNetlink`] records what it was asked to do for unit tests.

mod fake;
mod real;

use std::net::Ipv4Addr;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use async_trait::async_trait;

pub use fake::{FakeNetlink, NetlinkCall};
pub use real::RtNetlink;

/// The daemon's bridge: every container veth is a port of it, and the host
/// side of the container network (the gateway address) lives on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeConfig {
    /// Interface name, at most 15 bytes (for example `cubby-br`).
    pub name: String,
    /// The gateway address assigned to the bridge (first host of the subnet).
    pub gateway: Ipv4Addr,
    /// Prefix length of the container subnet.
    pub prefix_len: u8,
}

/// One container's network attachment: a veth pair whose host side is an
/// isolated port of the bridge and whose peer is `eth0` inside the
/// container's network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    /// Host-side interface name, at most 15 bytes.
    pub host_ifname: String,
    /// The bind-mounted network namespace file the peer is moved into.
    pub netns: PathBuf,
    /// The container's address.
    pub address: Ipv4Addr,
    /// Prefix length of the container subnet.
    pub prefix_len: u8,
    /// Default gateway inside the container (the bridge address).
    pub gateway: Ipv4Addr,
}

/// A user namespace that owns a container's network namespace: uid and
/// gid 0..`size` inside are `host_base`..`host_base + size` on the host.
/// Owning the network namespace lets the container's root do there what
/// root may do in its own network (bind port 80, mount its `/sys`) while
/// being an unprivileged uid on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserNamespace {
    /// Where the user namespace is pinned (a bind-mounted file).
    pub path: PathBuf,
    /// The first host uid and gid of the range.
    pub host_base: u32,
    /// How many ids are mapped.
    pub size: u32,
}

/// Errors from link, address, route and namespace operations. Each variant
/// says which object and which operation; the cause is in `source()`.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    #[error("netlink {op} on interface `{ifname}` failed")]
    Link {
        op: &'static str,
        ifname: String,
        #[source]
        source: rtnetlink::Error,
    },
    #[error("netlink {op} on interface `{ifname}` in network namespace {} failed", netns.display())]
    NetnsLink {
        op: &'static str,
        ifname: String,
        netns: PathBuf,
        /// Boxed to keep `NetlinkError` small.
        #[source]
        source: Box<rtnetlink::Error>,
    },
    #[error("interface `{ifname}` does not exist")]
    LinkNotFound { ifname: String },
    #[error("interface `{ifname}` exists but is not a bridge")]
    NotABridge { ifname: String },
    #[error("could not {op} network namespace {}", path.display())]
    Netns {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not open a netlink socket{}", netns.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Socket {
        netns: Option<PathBuf>,
        #[source]
        source: std::io::Error,
    },
}

/// A new IPv4 TCP socket, not connected, non-blocking and close-on-exec,
/// in the calling thread's network namespace.
pub(crate) fn new_tcp_socket() -> std::io::Result<OwnedFd> {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The netlink and network-namespace operations the daemon needs.
///
/// Every removal is idempotent: removing what is already gone succeeds, so
/// rollback and cleanup paths can call them without checking first.
#[async_trait]
pub trait Netlink: Send + Sync + std::fmt::Debug {
    /// Creates the bridge if it is missing, assigns the gateway address and
    /// brings it up. Calling it again on an existing bridge is a no-op.
    async fn ensure_bridge(&self, bridge: &BridgeConfig) -> Result<(), NetlinkError>;

    /// Deletes the bridge. Succeeds when it does not exist.
    async fn delete_bridge(&self, name: &str) -> Result<(), NetlinkError>;

    /// Creates a new network namespace and bind-mounts it at `path` (like
    /// `ip netns add`). Its loopback is brought up. Fails if `path` is
    /// already a namespace. With `owner`, a new user namespace with that id
    /// mapping is made first and pinned at `owner.path`, and owns the
    /// network namespace.
    async fn create_netns(&self, path: &Path, owner: Option<&UserNamespace>) -> Result<(), NetlinkError>;

    /// Whether a network namespace is mounted at `path` (a reboot empties
    /// `/run`; a crash can leave a file with nothing mounted on it).
    async fn netns_exists(&self, path: &Path) -> Result<bool, NetlinkError>;

    /// Unmounts and removes the namespace file (a network or a user
    /// namespace). Succeeds when it is absent.
    async fn delete_netns(&self, path: &Path) -> Result<(), NetlinkError>;

    /// Creates the veth pair of `attachment`, enslaves the host side to
    /// `bridge` as an isolated port, moves the peer into the namespace as
    /// `eth0`, assigns the address and default route, and brings everything up.
    async fn attach(&self, bridge: &str, attachment: &Attachment) -> Result<(), NetlinkError>;

    /// Deletes the host-side veth (the kernel removes its peer). Succeeds
    /// when it does not exist.
    async fn detach(&self, host_ifname: &str) -> Result<(), NetlinkError>;

    /// Names of the host's interfaces that start with `prefix`.
    async fn links_with_prefix(&self, prefix: &str) -> Result<Vec<String>, NetlinkError>;

    /// Whether the host has an interface called `name` (one lookup, not a dump).
    async fn link_exists(&self, name: &str) -> Result<bool, NetlinkError>;

    /// Interfaces other than `except` that the host routes part of `subnet`
    /// through (a route whose prefix lies inside it): another daemon or
    /// network already uses those addresses.
    async fn routes_inside(&self, subnet: ipnet::Ipv4Net, except: &str) -> Result<Vec<String>, NetlinkError>;

    /// A new IPv4 TCP socket (not connected, non-blocking, close-on-exec)
    /// that belongs to the network namespace at `netns`: a connection
    /// from it starts inside that namespace, wherever the caller runs.
    async fn tcp_socket_in(&self, netns: &Path) -> Result<OwnedFd, NetlinkError>;
}
