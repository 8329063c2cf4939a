//! How the proxy reaches a container's app.
//!
//! The plain path is a connection from the host to the container's address:
//! over the bridge and the container's veth, through the host firewall,
//! whose ingress rules admit the proxy (the gateway address) to the app's
//! port by default. When a container's ingress rules admit the gateway to
//! the port asked for, the proxy instead opens its connection from a socket
//! made inside the container's own network namespace, to the same address
//! and port: the kernel delivers it locally, without the veth, the bridge,
//! connection tracking and the rule walk, and the app answers on the same
//! listening socket. The app sees its own address as the peer; the client's
//! is in `X-Forwarded-For` either way. A port the rules do not admit takes
//! the plain path, so the firewall stays the one that decides.

use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;

use crate::containers::ContainerService;

impl ContainerService {
    /// A socket (not yet connected) for the proxy's next connection to
    /// `upstream`, made inside the namespace of the running container at
    /// that address, when its ingress rules admit the proxy to that port.
    /// `None` means: connect from the host.
    pub async fn proxy_socket(&self, upstream: SocketAddr) -> Option<OwnedFd> {
        let IpAddr::V4(ip) = upstream.ip() else { return None };
        let id = self.access.routes.running_at(ip)?;
        let rec = self.store.container(&id).ok().flatten()?;
        self.network.socket_in(&rec, upstream).await
    }
}
