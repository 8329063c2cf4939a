//! The [`ContainerService`]: containers' lifecycle, their layers,
//! snapshots and images, the exit monitors of running ones, and waking
//! them on request. It drives the host seams that make a container (btrfs,
//! mounts, the OCI runtime, cgroups) and asks the network service for
//! namespaces and rules and the access service for routes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use cubby_model::ContainerId;
use cubby_storage::Pool;
use cubby_store::Store;
use tokio::task::JoinHandle;

use crate::access::AccessService;
use crate::network::NetworkService;
use crate::{Config, Host};

/// Containers, layers, snapshots and images.
#[derive(Debug)]
pub struct ContainerService {
    pub(crate) config: Config,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) host: Host,
    pub(crate) pool: Pool,
    /// Namespaces, veths, addresses and firewall rules.
    pub(crate) network: Arc<NetworkService>,
    /// Routes and claims (a deleted container's go with it).
    pub(crate) access: Arc<AccessService>,
    locks: crate::locks::ContainerLocks,
    monitors: Mutex<HashMap<ContainerId, Monitor>>,
    generation: AtomicU64,
    /// Background teardowns of deleted containers still running.
    pub(crate) teardowns: Mutex<Vec<JoinHandle<()>>>,
    /// Serialises what creates, references or removes layers.
    pub(crate) layers_lock: tokio::sync::Mutex<()>,
    /// One backup at a time.
    pub(crate) backup_lock: tokio::sync::Mutex<()>,
    /// Rollouts running and recent.
    pub(crate) rollouts: super::rollout::Rollouts,
    /// Wakes the qgroup sweeper.
    pub(crate) qgroup_sweep: Arc<tokio::sync::Notify>,
    /// Proxied traffic per container, for idle stops.
    pub(crate) activity: crate::wake::ActivityTable,
    /// Starts in flight on behalf of requests, shared by every waiter.
    pub(crate) wakes: crate::wake::WakeTable,
    /// The output collectors of running containers.
    pub(crate) outputs: super::output::Collectors,
    /// The id range of containers' user namespaces, as the pool records it
    /// (`None`: containers run as host root).
    pub(crate) userns: Option<crate::config::IdRange>,
    /// Lifecycle changes are events.
    pub(crate) events: Arc<crate::events::Events>,
    /// OOM kills and full disks already told.
    pub(crate) watch: super::watch::Watch,
    /// Usage counted since the daemon started, for `/metrics`.
    pub(crate) tallies: super::metrics::Tallies,
}

/// The watch on a running container's init.
#[derive(Debug)]
struct Monitor {
    generation: u64,
    /// A pidfd of the init, to wait on and to kill.
    init: Option<Arc<cubby_runtime::pidfd::ProcessHandle>>,
    task: JoinHandle<()>,
}

/// What the container service is made of besides its own state.
pub(crate) struct Parts {
    pub config: Config,
    pub store: Arc<dyn Store>,
    pub host: Host,
    pub pool: Pool,
    pub network: Arc<NetworkService>,
    pub access: Arc<AccessService>,
    pub locks: crate::locks::ContainerLocks,
    pub userns: Option<crate::config::IdRange>,
    pub events: Arc<crate::events::Events>,
}

impl ContainerService {
    pub(crate) fn new(parts: Parts) -> Self {
        let Parts { config, store, host, pool, network, access, locks, userns, events } = parts;
        Self {
            config,
            store,
            host,
            pool,
            network,
            access,
            locks,
            monitors: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(1),
            teardowns: Mutex::new(Vec::new()),
            layers_lock: tokio::sync::Mutex::new(()),
            backup_lock: tokio::sync::Mutex::new(()),
            rollouts: Default::default(),
            qgroup_sweep: Arc::new(tokio::sync::Notify::new()),
            activity: crate::wake::ActivityTable::default(),
            wakes: crate::wake::WakeTable::default(),
            outputs: Default::default(),
            userns,
            events,
            watch: Default::default(),
            tallies: Default::default(),
        }
    }

    /// The open pool.
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The lock that serialises lifecycle operations on one container.
    pub(crate) async fn lock(&self, id: &ContainerId) -> crate::locks::ContainerLock {
        self.locks.lock(id).await
    }

    /// Watches the init process `pid` of container `id`; when it exits on
    /// its own, the container is marked stopped.
    pub(crate) fn monitor(self: &Arc<Self>, id: &ContainerId, pid: u32) {
        let generation = self.generation.fetch_add(1, Ordering::Relaxed);
        let weak: Weak<Self> = Arc::downgrade(self);
        let watched = id.clone();
        // An error means the process is already gone.
        let handle = cubby_runtime::pidfd::ProcessHandle::open(pid).ok().map(Arc::new);
        let waiting = handle.clone();
        let task = tokio::spawn(async move {
            if let Some(handle) = waiting {
                handle.exited().await;
            }
            if let Some(service) = weak.upgrade() {
                service.on_exit(&watched, generation).await;
            }
        });
        let old = self
            .monitors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone(), Monitor { generation, init: handle, task });
        if let Some(old) = old {
            old.task.abort();
        }
    }

    /// Stops watching container `id` (before a deliberate stop); its init,
    /// if it was watched.
    pub(crate) fn unmonitor(&self, id: &ContainerId) -> Option<Arc<cubby_runtime::pidfd::ProcessHandle>> {
        let monitor = self.monitors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id)?;
        monitor.task.abort();
        monitor.init
    }

    /// Drops the monitor entry of `id` without aborting it (a monitor calls
    /// this about itself).
    pub(crate) fn forget_monitor(&self, id: &ContainerId) {
        self.monitors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id);
    }

    /// Whether `generation` is still the current monitor of `id`.
    pub(crate) fn is_current_monitor(&self, id: &ContainerId, generation: u64) -> bool {
        self.monitors
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(id)
            .is_some_and(|m| m.generation == generation)
    }

    /// A test-only crash point: with `CUBBY_FAILPOINTS` naming it, the
    /// daemon dies here (SIGKILL) as a crash would kill it.
    pub(crate) fn failpoint(&self, name: &str) {
        if self.config.failpoints.contains(name) {
            tracing::warn!(failpoint = name, "failpoint reached: the daemon kills itself");
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
        }
    }

    /// Waits (at most `within`) for the background teardowns of deleted
    /// containers to finish; true when none is left.
    pub async fn settle(&self, within: std::time::Duration) -> bool {
        let pending: Vec<JoinHandle<()>> =
            self.teardowns.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain(..).collect();
        tokio::time::timeout(within, futures::future::join_all(pending)).await.is_ok()
    }

    /// Stops the exit monitors and output collectors. Containers keep
    /// running.
    pub(crate) fn shutdown(&self) {
        self.outputs.abort_all();
        for (_, Monitor { task, .. }) in self.monitors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain()
        {
            task.abort();
        }
    }
}
