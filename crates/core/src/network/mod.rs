//! The [`NetworkService`]: each container's network on the host — its
//! pinned network namespace, its veth on the daemon's bridge, its address
//! (IPAM) — and its firewall and network rules as nft chains
//! ([`firewall`]). It needs the netlink and nftables seams and the store;
//! it shares the containers' locks so a rule change and a lifecycle step
//! of one container never interleave.

pub mod firewall;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::sync::Arc;

use cubby_model::ContainerId;
use cubby_network::{
    Attachment, BaseRules, BridgeConfig, EgressGuard, Ipam, Netlink, Nftables, UserNamespace, Verdict,
    ingress_tcp_verdict,
};
use cubby_store::{ContainerRecord, Store};
use tracing::{Instrument, info_span};

use crate::config::IdRange;
use crate::containers::ContainerPaths;
use crate::inventory::Layout;
use crate::locks::ContainerLocks;
use crate::{Error, Host};

/// What the network service is set up with.
#[derive(Debug, Clone)]
pub struct NetworkSettings {
    pub layout: Layout,
    /// Where proc is mounted (to turn on forwarding).
    pub proc_root: PathBuf,
    /// Resolvers of containers that name none.
    pub dns_servers: Vec<IpAddr>,
    /// Destinations no container reaches, whatever its rules.
    pub egress_guard: EgressGuard,
    /// The id range of containers' user namespaces (`None`: host root).
    pub userns: Option<IdRange>,
}

/// Containers' network namespaces, veths, addresses and rules.
#[derive(Debug)]
pub struct NetworkService {
    store: Arc<dyn Store>,
    netlink: Arc<dyn Netlink>,
    nft: Arc<dyn Nftables>,
    ipam: Ipam,
    settings: NetworkSettings,
    locks: ContainerLocks,
    /// Rule changes are events.
    pub(crate) events: Arc<crate::events::Events>,
    /// How long nftables changes took, by step.
    apply_times: ApplyTimes,
}

/// How many nftables changes of one step were applied, and their time.
#[derive(Debug, Clone, PartialEq)]
pub struct NftApplies {
    /// What the change did (`install container rules`, ...).
    pub step: &'static str,
    pub count: u64,
    pub seconds: f64,
}

/// Counts and total time of nftables changes, by step, since the start.
#[derive(Debug, Default)]
struct ApplyTimes(std::sync::Mutex<std::collections::BTreeMap<&'static str, (u64, f64)>>);

impl ApplyTimes {
    fn observe(&self, step: &'static str, seconds: f64) {
        let mut all = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (count, total) = all.entry(step).or_default();
        *count += 1;
        *total += seconds;
    }
}

impl NetworkService {
    /// Every step's nftables changes so far: count and total seconds.
    pub fn nft_applies(&self) -> Vec<NftApplies> {
        let all = self.apply_times.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        all.iter().map(|(step, (count, seconds))| NftApplies { step, count: *count, seconds: *seconds }).collect()
    }

    /// The service over `store`, making its changes through the netlink
    /// and nftables seams of `host`.
    pub(crate) fn new(
        store: Arc<dyn Store>,
        host: &Host,
        ipam: Ipam,
        settings: NetworkSettings,
        locks: ContainerLocks,
        events: Arc<crate::events::Events>,
    ) -> Self {
        Self {
            store,
            netlink: Arc::clone(&host.netlink),
            nft: Arc::clone(&host.nft),
            ipam,
            settings,
            locks,
            events,
            apply_times: ApplyTimes::default(),
        }
    }

    fn paths(&self, id: &ContainerId, slot: u32) -> ContainerPaths {
        ContainerPaths::of(&self.settings.layout, id, slot)
    }

    /// How many containers the address range holds.
    pub fn capacity(&self) -> u32 {
        self.ipam.capacity()
    }

    /// The address of slot `slot`.
    pub fn address(&self, slot: u32) -> Result<Ipv4Addr, Error> {
        self.ipam.address(slot).map_err(|e| Error::invalid("slot", e.to_string()))
    }

    /// The daemon's bridge name.
    pub fn bridge(&self) -> String {
        self.settings.layout.bridge()
    }

    fn attachment(&self, rec: &ContainerRecord) -> Result<Attachment, Error> {
        let paths = self.paths(&rec.id, rec.slot);
        Ok(Attachment {
            host_ifname: paths.veth,
            netns: paths.netns,
            address: self.address(rec.slot)?,
            prefix_len: self.ipam.subnet().prefix_len(),
            gateway: self.ipam.gateway(),
        })
    }

    /// At start: forwarding on, the bridge, and the base tables with every
    /// container's chains in one transaction (there is no moment when a
    /// container runs without its rules).
    pub(crate) async fn prepare(&self) -> Result<(), Error> {
        let forward = self.settings.proc_root.join("sys/net/ipv4/ip_forward");
        if std::fs::read_to_string(&forward).map(|v| v.trim() != "1").unwrap_or(true) {
            tracing::info!("enabling IPv4 forwarding for container egress");
            std::fs::write(&forward, "1").map_err(Error::io("enable forwarding in", &forward))?;
        }
        let bridge = BridgeConfig {
            name: self.bridge(),
            gateway: self.ipam.gateway(),
            prefix_len: self.ipam.subnet().prefix_len(),
        };
        self.netlink.ensure_bridge(&bridge).await.map_err(|source| Error::Netlink {
            step: "create bridge",
            container: None,
            source: Box::new(source),
        })?;
        let base = BaseRules {
            table: self.settings.layout.prefix.clone(),
            bridge: self.bridge(),
            veth_prefix: self.settings.layout.link_prefix(),
            subnet: self.ipam.subnet(),
            guard: self.settings.egress_guard.clone(),
        };
        self.follow_subnet()?;
        let mut batch = base.batch();
        for rec in self.store.containers(None, None, u32::MAX)? {
            let rules = self
                .store
                .firewall(&rec.id)
                .map_err(Error::from)
                .and_then(|f| Ok((f, self.store.network(&rec.id)?)))
                .and_then(|(f, n)| self.container_rules(&rec, &f, &n));
            match rules {
                Ok(rules) => rules.install(&mut batch),
                Err(e) => {
                    tracing::error!(container = %rec.id, error = %e, "stored rules are unusable; its traffic stays blocked")
                }
            }
        }
        self.apply(batch, "install base rules").await
    }

    /// Makes the container's network namespace and veth, and installs its
    /// firewall chains.
    pub(crate) async fn connect(&self, rec: &ContainerRecord) -> Result<(), Error> {
        let attachment = self.attachment(rec)?;
        let owner = self.settings.userns.map(|r| UserNamespace {
            path: self.paths(&rec.id, rec.slot).userns,
            host_base: r.host_base,
            size: r.size,
        });
        self.netlink
            .create_netns(&attachment.netns, owner.as_ref())
            .await
            .map_err(Error::netlink("create network namespace", rec.id.as_str()))?;
        // A veth with this slot's name can only be debris of an earlier crash.
        self.netlink
            .detach(&attachment.host_ifname)
            .await
            .map_err(Error::netlink("remove stale veth", rec.id.as_str()))?;
        self.netlink
            .attach(&self.bridge(), &attachment)
            .await
            .map_err(Error::netlink("attach veth", rec.id.as_str()))?;
        self.install_firewall(rec).await
    }

    /// Attaches the container to the network again when its namespace or
    /// veth is gone: a reboot emptied /run (the veth went with the old
    /// namespace), or the veth was removed.
    pub(crate) async fn ensure_connected(&self, rec: &ContainerRecord) -> Result<(), Error> {
        let id = rec.id.as_str();
        let paths = self.paths(&rec.id, rec.slot);
        let has_netns = self
            .netlink
            .netns_exists(&paths.netns)
            .instrument(info_span!("network.check"))
            .await
            .map_err(Error::netlink("check network namespace", id))?;
        let has_veth =
            has_netns && self.netlink.link_exists(&paths.veth).await.map_err(Error::netlink("check veth", id))?;
        if !has_netns || !has_veth {
            for stale in [&paths.netns, &paths.userns] {
                self.netlink.delete_netns(stale).await.map_err(Error::netlink("remove stale namespace file", id))?;
            }
            self.connect(rec).await?;
        }
        Ok(())
    }

    /// Removes the container's chains, veth and namespaces: every step is
    /// tried, and each one's outcome given back (a teardown goes on past a
    /// failed step).
    pub(crate) async fn disconnect(&self, rec: &ContainerRecord) -> Vec<Result<(), Error>> {
        let id = rec.id.as_str();
        let paths = self.paths(&rec.id, rec.slot);
        vec![
            self.remove_firewall(rec).instrument(info_span!("firewall.remove")).await,
            self.netlink
                .detach(&paths.veth)
                .instrument(info_span!("network.veth_delete"))
                .await
                .map_err(Error::netlink("remove veth", id)),
            self.netlink
                .delete_netns(&paths.netns)
                .instrument(info_span!("network.netns_delete"))
                .await
                .map_err(Error::netlink("remove network namespace", id)),
            self.netlink.delete_netns(&paths.userns).await.map_err(Error::netlink("remove user namespace", id)),
        ]
    }

    /// A socket (not yet connected) made inside the namespace of running
    /// container `rec`, for the proxy's connection to its port `port`, when
    /// its ingress rules admit the proxy (the gateway) there. `None`:
    /// connect from the host. See [`crate::upstream`].
    pub(crate) async fn socket_in(&self, rec: &ContainerRecord, upstream: SocketAddr) -> Option<OwnedFd> {
        let firewall = self.store.firewall(&rec.id).ok()?;
        let (ingress, _) = Self::check_firewall(&firewall).ok()?;
        let gateway = IpAddr::V4(self.ipam.gateway());
        if ingress_tcp_verdict(&ingress, gateway, upstream.port()) != Verdict::Accept {
            return None;
        }
        let netns = self.paths(&rec.id, rec.slot).netns;
        match self.netlink.tcp_socket_in(&netns).await {
            Ok(socket) => Some(socket),
            Err(e) => {
                tracing::debug!(container = %rec.id, error = %crate::error::error_chain(&e), "no socket in the container's namespace; connecting from the host");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use cubby_model::{Direction, RuleAction, RuleSpec};
    use cubby_network::{FakeNetlink, FakeNftables};
    use cubby_store::{RuleStore, SqliteStore};

    use super::*;
    use crate::Caller;

    struct Fixture {
        network: NetworkService,
        store: Arc<SqliteStore>,
        netlink: Arc<FakeNetlink>,
        nft: Arc<FakeNftables>,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("proc/sys/net/ipv4")).unwrap();
        std::fs::write(dir.path().join("proc/sys/net/ipv4/ip_forward"), "1\n").unwrap();
        std::fs::create_dir_all(dir.path().join("data")).unwrap();
        let store = Arc::new(SqliteStore::in_memory().unwrap());
        let (netlink, nft) = (Arc::new(FakeNetlink::new()), Arc::new(FakeNftables::new()));
        let settings = NetworkSettings {
            layout: Layout::new("cbt", dir.path().join("data"), Some(dir.path().join("run"))),
            proc_root: dir.path().join("proc"),
            dns_servers: vec!["192.0.2.53".parse().unwrap()],
            egress_guard: EgressGuard::default(),
            userns: None,
        };
        let host = Host {
            btrfs: Arc::new(cubby_storage::FakeBtrfs::new()),
            mounts: Arc::new(cubby_storage::FakeMounts::new()),
            runtime: Arc::new(cubby_runtime::FakeRuntime::new()),
            cgroups: Arc::new(cubby_runtime::FakeCgroups::new()),
            netlink: Arc::clone(&netlink) as Arc<dyn Netlink>,
            nft: Arc::clone(&nft) as Arc<dyn Nftables>,
        };
        let ipam = Ipam::new("10.99.0.0/24".parse().unwrap()).unwrap();
        let events = Arc::new(crate::events::Events::new(Arc::clone(&store) as Arc<dyn Store>));
        let network = NetworkService::new(
            Arc::clone(&store) as Arc<dyn Store>,
            &host,
            ipam,
            settings,
            ContainerLocks::default(),
            events,
        );
        Fixture { network, store, netlink, nft, _dir: dir }
    }

    fn tenant(f: &Fixture, name: &str) -> ContainerRecord {
        let project = crate::testing::project(&*f.store, name);
        crate::testing::container(&*f.store, &project.id, f.network.default_firewall(8080))
    }

    /// The nft text of every batch applied so far that mentions `what`.
    fn batches_naming(f: &Fixture, what: &str) -> usize {
        f.nft.batches().iter().filter(|b| b.to_string().contains(what)).count()
    }

    #[tokio::test]
    async fn rules_naming_the_proxy_follow_the_state_to_another_subnet() {
        let f = fixture();
        let data = f._dir.path().join("data");
        // The state was served on 10.98.0.0/24 (a restored backup).
        std::fs::write(data.join("subnet"), "10.98.0.0/24\n").unwrap();
        let project = crate::testing::project(&*f.store, "acme");
        let mut firewall = f.network.default_firewall(8080);
        firewall.ingress[0].source = Some("10.98.0.1".into());
        let mut other = firewall.ingress[0].clone();
        other.id = cubby_model::RuleId::random();
        other.source = Some("10.98.0.7/32".into());
        firewall.ingress.push(other);
        let rec = crate::testing::container(&*f.store, &project.id, firewall);
        f.network.prepare().await.unwrap();
        let stored = f.store.firewall(&rec.id).unwrap();
        let sources: Vec<_> = stored.ingress.iter().map(|r| r.source.as_deref()).collect();
        assert_eq!(sources, vec![Some("10.99.0.1"), Some("10.98.0.7/32")], "only the proxy's address moves");
        assert_eq!(std::fs::read_to_string(data.join("subnet")).unwrap(), "10.99.0.0/24\n");
        // Served again on the same subnet: nothing moves.
        assert_eq!(f.network.follow_subnet().unwrap(), 0);
    }

    #[tokio::test]
    async fn a_tenants_rules_and_links_are_its_own() {
        let f = fixture();
        f.network.prepare().await.unwrap();
        let (a, b) = (tenant(&f, "acme"), tenant(&f, "other"));
        f.network.connect(&a).await.unwrap();
        f.network.connect(&b).await.unwrap();
        let (veth_a, veth_b) = (f.network.paths(&a.id, a.slot).veth, f.network.paths(&b.id, b.slot).veth);
        assert!(f.netlink.links().contains(&veth_a) && f.netlink.links().contains(&veth_b));
        assert_ne!(f.network.address(a.slot).unwrap(), f.network.address(b.slot).unwrap());

        // A rule change of A's is applied to A's chains only.
        let before_b = batches_naming(&f, b.id.as_str());
        let spec = RuleSpec {
            action: Some(RuleAction::Reject),
            destination: Some("198.51.100.0/24".into()),
            position: Some(0),
            ..Default::default()
        };
        let as_a = Caller::project(a.project_id.clone());
        f.network.add_rule(&as_a, &a.id, Direction::Egress, &spec).await.unwrap();
        assert_eq!(batches_naming(&f, b.id.as_str()), before_b, "B's chains were not touched");
        assert_eq!(f.network.firewall(&as_a, &a.id).unwrap().egress.len(), 2, "control: A's rule is stored");
        // A cannot read or change B's rules.
        let refused = f.network.add_rule(&as_a, &b.id, Direction::Egress, &spec).await;
        assert!(matches!(refused, Err(Error::NotFound { kind: "container", .. })), "{refused:?}");
        assert!(f.network.network_rules(&as_a, &b.id).is_err());
        assert_eq!(f.network.firewall(&Caller::admin(), &b.id).unwrap().egress.len(), 1, "B's rules unchanged");

        // Disconnecting A leaves B attached.
        assert!(f.network.disconnect(&a).await.into_iter().all(|r| r.is_ok()));
        assert!(!f.netlink.links().contains(&veth_a));
        assert!(f.netlink.links().contains(&veth_b));
    }
}
