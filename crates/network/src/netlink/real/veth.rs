//! Attaching a container: the veth pair whose host end is an isolated port
//! of the bridge and whose peer is `eth0` inside the container's namespace,
//! with its address and default route; rolled back on failure or
//! cancellation.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;

use netlink_packet_route::link::{InfoData, InfoKind, InfoPortKind, InfoVeth, LinkAttribute, LinkInfo};
use netlink_packet_route::neighbour::{NeighbourFlags, NeighbourState};
use rtnetlink::{Handle, LinkBridgePort, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};
use tracing::{debug, warn};

use super::{RtNetlink, blocking, link_by_name, link_err, netns};
use crate::netlink::{Attachment, NetlinkError};

/// Name of the container end of every veth pair, inside its namespace.
const CONTAINER_IFNAME: &str = "eth0";

use crate::ipam::mac_for;

impl RtNetlink {
    /// [`Netlink::attach`](crate::Netlink::attach), inside its span.
    pub(super) async fn attach_inner(&self, bridge: &str, a: &Attachment) -> Result<(), NetlinkError> {
        let host = a.host_ifname.as_str();
        // Open the container's netlink socket on the side while the veth is
        // being made on the host.
        let container = netns::connect(&a.netns);
        let netns_file =
            File::open(&a.netns).map_err(|source| NetlinkError::Netns { op: "open", path: a.netns.clone(), source })?;
        let bridge_index = self.link_index(bridge).await?;

        // One request: the host end already a (down) port of the bridge, and
        // the peer born inside the namespace as `eth0`. Nothing exists if it
        // fails, so there is nothing to roll back yet. (The peer cannot be
        // created up: the kernel opens it before the pair is linked, and
        // veth_open fails with ENOTCONN.)
        // The MAC follows the address, so a slot reused by a new container
        // keeps a valid neighbour entry on the host (no stale ARP window).
        let peer = LinkMessageBuilder::<LinkUnspec>::new()
            .name(CONTAINER_IFNAME)
            .address(mac_for(a.address).to_vec())
            .setns_by_fd(netns_file.as_raw_fd())
            .build();
        let mut veth = LinkMessageBuilder::<LinkUnspec>::new().name(host).controller(bridge_index).build();
        veth.attributes.push(LinkAttribute::LinkInfo(vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer))),
        ]));
        // From the moment the request is sent the veth may exist: if this
        // future is dropped (cancelled) before it is fully configured, the
        // guard deletes it. (Were the name already taken, that link is a
        // leftover under this container's own name.)
        let cancelled = DeleteOnDrop::arm(host);
        let created = self.handle.link().add(veth).execute().await;
        if let Err(e) = created {
            cancelled.disarm();
            return Err(link_err("create veth", host)(e));
        }
        drop(netns_file);
        debug!("created veth");

        let configured = self.configure_attachment(a, container).await;
        cancelled.disarm();
        if let Err(err) = configured {
            match blocking::delete_link("delete veth", host).await {
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
        // the port comes up only once it is isolated and its MAC is pinned:
        // it learns nothing (a tenant sending with another's MAC cannot move
        // that MAC to its port) and gets no unknown-destination floods; its
        // own MAC is a static forwarding entry.
        let port = LinkMessageBuilder::<LinkBridgePort>::default()
            .name(host)
            .set_port_kind(InfoPortKind::Bridge)
            .isolated(true)
            .learning(false)
            .flood(false)
            .up()
            .build();
        let host_side = async {
            let index = self.link_index(host).await?;
            self.handle
                .neighbours()
                .add_bridge(index, &mac_for(a.address))
                .flags(NeighbourFlags::Controller)
                .state(NeighbourState::Noarp)
                .replace()
                .execute()
                .await
                .map_err(link_err("add the static forwarding entry of", host))?;
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

/// Deletes the named veth in the background if dropped while armed, so an
/// `attach` future dropped half-way (cancelled) leaves no veth behind.
struct DeleteOnDrop(Option<String>);

impl DeleteOnDrop {
    fn arm(host: &str) -> Self {
        Self(Some(host.to_string()))
    }

    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for DeleteOnDrop {
    fn drop(&mut self) {
        let Some(host) = self.0.take() else { return };
        warn!(ifname = %host, "attach cancelled: deleting its veth");
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(e) = blocking::delete_link("delete veth", &host).await {
                    warn!(ifname = %host, error = %e, "could not delete the veth of a cancelled attach");
                }
            });
        }
    }
}

/// Inside the namespace: `eth0` up with its address, then the default route
/// through the gateway (which needs the subnet route the address brings).
async fn configure_container(handle: &Handle, a: &Attachment) -> Result<(), NetlinkError> {
    let ns_err = |op| {
        move |source| NetlinkError::NetnsLink {
            op,
            ifname: CONTAINER_IFNAME.to_string(),
            netns: a.netns.clone(),
            source: Box::new(source),
        }
    };
    let index = link_by_name(handle, CONTAINER_IFNAME)
        .await
        .map_err(ns_err("look up"))?
        .map(|link| link.header.index)
        .ok_or_else(|| NetlinkError::LinkNotFound { ifname: CONTAINER_IFNAME.to_string() })?;
    handle.link().change(LinkUnspec::new_with_index(index).up().build()).execute().await.map_err(ns_err("set up"))?;
    handle.address().add(index, IpAddr::V4(a.address), a.prefix_len).execute().await.map_err(ns_err("add address"))?;
    let route = RouteMessageBuilder::<Ipv4Addr>::new().output_interface(index).gateway(a.gateway).build();
    handle.route().add(route).execute().await.map_err(ns_err("add default route"))?;
    debug!("configured container interface");
    Ok(())
}
