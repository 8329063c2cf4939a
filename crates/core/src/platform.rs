//! [`Platform`]: the core's state and its start-up, plus the background
//! work (exit monitors) that keeps it true.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use cubby_model::ContainerId;
use cubby_network::{Ipam, Netlink, Nftables};
use cubby_runtime::{Cgroups, OciRuntime};
use cubby_storage::{Btrfs, Mounts, Pool, PoolOptions};
use cubby_store::Store;
use tokio::task::JoinHandle;

use crate::{Config, Error, RouteTable};

/// The host subsystems the core drives, each behind its trait. The binary
/// passes the real ones; unit tests pass the fakes.
#[derive(Debug, Clone)]
pub struct Host {
    pub btrfs: Arc<dyn Btrfs>,
    pub mounts: Arc<dyn Mounts>,
    pub runtime: Arc<dyn OciRuntime>,
    pub cgroups: Arc<dyn Cgroups>,
    pub netlink: Arc<dyn Netlink>,
    pub nft: Arc<dyn Nftables>,
}

/// The running core of one daemon.
#[derive(Debug)]
pub struct Platform {
    pub(crate) config: Config,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) host: Host,
    pub(crate) pool: Pool,
    /// Namespaces, veths, addresses and firewall rules.
    pub(crate) network: Arc<crate::network::NetworkService>,
    pub(crate) routes: RouteTable,
    locks: crate::locks::ContainerLocks,
    monitors: Mutex<HashMap<ContainerId, Monitor>>,
    generation: AtomicU64,
    background: crate::background::Background,
    /// Background teardowns of deleted containers still running.
    pub(crate) teardowns: Mutex<Vec<JoinHandle<()>>>,
    /// Serialises what creates, references or removes layers.
    pub(crate) layers_lock: tokio::sync::Mutex<()>,
    /// Wakes the qgroup sweeper.
    pub(crate) qgroup_sweep: Arc<tokio::sync::Notify>,
    /// API tokens, URL claims and the proxy's access checks.
    pub(crate) access: Arc<crate::access::AccessService>,
    /// Proxied traffic per container, for idle stops.
    pub(crate) activity: crate::wake::ActivityTable,
    /// Starts in flight on behalf of requests, shared by every waiter.
    pub(crate) wakes: crate::wake::WakeTable,
    /// Exec scripts, their secrets and runs.
    pub(crate) scripts: Arc<crate::scripts::ScriptService>,
    /// The output collectors of running containers.
    pub(crate) outputs: crate::containers::output::Collectors,
    /// The id range of containers' user namespaces, as the pool records it
    /// (`None`: containers run as host root).
    pub(crate) userns: Option<crate::config::IdRange>,
}

/// The watch on a running container's init.
#[derive(Debug)]
pub(crate) struct Monitor {
    generation: u64,
    /// A pidfd of the init, to wait on and to kill.
    init: Option<Arc<cubby_runtime::pidfd::ProcessHandle>>,
    task: JoinHandle<()>,
}

impl Platform {
    /// Prepares the host (pool, bridge, firewall table, the `minimal`
    /// image), reconciles the store with what runs, and starts background
    /// work.
    pub async fn open(config: Config, store: Arc<dyn Store>, host: Host) -> Result<Arc<Self>, Error> {
        Config::check_prefix(&config.prefix).map_err(|e| Error::invalid("prefix", e.to_string()))?;
        let ipam = Ipam::new(config.subnet).map_err(|e| Error::invalid("subnet", e.to_string()))?;
        // Another network routing these addresses would take containers'
        // traffic (or lose it to ours): refuse, and say what to change.
        let elsewhere = host
            .netlink
            .routes_inside(ipam.subnet(), &config.layout().bridge())
            .await
            .map_err(|source| Error::Netlink { step: "list routes", container: None, source: Box::new(source) })?;
        if !elsewhere.is_empty() {
            return Err(Error::Conflict {
                code: "subnet_in_use",
                message: format!(
                    "the container subnet {} is already routed through {}: choose a free range with --subnet \
                     (another Cubby daemon on this host needs its own --subnet and --prefix)",
                    ipam.subnet(),
                    elsewhere.join(", ")
                ),
            });
        }
        let data_dirs = [config.data_dir.clone(), config.data_dir.join("logs")];
        for dir in data_dirs.iter().chain(&config.layout().tenant_run_dirs()) {
            std::fs::create_dir_all(dir).map_err(Error::io("create", dir))?;
        }
        set_mode(&config.data_dir, 0o711)?;
        secure_state(&config.data_dir)?;
        // Containers' roots (unprivileged host uids with user namespaces)
        // must traverse it to their bundles; anything else (runc, which
        // makes missing parents 0700) may have made it first.
        for dir in [config.run_dir.clone(), config.run_dir.join("containers")] {
            set_mode(&dir, 0o711)?;
        }

        let pool_opts = PoolOptions {
            data_dir: config.data_dir.clone(),
            loop_size: config.pool_size,
            proc_root: config.proc_root.clone(),
        };
        let btrfs = Arc::clone(&host.btrfs);
        let pool = tokio::task::spawn_blocking(move || Pool::open(&*btrfs, &pool_opts))
            .await
            .expect("pool task does not panic")
            .map_err(|source| Error::Storage { step: "open pool", container: None, source: Box::new(source) })?;

        let claims = crate::claims::ClaimKeys::load_or_create(&config.data_dir.join("claims.key"))?;
        let secret_key = crate::sealed::SecretKey::load_or_create(&config.data_dir.join("secrets.key"))?;
        let userns = crate::userns::resolve(pool.root(), config.userns, &*store)?;
        let locks = crate::locks::ContainerLocks::default();
        let network = Arc::new(crate::network::NetworkService::new(
            Arc::clone(&store),
            &host,
            ipam,
            crate::network::NetworkSettings {
                layout: config.layout(),
                proc_root: config.proc_root.clone(),
                dns_servers: config.dns_servers.clone(),
                egress_guard: config.egress_guard.clone(),
                userns,
            },
            locks.clone(),
        ));
        let access = Arc::new(crate::access::AccessService::new(Arc::clone(&store), claims, config.urls()));
        let scripts = Arc::new(crate::scripts::ScriptService::new(
            Arc::clone(&store),
            config.data_dir.clone(),
            config.urls(),
            config.defaults.clone(),
            secret_key,
        ));
        let platform = Arc::new(Self {
            config,
            store,
            host,
            pool,
            network,
            routes: RouteTable::default(),
            locks,
            monitors: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(1),
            background: Default::default(),
            teardowns: Mutex::new(Vec::new()),
            layers_lock: tokio::sync::Mutex::new(()),
            qgroup_sweep: Arc::new(tokio::sync::Notify::new()),
            access,
            activity: crate::wake::ActivityTable::default(),
            wakes: crate::wake::WakeTable::default(),
            scripts,
            outputs: Default::default(),
            userns,
        });
        match platform.host.btrfs.enable_quotas(platform.pool.root()) {
            Ok(mode) => tracing::info!(?mode, "disk quotas on"),
            Err(e) => tracing::warn!(error = %e, "disk quotas are unavailable: disk limits will not be enforced"),
        }
        if platform.userns.is_some() {
            crate::userns::raise_key_quotas(&platform.config.proc_root, platform.network.capacity())?;
        }
        platform.scripts.seal_plain_secrets()?;
        platform.network.prepare().await?;
        platform.ensure_minimal_image().await?;
        platform.reconcile().await?;
        platform.collect_layers().await?;
        platform.background.push(crate::background::qgroups::spawn(
            Arc::clone(&platform.host.btrfs),
            platform.pool.root().to_path_buf(),
            Arc::downgrade(&platform.qgroup_sweep),
        ));
        platform.background.push(crate::background::idle::spawn(&platform));
        platform.background.push(crate::background::expiry::spawn(&platform, platform.config.defaults.expiry_interval));
        platform.sweep_qgroups();
        Ok(platform)
    }

    /// Containers' networks and their firewall and network rules.
    pub fn network(&self) -> &Arc<crate::network::NetworkService> {
        &self.network
    }

    /// API tokens, URL claims and the proxy's access checks.
    pub fn access(&self) -> &Arc<crate::access::AccessService> {
        &self.access
    }

    /// Exec scripts, their secrets and runs.
    pub fn scripts(&self) -> &Arc<crate::scripts::ScriptService> {
        &self.scripts
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The URL routing table the proxy reads.
    pub fn routes(&self) -> &RouteTable {
        &self.routes
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
            if let Some(platform) = weak.upgrade() {
                platform.on_exit(&watched, generation).await;
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

    /// Stops background work. Containers keep running.
    pub fn shutdown(&self) {
        self.outputs.abort_all();
        self.background.abort_all();
        for (_, Monitor { task, .. }) in self.monitors.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain()
        {
            task.abort();
        }
    }
}

/// The daemon's own files are its alone: the database (and its WAL), the
/// keys and tokens, the output logs and the projects' scripts. The daemon
/// runs with umask 077, so what it makes is private; this also closes
/// what an earlier version made readable.
fn secure_state(data_dir: &std::path::Path) -> Result<(), Error> {
    for file in
        ["cubby.db", "cubby.db-wal", "cubby.db-shm", "admin.token", "claims.key", "secrets.key", "endpoints.json"]
    {
        let path = data_dir.join(file);
        if path.exists() {
            set_mode(&path, 0o600)?;
        }
    }
    for dir in ["logs", "projects"] {
        let path = data_dir.join(dir);
        if path.is_dir() {
            set_mode(&path, 0o700)?;
        }
    }
    for log in std::fs::read_dir(data_dir.join("logs")).map_err(Error::io("list", data_dir.join("logs")))?.flatten() {
        set_mode(&log.path(), 0o600)?;
    }
    Ok(())
}

pub(crate) fn set_mode(path: &std::path::Path, mode: u32) -> Result<(), Error> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(Error::io("chmod", path))
}
