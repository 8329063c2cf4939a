//! The one inventory of host resources a daemon instance owns: where each
//! kind lives or how it is named ([`Layout`]), how to list every one of
//! them ([`Inventory::take`]), which ones no record owns
//! ([`Inventory::orphans`]) and how each is removed ([`Orphan::remove`]).
//!
//! `cubby doctor` reports from it, the daemon's reconcile removes the
//! orphans it finds at start, and `cubby purge` removes everything it
//! lists (nothing is owned when the state is to go). A new kind of host
//! resource is added here once, and all three know it.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use cubby_model::ContainerId;
use cubby_network::ipam;
use cubby_runtime::{ContainerState, RuntimeStatus};

use crate::{Error, Host};

/// Where one daemon instance keeps its things, and how it names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// The name stem of its host resources.
    pub prefix: String,
    pub data_dir: PathBuf,
    pub run_dir: PathBuf,
}

impl Layout {
    /// The layout of prefix `prefix`; its runtime files in `run_dir`, or
    /// in [`Layout::default_run_dir`] when `None`.
    pub fn new(prefix: &str, data_dir: PathBuf, run_dir: Option<PathBuf>) -> Self {
        let run_dir = run_dir.unwrap_or_else(|| Self::default_run_dir(prefix));
        Self { prefix: prefix.to_string(), data_dir, run_dir }
    }

    /// `/run/<prefix>`: the one place this default is written.
    pub fn default_run_dir(prefix: &str) -> PathBuf {
        PathBuf::from(format!("/run/{prefix}"))
    }

    /// The storage pool (btrfs) in the data dir.
    pub fn pool(&self) -> PathBuf {
        self.data_dir.join("pool")
    }

    /// One subvolume per container, named by its id.
    pub fn container_subvolumes(&self) -> PathBuf {
        self.pool().join("containers")
    }

    /// One read-only subvolume per layer.
    pub fn layer_subvolumes(&self) -> PathBuf {
        self.pool().join("layers")
    }

    /// The run dirs with one entry per container: its bundle (whose
    /// `rootfs` an earlier version mounted on the host), and the files
    /// pinning its network and user namespaces. The runtime creates
    /// containers from a mount namespace that hides what is mounted under
    /// them.
    pub fn tenant_run_dirs(&self) -> [PathBuf; 3] {
        ["containers", "netns", "userns"].map(|d| self.run_dir.join(d))
    }

    /// The OCI runtime's state root.
    pub fn runtime_root(&self) -> PathBuf {
        self.run_dir.join("runc")
    }

    /// The cgroup every container's cgroup is made under.
    pub fn cgroup_parent(&self) -> String {
        format!("/{}", self.prefix)
    }

    /// The cgroup of one container.
    pub fn cgroup(&self, id: &str) -> String {
        format!("/{}/{id}", self.prefix)
    }

    /// The bridge all veths are attached to.
    pub fn bridge(&self) -> String {
        ipam::bridge_name(&self.prefix)
    }

    /// The host side of the veth of slot `slot`.
    pub fn veth(&self, slot: u32) -> String {
        ipam::veth_name(&self.prefix, slot)
    }

    /// Every link this instance makes starts so.
    pub fn link_prefix(&self) -> String {
        format!("{}-", self.prefix)
    }
}

/// Which pinned namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Namespace {
    Network,
    User,
}

impl Namespace {
    fn word(self) -> &'static str {
        match self {
            Self::Network => "network",
            Self::User => "user",
        }
    }
}

/// One host resource of the instance. The order of the variants is the
/// order of removal: processes first, then what they held, storage last.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    /// A container in the OCI runtime's state.
    RuntimeContainer(String),
    /// A container root mounted on the host (earlier versions did).
    HostMount(PathBuf),
    /// A bundle directory `<run>/containers/<id>`.
    Bundle(String),
    /// A container cgroup under the instance's parent cgroup.
    Cgroup(String),
    /// A pinned namespace `<run>/netns/<id>` or `<run>/userns/<id>`.
    Namespace(Namespace, String),
    /// A link named with the prefix (a veth's host side).
    Link(String),
    /// `pool/containers/<name>`.
    ContainerSubvolume(String),
    /// `pool/layers/<name>`.
    LayerSubvolume(String),
}

/// Everything the instance has on the host, as listed at one moment.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Directory names in `pool/containers` (restore journals, which are
    /// files, are not listed: the restore's recovery owns them).
    pub container_subvolumes: HashSet<String>,
    pub layer_subvolumes: Vec<String>,
    pub runtime: Vec<ContainerState>,
    pub namespaces: Vec<(Namespace, String)>,
    pub links: HashSet<String>,
    pub bundles: Vec<String>,
    pub host_mounts: Vec<PathBuf>,
    /// Container cgroups (named like a container id) under the parent.
    pub cgroups: Vec<String>,
}

/// What the records own: nothing of these is an orphan.
#[derive(Debug, Clone, Default)]
pub struct Owners {
    /// Ids of containers (and of teardowns still in flight).
    pub containers: HashSet<String>,
    /// Host veth names of their slots.
    pub veths: HashSet<String>,
    /// Names in `pool/layers` of recorded layers. `None`: layers are not
    /// judged (the daemon's layer collector owns them while it runs).
    pub layers: Option<HashSet<String>>,
}

/// A resource no record owns, and why it is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Orphan {
    pub resource: Resource,
    pub detail: &'static str,
}

const LAYER_DEBRIS: &str = "no layer record owns it";

/// The layer subvolumes no record owns (debris of a crash). The layer
/// collector asks this alone, under its lock: an import publishes its
/// subvolume a moment before its row.
pub fn orphan_layers(layout: &Layout, recorded: &HashSet<String>) -> Vec<Orphan> {
    let mut out: Vec<Orphan> = dir_names(&layout.layer_subvolumes(), true)
        .into_iter()
        .filter(|n| !recorded.contains(n))
        .map(|n| Orphan { resource: Resource::LayerSubvolume(n), detail: LAYER_DEBRIS })
        .collect();
    out.sort_by(|a, b| a.resource.cmp(&b.resource));
    out
}

fn dir_names(dir: &Path, only_dirs: bool) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    entries
        .filter_map(Result::ok)
        .filter(|e| !only_dirs || e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect()
}

fn listing<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> Error {
    move |e| Error::Conflict { code: "inventory_failed", message: format!("{what}: {e}") }
}

impl Inventory {
    /// Lists every resource of the instance `layout` names.
    pub async fn take(layout: &Layout, host: &Host) -> Result<Self, Error> {
        let [bundles, netns, userns] = layout.tenant_run_dirs();
        let runtime = host.runtime.list().await.map_err(listing("listing the runtime's containers"))?;
        let links = host
            .netlink
            .links_with_prefix(&layout.link_prefix())
            .await
            .map_err(listing("listing links"))?
            .into_iter()
            .collect();
        let host_mounts = host.mounts.mounts_under(&bundles).map_err(listing("reading the mount table"))?;
        let mut namespaces = Vec::new();
        for (kind, dir) in [(Namespace::Network, &netns), (Namespace::User, &userns)] {
            namespaces.extend(dir_names(dir, false).into_iter().map(|id| (kind, id)));
        }
        let mut cgroups = HashSet::new();
        for dir in host.cgroups.dirs(&layout.cgroup_parent()) {
            for child in dir_names(&dir, true) {
                if ContainerId::is_well_formed(&child) {
                    cgroups.insert(child);
                }
            }
        }
        Ok(Self {
            container_subvolumes: dir_names(&layout.container_subvolumes(), true).into_iter().collect(),
            layer_subvolumes: dir_names(&layout.layer_subvolumes(), true),
            runtime,
            namespaces,
            links,
            bundles: dir_names(&bundles, true),
            host_mounts,
            cgroups: cgroups.into_iter().collect(),
        })
    }

    /// Ids of the runtime containers whose process runs.
    pub fn running(&self) -> HashSet<&str> {
        self.runtime.iter().filter(|s| s.status == RuntimeStatus::Running).map(|s| s.id.as_str()).collect()
    }

    /// Whether container `id`'s namespace of `kind` is pinned.
    pub fn has_namespace(&self, kind: Namespace, id: &str) -> bool {
        self.namespaces.iter().any(|(k, n)| *k == kind && n == id)
    }

    /// Every listed resource that `owners` does not own, sorted.
    pub fn orphans(&self, layout: &Layout, owners: &Owners) -> Vec<Orphan> {
        let known = |id: &str| owners.containers.contains(id);
        let mut out = Vec::new();
        let mut push = |resource, detail| out.push(Orphan { resource, detail });
        for id in self.container_subvolumes.iter().filter(|id| !known(id)) {
            push(Resource::ContainerSubvolume(id.clone()), "no container owns it");
        }
        if let Some(layers) = &owners.layers {
            for name in self.layer_subvolumes.iter().filter(|n| !layers.contains(*n)) {
                push(Resource::LayerSubvolume(name.clone()), LAYER_DEBRIS);
            }
        }
        for state in self.runtime.iter().filter(|s| !known(&s.id)) {
            push(Resource::RuntimeContainer(state.id.clone()), "in the runtime, no record");
        }
        for (kind, id) in self.namespaces.iter().filter(|(_, id)| !known(id)) {
            push(Resource::Namespace(*kind, id.clone()), "no container owns it");
        }
        let bridge = layout.bridge();
        for link in self.links.iter().filter(|l| **l != bridge && !owners.veths.contains(*l)) {
            push(Resource::Link(link.clone()), "no container's slot");
        }
        for id in self.bundles.iter().filter(|id| !known(id)) {
            push(Resource::Bundle(id.clone()), "runtime files of no container");
        }
        // Roots are mounted in each container's own mount namespace, never
        // on the host (see `cubby_runtime::mountns`); one on the host is
        // left from an earlier version: kept while its container runs.
        let running = self.running();
        for path in &self.host_mounts {
            let owner = path.parent().and_then(Path::file_name).and_then(|n| n.to_str()).unwrap_or_default();
            if !running.contains(owner) {
                push(Resource::HostMount(path.clone()), "mounted on the host, and no container runs in it");
            }
        }
        for id in self.cgroups.iter().filter(|id| !known(id)) {
            push(Resource::Cgroup(id.clone()), "no container owns it");
        }
        out.sort_by(|a, b| a.resource.cmp(&b.resource));
        out
    }
}

impl Orphan {
    /// The resource in words, for reports (`subvolume containers/cx`).
    pub fn subject(&self, layout: &Layout) -> String {
        match &self.resource {
            Resource::ContainerSubvolume(id) => format!("subvolume containers/{id}"),
            Resource::LayerSubvolume(name) => format!("subvolume layers/{name}"),
            Resource::RuntimeContainer(id) => format!("runtime container {id}"),
            Resource::Namespace(kind, id) => format!("{} namespace {id}", kind.word()),
            Resource::Link(name) => format!("link {name}"),
            Resource::Bundle(id) => format!("bundle {id}"),
            Resource::HostMount(path) => format!("mount {}", path.display()),
            Resource::Cgroup(id) => format!("cgroup {}", layout.cgroup(id)),
        }
    }

    /// Removes it from the host. Idempotent: what is already gone is not
    /// an error.
    pub async fn remove(&self, layout: &Layout, host: &Host) -> Result<(), Error> {
        let [bundles, netns, userns] = layout.tenant_run_dirs();
        match &self.resource {
            Resource::ContainerSubvolume(id) => host
                .btrfs
                .delete_subvolume(&layout.container_subvolumes().join(id))
                .map_err(listing("deleting a subvolume")),
            Resource::LayerSubvolume(name) => host
                .btrfs
                .delete_subvolume(&layout.layer_subvolumes().join(name))
                .map_err(listing("deleting a layer subvolume")),
            Resource::RuntimeContainer(id) => {
                host.runtime.delete(id, true).await.map_err(listing("deleting a runtime container"))
            }
            Resource::Namespace(kind, id) => {
                let dir = if *kind == Namespace::Network { netns } else { userns };
                host.netlink.delete_netns(&dir.join(id)).await.map_err(listing("removing a namespace"))
            }
            Resource::Link(name) => host.netlink.detach(name).await.map_err(listing("removing a link")),
            Resource::Bundle(id) => {
                let dir = bundles.join(id);
                host.mounts.unmount(&dir.join("rootfs")).map_err(listing("unmounting an orphan rootfs"))?;
                match std::fs::remove_dir_all(&dir) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(e) => Err(Error::io("remove", &dir)(e)),
                }
            }
            Resource::HostMount(path) => host.mounts.unmount(path).map_err(listing("unmounting a leftover rootfs")),
            Resource::Cgroup(id) => host.cgroups.remove(&layout.cgroup(id)).map_err(listing("removing a cgroup")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cubby_network::{FakeNetlink, FakeNftables, Netlink};
    use cubby_runtime::{FakeCgroups, FakeRuntime};
    use cubby_storage::{FakeBtrfs, FakeMounts};

    use super::*;

    struct Fixture {
        layout: Layout,
        host: Host,
        netlink: Arc<FakeNetlink>,
        _dir: tempfile::TempDir,
    }

    fn fixture() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new("cbt", dir.path().join("data"), Some(dir.path().join("run")));
        let netlink = Arc::new(FakeNetlink::new());
        let host = Host {
            btrfs: Arc::new(FakeBtrfs::new()),
            mounts: Arc::new(FakeMounts::new()),
            runtime: Arc::new(FakeRuntime::new()),
            cgroups: Arc::new(FakeCgroups::new()),
            netlink: Arc::clone(&netlink) as Arc<dyn Netlink>,
            nft: Arc::new(FakeNftables::new()),
        };
        Fixture { layout, host, netlink, _dir: dir }
    }

    fn mkdir(path: PathBuf) {
        std::fs::create_dir_all(path).unwrap();
    }

    #[tokio::test]
    async fn orphans_are_what_no_record_owns_and_removal_leaves_the_owned() {
        let f = fixture();
        let (owned, stray) = (ContainerId::random().to_string(), ContainerId::random().to_string());
        let [bundles, netns, _] = f.layout.tenant_run_dirs();
        mkdir(netns.clone());
        for id in [&owned, &stray] {
            mkdir(f.layout.container_subvolumes().join(id));
            mkdir(bundles.join(id));
            f.netlink.create_netns(&netns.join(id), None).await.unwrap();
            std::fs::write(netns.join(id), b"").unwrap();
        }
        // A restore journal is a file: the restore's recovery owns it.
        std::fs::write(f.layout.container_subvolumes().join(format!("{owned}.restore.json")), b"{}").unwrap();
        mkdir(f.layout.layer_subvolumes().join("lrecorded"));
        mkdir(f.layout.layer_subvolumes().join("ldebris"));

        let inventory = Inventory::take(&f.layout, &f.host).await.unwrap();
        let owners = Owners {
            containers: [owned.clone()].into(),
            veths: HashSet::new(),
            layers: Some(["lrecorded".to_string()].into()),
        };
        let orphans = inventory.orphans(&f.layout, &owners);
        let subjects: Vec<String> = orphans.iter().map(|o| o.subject(&f.layout)).collect();
        assert_eq!(
            subjects,
            [
                format!("bundle {stray}"),
                format!("network namespace {stray}"),
                format!("subvolume containers/{stray}"),
                "subvolume layers/ldebris".to_string(),
            ],
            "in removal order: processes and their files first, storage last"
        );
        // Layers left to the collector: not judged.
        let unjudged = Owners { layers: None, ..owners.clone() };
        assert!(
            inventory.orphans(&f.layout, &unjudged).iter().all(|o| !matches!(o.resource, Resource::LayerSubvolume(_)))
        );

        for orphan in &orphans {
            orphan.remove(&f.layout, &f.host).await.unwrap();
        }
        let after = Inventory::take(&f.layout, &f.host).await.unwrap();
        assert!(after.orphans(&f.layout, &owners).is_empty(), "{:?}", after.orphans(&f.layout, &owners));
        // Control: what is owned is all still there.
        assert!(after.container_subvolumes.contains(&owned));
        assert!(after.has_namespace(Namespace::Network, &owned));
        assert!(bundles.join(&owned).is_dir());
        assert!(f.layout.layer_subvolumes().join("lrecorded").is_dir());
        // Removing twice is not an error.
        for orphan in &orphans {
            orphan.remove(&f.layout, &f.host).await.unwrap();
        }
    }

    #[test]
    fn the_default_run_dir_is_written_once() {
        let l = Layout::new("cubby", PathBuf::from("/var/lib/cubby"), None);
        assert_eq!(l.run_dir, PathBuf::from("/run/cubby"));
        assert_eq!(l.cgroup("cx"), "/cubby/cx");
        assert_eq!(l.link_prefix(), "cubby-");
        assert!(l.veth(7).starts_with(&l.link_prefix()));
    }
}
