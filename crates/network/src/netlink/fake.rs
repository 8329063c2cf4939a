//! [`FakeNetlink`]: an in-memory [`Netlink`] for unit tests. It records every
//! call and keeps just enough state (links, namespaces, attachments) to
//! succeed and fail where the kernel-backed one would.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::num::NonZeroI32;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use rtnetlink::packet_core::ErrorMessage;

use super::{Attachment, BridgeConfig, Netlink, NetlinkError, UserNamespace};

/// One call made to a [`FakeNetlink`], in the order made. Queries
/// (`links_with_prefix`) are not recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetlinkCall {
    EnsureBridge(BridgeConfig),
    DeleteBridge(String),
    CreateNetns(PathBuf),
    DeleteNetns(PathBuf),
    Attach { bridge: String, attachment: Attachment },
    Detach(String),
}

/// An in-memory [`Netlink`].
///
/// Like the kernel: deletes of absent objects succeed, `create_netns` fails
/// on a path that is already a namespace, and `attach` fails on an existing
/// host interface name, a missing bridge or namespace, or a namespace that
/// already has its `eth0`. Failed calls are recorded too.
#[derive(Debug, Default)]
pub struct FakeNetlink {
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    calls: Vec<NetlinkCall>,
    bridges: BTreeMap<String, BridgeConfig>,
    /// Host-side veths, by name.
    veths: BTreeMap<String, Attachment>,
    netns: BTreeSet<PathBuf>,
    /// Routes of other interfaces (another network on this host).
    foreign_routes: Vec<(ipnet::Ipv4Net, String)>,
}

impl FakeState {
    fn link_exists(&self, name: &str) -> bool {
        self.bridges.contains_key(name) || self.veths.contains_key(name)
    }
}

impl FakeNetlink {
    /// A fake with no links and no namespaces.
    pub fn new() -> Self {
        Self::default()
    }

    /// Pretends `ifname` routes `net` (another daemon or network).
    pub fn add_foreign_route(&self, net: ipnet::Ipv4Net, ifname: &str) {
        self.lock().foreign_routes.push((net, ifname.to_string()));
    }

    /// Every call made so far, oldest first.
    pub fn calls(&self) -> Vec<NetlinkCall> {
        self.lock().calls.clone()
    }

    /// Names of the host links that exist (bridges and veth host ends).
    pub fn links(&self) -> Vec<String> {
        let state = self.lock();
        let mut names: Vec<String> = state.bridges.keys().chain(state.veths.keys()).cloned().collect();
        names.sort();
        names
    }

    /// The namespaces that exist.
    pub fn namespaces(&self) -> Vec<PathBuf> {
        self.lock().netns.iter().cloned().collect()
    }

    /// The live attachment whose host end is `host_ifname`.
    pub fn attachment(&self, host_ifname: &str) -> Option<Attachment> {
        self.lock().veths.get(host_ifname).cloned()
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The error the kernel-backed implementation returns for a NACK `errno`.
fn nack(op: &'static str, ifname: &str, errno: i32) -> NetlinkError {
    let mut msg = ErrorMessage::default();
    msg.code = NonZeroI32::new(-errno);
    NetlinkError::Link { op, ifname: ifname.to_string(), source: rtnetlink::Error::NetlinkError(msg) }
}

#[async_trait]
impl Netlink for FakeNetlink {
    async fn ensure_bridge(&self, bridge: &BridgeConfig) -> Result<(), NetlinkError> {
        let mut state = self.lock();
        state.calls.push(NetlinkCall::EnsureBridge(bridge.clone()));
        if state.veths.contains_key(&bridge.name) {
            return Err(NetlinkError::NotABridge { ifname: bridge.name.clone() });
        }
        state.bridges.insert(bridge.name.clone(), bridge.clone());
        Ok(())
    }

    async fn delete_bridge(&self, name: &str) -> Result<(), NetlinkError> {
        let mut state = self.lock();
        state.calls.push(NetlinkCall::DeleteBridge(name.to_string()));
        // The kernel frees the ports (the veths stay, unenslaved).
        state.bridges.remove(name);
        Ok(())
    }

    async fn create_netns(&self, path: &Path, owner: Option<&UserNamespace>) -> Result<(), NetlinkError> {
        let mut state = self.lock();
        if let Some(owner) = owner {
            state.netns.insert(owner.path.clone());
        }
        state.calls.push(NetlinkCall::CreateNetns(path.to_path_buf()));
        if !state.netns.insert(path.to_path_buf()) {
            return Err(NetlinkError::Netns {
                op: "create",
                path: path.to_path_buf(),
                source: io::Error::new(io::ErrorKind::AlreadyExists, "a network namespace is already mounted there"),
            });
        }
        Ok(())
    }

    async fn netns_exists(&self, path: &Path) -> Result<bool, NetlinkError> {
        Ok(self.lock().netns.contains(path))
    }

    async fn delete_netns(&self, path: &Path) -> Result<(), NetlinkError> {
        let mut state = self.lock();
        state.calls.push(NetlinkCall::DeleteNetns(path.to_path_buf()));
        if state.netns.remove(path) {
            // With no process left inside, the namespace dies and takes its
            // `eth0`, hence the whole veth pair, with it.
            state.veths.retain(|_, a| a.netns != path);
        }
        // As the real one: the pin file goes too (when a test made one).
        let _ = std::fs::remove_file(path);
        Ok(())
    }

    async fn attach(&self, bridge: &str, attachment: &Attachment) -> Result<(), NetlinkError> {
        let mut state = self.lock();
        state.calls.push(NetlinkCall::Attach { bridge: bridge.to_string(), attachment: attachment.clone() });
        if !state.netns.contains(&attachment.netns) {
            return Err(NetlinkError::Netns {
                op: "open",
                path: attachment.netns.clone(),
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        }
        if !state.bridges.contains_key(bridge) {
            return Err(NetlinkError::LinkNotFound { ifname: bridge.to_string() });
        }
        let host = attachment.host_ifname.as_str();
        if state.link_exists(host) || state.veths.values().any(|a| a.netns == attachment.netns) {
            return Err(nack("create veth", host, libc::EEXIST));
        }
        state.veths.insert(host.to_string(), attachment.clone());
        Ok(())
    }

    async fn detach(&self, host_ifname: &str) -> Result<(), NetlinkError> {
        let mut state = self.lock();
        state.calls.push(NetlinkCall::Detach(host_ifname.to_string()));
        state.veths.remove(host_ifname);
        Ok(())
    }

    async fn link_exists(&self, name: &str) -> Result<bool, NetlinkError> {
        Ok(self.links().iter().any(|l| l == name))
    }

    /// A socket in the test's own namespace; fails for a path that is not
    /// a namespace, like the kernel-backed one.
    async fn tcp_socket_in(&self, netns: &Path) -> Result<OwnedFd, NetlinkError> {
        if !self.lock().netns.contains(netns) {
            return Err(NetlinkError::Netns {
                op: "open",
                path: netns.to_path_buf(),
                source: io::Error::from(io::ErrorKind::NotFound),
            });
        }
        super::new_tcp_socket().map_err(|source| NetlinkError::Socket { netns: Some(netns.to_path_buf()), source })
    }

    async fn routes_inside(&self, subnet: ipnet::Ipv4Net, except: &str) -> Result<Vec<String>, NetlinkError> {
        let state = self.lock();
        let mut names: Vec<String> = state
            .foreign_routes
            .iter()
            .filter(|(net, name)| subnet.contains(net) && name != except)
            .map(|(_, name)| name.clone())
            .collect();
        names.dedup();
        Ok(names)
    }

    async fn links_with_prefix(&self, prefix: &str) -> Result<Vec<String>, NetlinkError> {
        Ok(self.links().into_iter().filter(|name| name.starts_with(prefix)).collect())
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;
    use std::net::Ipv4Addr;

    use super::*;

    fn bridge() -> BridgeConfig {
        BridgeConfig { name: "cb-br".into(), gateway: Ipv4Addr::new(10, 9, 0, 1), prefix_len: 24 }
    }

    fn attachment(slot: u8) -> Attachment {
        Attachment {
            host_ifname: format!("cb-{slot}"),
            netns: PathBuf::from(format!("/run/cubby/netns/c{slot}")),
            address: Ipv4Addr::new(10, 9, 0, slot + 1),
            prefix_len: 24,
            gateway: Ipv4Addr::new(10, 9, 0, 1),
        }
    }

    async fn attached(fake: &FakeNetlink, slot: u8) -> Attachment {
        let a = attachment(slot);
        fake.create_netns(&a.netns, None).await.unwrap();
        fake.attach("cb-br", &a).await.unwrap();
        a
    }

    #[tokio::test]
    async fn records_calls_in_order() {
        let fake = FakeNetlink::new();
        fake.ensure_bridge(&bridge()).await.unwrap();
        let a = attached(&fake, 1).await;
        fake.detach("cb-1").await.unwrap();
        fake.delete_netns(&a.netns).await.unwrap();
        fake.delete_bridge("cb-br").await.unwrap();
        fake.links_with_prefix("cb").await.unwrap();

        assert_eq!(
            fake.calls(),
            vec![
                NetlinkCall::EnsureBridge(bridge()),
                NetlinkCall::CreateNetns(a.netns.clone()),
                NetlinkCall::Attach { bridge: "cb-br".into(), attachment: a.clone() },
                NetlinkCall::Detach("cb-1".into()),
                NetlinkCall::DeleteNetns(a.netns.clone()),
                NetlinkCall::DeleteBridge("cb-br".into()),
            ]
        );
    }

    #[tokio::test]
    async fn links_with_prefix_lists_bridge_and_veths() {
        let fake = FakeNetlink::new();
        fake.ensure_bridge(&bridge()).await.unwrap();
        attached(&fake, 1).await;
        attached(&fake, 2).await;

        assert_eq!(fake.links_with_prefix("cb-").await.unwrap(), vec!["cb-1", "cb-2", "cb-br"]);
        assert!(fake.links_with_prefix("other").await.unwrap().is_empty());
        assert_eq!(fake.attachment("cb-2"), Some(attachment(2)));

        fake.detach("cb-1").await.unwrap();
        assert_eq!(fake.links_with_prefix("cb-").await.unwrap(), vec!["cb-2", "cb-br"]);
    }

    #[tokio::test]
    async fn removals_are_idempotent() {
        let fake = FakeNetlink::new();
        fake.ensure_bridge(&bridge()).await.unwrap();
        fake.ensure_bridge(&bridge()).await.unwrap();
        let a = attached(&fake, 1).await;
        for _ in 0..2 {
            fake.detach("cb-1").await.unwrap();
            fake.delete_netns(&a.netns).await.unwrap();
            fake.delete_bridge("cb-br").await.unwrap();
        }
        assert!(fake.links().is_empty());
        assert!(fake.namespaces().is_empty());
    }

    #[tokio::test]
    async fn create_netns_twice_fails() {
        let fake = FakeNetlink::new();
        let path = Path::new("/run/cubby/netns/c1");
        fake.create_netns(path, None).await.unwrap();

        let err = fake.create_netns(path, None).await.unwrap_err();
        assert!(matches!(err, NetlinkError::Netns { op: "create", .. }), "{err:?}");
        assert_eq!(
            err.source().map(|s| s.to_string()).as_deref(),
            Some("a network namespace is already mounted there")
        );
        assert!(!err.to_string().contains("already mounted"), "Display repeats the source: {err}");
        assert_eq!(fake.namespaces(), vec![path.to_path_buf()]);

        fake.delete_netns(path).await.unwrap();
        fake.create_netns(path, None).await.unwrap();
    }

    #[tokio::test]
    async fn attach_on_existing_host_ifname_fails_and_keeps_the_first() {
        let fake = FakeNetlink::new();
        fake.ensure_bridge(&bridge()).await.unwrap();
        attached(&fake, 1).await;
        let mut again = attachment(2);
        again.host_ifname = "cb-1".into();
        fake.create_netns(&again.netns, None).await.unwrap();

        let err = fake.attach("cb-br", &again).await.unwrap_err();
        assert!(matches!(&err, NetlinkError::Link { op: "create veth", ifname, .. } if ifname == "cb-1"), "{err:?}");
        assert_eq!(fake.attachment("cb-1"), Some(attachment(1)));
        // Failed calls are recorded too.
        assert_eq!(fake.calls().last(), Some(&NetlinkCall::Attach { bridge: "cb-br".into(), attachment: again }));
    }

    #[tokio::test]
    async fn attach_fails_on_bridge_name_and_on_a_namespace_with_eth0() {
        let fake = FakeNetlink::new();
        fake.ensure_bridge(&bridge()).await.unwrap();
        let first = attached(&fake, 1).await;

        let mut named_like_bridge = attachment(2);
        named_like_bridge.host_ifname = "cb-br".into();
        fake.create_netns(&named_like_bridge.netns, None).await.unwrap();
        assert!(fake.attach("cb-br", &named_like_bridge).await.is_err());

        let mut same_netns = attachment(3);
        same_netns.netns = first.netns.clone();
        assert!(fake.attach("cb-br", &same_netns).await.is_err());
        assert_eq!(fake.links(), vec!["cb-1", "cb-br"]);
    }

    #[tokio::test]
    async fn attach_needs_bridge_and_namespace() {
        let fake = FakeNetlink::new();
        let a = attachment(1);

        let err = fake.attach("cb-br", &a).await.unwrap_err();
        assert!(matches!(err, NetlinkError::Netns { op: "open", .. }), "{err:?}");

        fake.create_netns(&a.netns, None).await.unwrap();
        let err = fake.attach("cb-br", &a).await.unwrap_err();
        assert!(matches!(&err, NetlinkError::LinkNotFound { ifname } if ifname == "cb-br"), "{err:?}");
        assert!(fake.links().is_empty());
    }

    #[tokio::test]
    async fn deleting_the_namespace_removes_its_veth() {
        let fake = FakeNetlink::new();
        fake.ensure_bridge(&bridge()).await.unwrap();
        let a = attached(&fake, 1).await;
        attached(&fake, 2).await;

        fake.delete_netns(&a.netns).await.unwrap();
        assert_eq!(fake.links(), vec!["cb-2", "cb-br"]);
    }

    #[tokio::test]
    async fn ensure_bridge_on_a_veth_name_fails() {
        let fake = FakeNetlink::new();
        fake.ensure_bridge(&bridge()).await.unwrap();
        attached(&fake, 1).await;
        let mut clash = bridge();
        clash.name = "cb-1".into();

        let err = fake.ensure_bridge(&clash).await.unwrap_err();
        assert!(matches!(&err, NetlinkError::NotABridge { ifname } if ifname == "cb-1"), "{err:?}");
    }

    #[tokio::test]
    async fn routes_inside_a_subnet_name_their_interfaces() {
        let fake = FakeNetlink::new();
        fake.add_foreign_route("10.216.7.0/24".parse().unwrap(), "other-br");
        fake.add_foreign_route("10.0.0.0/8".parse().unwrap(), "vpn0");
        let ours: ipnet::Ipv4Net = "10.216.0.0/16".parse().unwrap();
        assert_eq!(fake.routes_inside(ours, "cubby-br").await.unwrap(), ["other-br"]);
        assert!(fake.routes_inside(ours, "other-br").await.unwrap().is_empty());
        assert!(fake.routes_inside("10.217.0.0/16".parse().unwrap(), "x").await.unwrap().is_empty());
    }
}
