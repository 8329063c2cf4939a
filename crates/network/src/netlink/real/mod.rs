//! [`RtNetlink`]: the real [`Netlink`], speaking rtnetlink to the kernel.
//!
//! Host-side objects (the bridge, the host end of each veth) are created and
//! queried through one long-lived connection opened in the daemon's own
//! network namespace, and deleted from a blocking thread ([`blocking`]: the
//! kernel makes a deleter wait tens of milliseconds). Work inside a
//! container's namespace (its `eth0` address and default route, its loopback)
//! goes through a short-lived connection whose socket was opened from a thread
//! that entered that namespace ([`netns`]). [`veth`] puts an attachment
//! together. No process is ever spawned.

mod blocking;
mod netns;
mod veth;

use std::net::IpAddr;
use std::os::fd::OwnedFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::TryStreamExt;
use netlink_packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::{Handle, LinkBridge, LinkUnspec};
use tracing::{Instrument, debug, debug_span};

use super::{Attachment, BridgeConfig, Netlink, NetlinkError, UserNamespace};

/// The kernel-backed [`Netlink`].
///
/// Cloning is cheap (a channel sender and an `Arc`); every clone shares the
/// same host connection, whose driver task runs on the tokio runtime that was
/// current in [`RtNetlink::new`].
#[derive(Debug, Clone)]
pub struct RtNetlink {
    handle: Handle,
    netns_dirs: Arc<netns::SharedDirs>,
}

impl RtNetlink {
    /// Opens the host netlink connection and spawns its driver on the
    /// current tokio runtime. Must be called from within a runtime.
    pub fn new() -> Result<Self, NetlinkError> {
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| NetlinkError::Socket { netns: None, source: std::io::Error::other(e) })?;
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|source| NetlinkError::Socket { netns: None, source })?;
        runtime.spawn(connection);
        Ok(Self { handle, netns_dirs: Arc::default() })
    }

    /// Index of the host link `name`, or [`NetlinkError::LinkNotFound`].
    async fn link_index(&self, name: &str) -> Result<u32, NetlinkError> {
        match link_by_name(&self.handle, name).await.map_err(link_err("look up", name))? {
            Some(link) => Ok(link.header.index),
            None => Err(NetlinkError::LinkNotFound { ifname: name.to_string() }),
        }
    }

    async fn ensure_bridge_inner(&self, bridge: &BridgeConfig) -> Result<(), NetlinkError> {
        let name = bridge.name.as_str();
        let mac = bridge_mac(name);
        let link = match link_by_name(&self.handle, name).await.map_err(link_err("look up", name))? {
            Some(link) => link,
            None => {
                let created =
                    self.handle.link().add(LinkBridge::new(name).address(mac.to_vec()).build()).execute().await;
                match created {
                    Ok(()) => debug!("created bridge"),
                    // Raced with another creator: fine, it is checked below.
                    Err(e) if errno(&e) == Some(libc::EEXIST) => {}
                    Err(e) => return Err(link_err("create bridge", name)(e)),
                }
                link_by_name(&self.handle, name)
                    .await
                    .map_err(link_err("look up", name))?
                    .ok_or_else(|| NetlinkError::LinkNotFound { ifname: name.to_string() })?
            }
        };
        if !is_bridge(&link) {
            return Err(NetlinkError::NotABridge { ifname: name.to_string() });
        }
        let index = link.header.index;

        let gateway = IpAddr::V4(bridge.gateway);
        let present = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .set_address_filter(gateway)
            .set_prefix_length_filter(bridge.prefix_len)
            .execute()
            .try_next()
            .await
            .map_err(link_err("list addresses", name))?
            .is_some();
        if !present {
            let added = self.handle.address().add(index, gateway, bridge.prefix_len).execute().await;
            match added {
                Ok(()) => debug!("added gateway address"),
                Err(e) if errno(&e) == Some(libc::EEXIST) => {}
                Err(e) => return Err(link_err("add gateway address", name)(e)),
            }
        }

        let has_mac = link.attributes.contains(&LinkAttribute::Address(mac.to_vec()));
        if !has_mac || !link.header.flags.contains(LinkFlags::Up) {
            let change = LinkUnspec::new_with_index(index).address(mac.to_vec()).up();
            self.handle.link().change(change.build()).execute().await.map_err(link_err("set address and up", name))?;
            debug!("bridge address set and up");
        }
        Ok(())
    }
}

#[async_trait]
impl Netlink for RtNetlink {
    async fn ensure_bridge(&self, bridge: &BridgeConfig) -> Result<(), NetlinkError> {
        let span = debug_span!(
            "ensure_bridge",
            bridge = %bridge.name,
            gateway = %bridge.gateway,
            prefix_len = bridge.prefix_len,
        );
        self.ensure_bridge_inner(bridge).instrument(span).await
    }

    async fn delete_bridge(&self, name: &str) -> Result<(), NetlinkError> {
        let span = debug_span!("delete_bridge", bridge = %name);
        async {
            let deleted = blocking::delete_link("delete bridge", name).await?;
            debug!(deleted, "bridge removed");
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn create_netns(&self, path: &Path, owner: Option<&UserNamespace>) -> Result<(), NetlinkError> {
        let span = debug_span!("create_netns", netns = %path.display());
        async {
            let started = Instant::now();
            netns::create(path, owner, &self.netns_dirs).await?;
            debug!(elapsed_us = elapsed_us(started), "network namespace created");
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn netns_exists(&self, path: &Path) -> Result<bool, NetlinkError> {
        Ok(nix::sys::statfs::statfs(path).is_ok_and(|fs| fs.filesystem_type() == nix::sys::statfs::NSFS_MAGIC))
    }

    async fn delete_netns(&self, path: &Path) -> Result<(), NetlinkError> {
        debug_span!("delete_netns", netns = %path.display()).in_scope(|| {
            let existed = netns::delete(path)?;
            debug!(existed, "network namespace removed");
            Ok(())
        })
    }

    async fn attach(&self, bridge: &str, attachment: &Attachment) -> Result<(), NetlinkError> {
        let span = debug_span!(
            "attach",
            bridge = %bridge,
            ifname = %attachment.host_ifname,
            netns = %attachment.netns.display(),
            address = %attachment.address,
        );
        async {
            let started = Instant::now();
            self.attach_inner(bridge, attachment).await?;
            debug!(elapsed_us = elapsed_us(started), "attached");
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn detach(&self, host_ifname: &str) -> Result<(), NetlinkError> {
        let span = debug_span!("detach", ifname = %host_ifname);
        async {
            let started = Instant::now();
            let deleted = blocking::delete_link("delete veth", host_ifname).await?;
            debug!(deleted, elapsed_us = elapsed_us(started), "detached");
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn link_exists(&self, name: &str) -> Result<bool, NetlinkError> {
        Ok(link_by_name(&self.handle, name).await.map_err(link_err("look up", name))?.is_some())
    }

    async fn tcp_socket_in(&self, netns: &Path) -> Result<OwnedFd, NetlinkError> {
        netns::tcp_socket(netns).await
    }

    async fn routes_inside(&self, subnet: ipnet::Ipv4Net, except: &str) -> Result<Vec<String>, NetlinkError> {
        use netlink_packet_route::route::{RouteAddress, RouteAttribute};
        let query = rtnetlink::RouteMessageBuilder::<std::net::Ipv4Addr>::new().build();
        let routes: Vec<_> = self
            .handle
            .route()
            .get(query)
            .execute()
            .try_collect()
            .await
            .map_err(link_err("list routes to", &subnet.to_string()))?;
        let mut indexes = Vec::new();
        for route in routes {
            let len = route.header.destination_prefix_length;
            let dest = route.attributes.iter().find_map(|a| match a {
                RouteAttribute::Destination(RouteAddress::Inet(ip)) => Some(*ip),
                _ => None,
            });
            let oif = route.attributes.iter().find_map(|a| match a {
                RouteAttribute::Oif(i) => Some(*i),
                _ => None,
            });
            let inside = dest.is_some_and(|d| len >= subnet.prefix_len() && subnet.contains(&d));
            if let (true, Some(i)) = (inside, oif) {
                indexes.push(i);
            }
        }
        let mut names = Vec::new();
        for index in indexes {
            let link = self.handle.link().get().match_index(index).execute().try_next().await;
            let name = link.ok().flatten().and_then(|l| {
                l.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n),
                    _ => None,
                })
            });
            if let Some(name) = name.filter(|n| n != except && !names.contains(n)) {
                names.push(name);
            }
        }
        Ok(names)
    }

    async fn links_with_prefix(&self, prefix: &str) -> Result<Vec<String>, NetlinkError> {
        // A dump that links change under is interrupted (EBUSY): try again.
        let mut attempt = 0;
        let links: Vec<LinkMessage> = loop {
            match self.handle.link().get().execute().try_collect().await {
                Err(e) if errno(&e) == Some(libc::EBUSY) && attempt < 10 => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                }
                other => break other.map_err(link_err("list links", &format!("{prefix}*")))?,
            }
        };
        Ok(links
            .into_iter()
            .filter_map(|link| {
                link.attributes.into_iter().find_map(|attr| match attr {
                    LinkAttribute::IfName(name) if name.starts_with(prefix) => Some(name),
                    _ => None,
                })
            })
            .collect())
    }
}

/// The link called `name`, or `None` if there is none.
async fn link_by_name(handle: &Handle, name: &str) -> Result<Option<LinkMessage>, rtnetlink::Error> {
    match handle.link().get().match_name(name).execute().try_next().await {
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(None),
        other => other,
    }
}

/// A fixed, locally administered unicast MAC address for the bridge `name`
/// (FNV-1a of the name). A bridge whose address was never set takes the
/// lowest of its ports' addresses, so the gateway's MAC would change whenever
/// a container comes or goes, leaving stale ARP entries in the others.
fn bridge_mac(name: &str) -> [u8; 6] {
    let hash = name
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3));
    let [a, b, c, d, e, ..] = hash.to_be_bytes();
    [0x02, a, b, c, d, e]
}

fn is_bridge(link: &LinkMessage) -> bool {
    link.attributes.iter().any(|attr| match attr {
        LinkAttribute::LinkInfo(infos) => infos.iter().any(|info| matches!(info, LinkInfo::Kind(InfoKind::Bridge))),
        _ => false,
    })
}

/// The positive errno of a kernel NACK.
fn errno(err: &rtnetlink::Error) -> Option<i32> {
    match err {
        rtnetlink::Error::NetlinkError(msg) => msg.code.map(|code| -code.get()),
        _ => None,
    }
}

fn link_err(op: &'static str, ifname: &str) -> impl FnOnce(rtnetlink::Error) -> NetlinkError {
    let ifname = ifname.to_string();
    move |source| NetlinkError::Link { op, ifname, source }
}

fn elapsed_us(started: Instant) -> u64 {
    u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bridge_mac_is_stable_local_and_unicast() {
        let mac = bridge_mac("cubby-br");
        assert_eq!(mac, bridge_mac("cubby-br"));
        assert_ne!(mac, bridge_mac("other-br"));
        assert_eq!(mac[0] & 0b11, 0b10, "locally administered unicast: {mac:02x?}");
    }
}
