//! [`RtNetlink`]: the real [`Netlink`], speaking rtnetlink to the kernel.
//!
//! Host-side objects (the bridge, the host end of each veth) go through one
//! long-lived connection opened in the daemon's own network namespace. Work
//! inside a container's namespace (its `eth0` address and default route, its
//! loopback) goes through a short-lived connection whose socket was opened
//! from a thread that entered that namespace; see [`netns`]. No process is
//! ever spawned.

mod netns;

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use futures::TryStreamExt;
use netlink_packet_route::link::{
    InfoData, InfoKind, InfoPortKind, InfoVeth, LinkAttribute, LinkFlags, LinkInfo, LinkMessage,
};
use rtnetlink::{Handle, LinkBridge, LinkBridgePort, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};
use tracing::{Instrument, debug, debug_span, warn};

use super::{Attachment, BridgeConfig, Netlink, NetlinkError};

/// Name of the container end of every veth pair, inside its namespace.
const CONTAINER_IFNAME: &str = "eth0";

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
        let link = match link_by_name(&self.handle, name).await.map_err(link_err("look up", name))? {
            Some(link) => link,
            None => {
                let created = self.handle.link().add(LinkBridge::new(name).build()).execute().await;
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

        if !link.header.flags.contains(LinkFlags::Up) {
            self.handle
                .link()
                .change(LinkUnspec::new_with_index(index).up().build())
                .execute()
                .await
                .map_err(link_err("set up", name))?;
            debug!("bridge set up");
        }
        Ok(())
    }

    async fn attach_inner(&self, bridge: &str, a: &Attachment) -> Result<(), NetlinkError> {
        let host = a.host_ifname.as_str();
        // Open the container's netlink socket on the side while the veth is
        // being made on the host.
        let container = netns::connect(&a.netns);
        let netns_file = File::open(&a.netns)
            .map_err(|source| NetlinkError::Netns { op: "open", path: a.netns.clone(), source })?;
        let bridge_index = self.link_index(bridge).await?;

        // One request: the host end already a (down) port of the bridge, and
        // the peer born inside the namespace as `eth0`, up. Nothing exists
        // if it fails, so there is nothing to roll back yet.
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(CONTAINER_IFNAME)
            .setns_by_fd(netns_file.as_raw_fd())
            .up()
            .build();
        let mut veth = LinkMessageBuilder::<LinkUnspec>::new().name(host).controller(bridge_index).build();
        veth.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        self.handle.link().add(veth).execute().await.map_err(link_err("create veth", host))?;
        drop(netns_file);
        debug!("created veth");

        if let Err(err) = self.configure_attachment(a, container).await {
            match delete_link(&self.handle, host).await {
                Ok(_) => debug!("rolled back veth"),
                Err(e) => warn!(error = %e, "could not roll back veth"),
            }
            return Err(err);
        }
        Ok(())
    }

    /// Everything after the veth exists: the host end becomes an isolated,
    /// up bridge port while `eth0` gets its address and default route.
    async fn configure_attachment(
        &self,
        a: &Attachment,
        container: impl Future<Output = Result<Handle, NetlinkError>> + Send,
    ) -> Result<(), NetlinkError> {
        let host = a.host_ifname.as_str();
        // Port options can only be set once the link is a port (slave data
        // is interpreted by its current controller), hence a second request;
        // the port comes up only once it is isolated.
        let port = LinkMessageBuilder::<LinkBridgePort>::default()
            .name(host)
            .set_port_kind(InfoPortKind::Bridge)
            .isolated(true)
            .up()
            .build();
        let host_side = async {
            self.handle.link().set_port(port).execute().await.map_err(link_err("set isolated and up", host))
        };
        let container_side = async {
            let handle = container.await?;
            configure_container(&handle, a).await
        };
        futures::try_join!(host_side, container_side)?;
        Ok(())
    }
}

/// Inside the namespace: `eth0`'s address, then the default route through
/// the gateway (which needs the subnet route that the address brings).
async fn configure_container(handle: &Handle, a: &Attachment) -> Result<(), NetlinkError> {
    let ns_err = |op| {
        move |source| NetlinkError::NetnsLink {
            op,
            ifname: CONTAINER_IFNAME.to_string(),
            netns: a.netns.clone(),
            source,
        }
    };
    let index = link_by_name(handle, CONTAINER_IFNAME)
        .await
        .map_err(ns_err("look up"))?
        .map(|link| link.header.index)
        .ok_or_else(|| NetlinkError::LinkNotFound { ifname: CONTAINER_IFNAME.to_string() })?;
    handle
        .address()
        .add(index, IpAddr::V4(a.address), a.prefix_len)
        .execute()
        .await
        .map_err(ns_err("add address"))?;
    let route = RouteMessageBuilder::<Ipv4Addr>::new().output_interface(index).gateway(a.gateway).build();
    handle.route().add(route).execute().await.map_err(ns_err("add default route"))?;
    debug!("configured container interface");
    Ok(())
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
            let deleted = delete_link(&self.handle, name).await.map_err(link_err("delete bridge", name))?;
            debug!(deleted, "bridge removed");
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn create_netns(&self, path: &Path) -> Result<(), NetlinkError> {
        let span = debug_span!("create_netns", netns = %path.display());
        async {
            let started = Instant::now();
            netns::create(path, &self.netns_dirs).await?;
            debug!(elapsed_us = elapsed_us(started), "network namespace created");
            Ok(())
        }
        .instrument(span)
        .await
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
            let deleted =
                delete_link(&self.handle, host_ifname).await.map_err(link_err("delete veth", host_ifname))?;
            debug!(deleted, elapsed_us = elapsed_us(started), "detached");
            Ok(())
        }
        .instrument(span)
        .await
    }

    async fn links_with_prefix(&self, prefix: &str) -> Result<Vec<String>, NetlinkError> {
        let links: Vec<LinkMessage> =
            self.handle.link().get().execute().try_collect().await.map_err(link_err("list links", prefix))?;
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

/// Deletes the link called `name`; `Ok(false)` if there was none.
async fn delete_link(handle: &Handle, name: &str) -> Result<bool, rtnetlink::Error> {
    let request = handle.link().del_with_message(LinkUnspec::new_with_name(name).build());
    match request.execute().await {
        Ok(()) => Ok(true),
        Err(e) if errno(&e) == Some(libc::ENODEV) => Ok(false),
        Err(e) => Err(e),
    }
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
