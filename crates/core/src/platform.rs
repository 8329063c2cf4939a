//! [`Platform`]: the core's state and its start-up, plus the background
//! work (exit monitors) that keeps it true.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use cubby_model::ContainerId;
use cubby_network::{BaseRules, BridgeConfig, Ipam, Netlink, Nftables, ipam};
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
    pub(crate) ipam: Ipam,
    pub(crate) routes: RouteTable,
    locks: crate::locks::ContainerLocks,
    monitors: Mutex<HashMap<ContainerId, Monitor>>,
    generation: AtomicU64,
    background: Mutex<Vec<JoinHandle<()>>>,
    /// Background teardowns of deleted containers still running.
    pub(crate) teardowns: Mutex<Vec<JoinHandle<()>>>,
    /// Serialises what creates, references or removes layers.
    pub(crate) layers_lock: tokio::sync::Mutex<()>,
    /// Wakes the qgroup sweeper.
    pub(crate) qgroup_sweep: Arc<tokio::sync::Notify>,
    /// Signs and checks URL claims.
    pub(crate) claims: crate::claims::ClaimKeys,
    /// Proxied traffic per container, for idle stops.
    pub(crate) activity: crate::wake::ActivityTable,
    /// Starts in flight on behalf of requests, shared by every waiter.
    pub(crate) wakes: crate::wake::WakeTable,
    /// Caches and locks of exec scripts.
    pub(crate) scripts: crate::scripts::ScriptState,
    /// Seals project secrets at rest.
    pub(crate) secret_key: crate::sealed::SecretKey,
    /// The output collectors of running containers.
    pub(crate) outputs: crate::containers::output::Collectors,
    /// Bounds the scripts running at once.
    pub(crate) script_slots: Arc<tokio::sync::Semaphore>,
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
        Config::check_prefix(&config.prefix).map_err(|m| Error::invalid("prefix", m))?;
        let ipam = Ipam::new(config.subnet).map_err(|e| Error::invalid("subnet", e.to_string()))?;
        // Another network routing these addresses would take containers'
        // traffic (or lose it to ours): refuse, and say what to change.
        let elsewhere = host
            .netlink
            .routes_inside(ipam.subnet(), &ipam::bridge_name(&config.prefix))
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
        let platform = Arc::new(Self {
            config,
            store,
            host,
            pool,
            ipam,
            routes: RouteTable::default(),
            locks: Default::default(),
            monitors: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(1),
            background: Mutex::new(Vec::new()),
            teardowns: Mutex::new(Vec::new()),
            layers_lock: tokio::sync::Mutex::new(()),
            qgroup_sweep: Arc::new(tokio::sync::Notify::new()),
            claims,
            activity: crate::wake::ActivityTable::default(),
            wakes: crate::wake::WakeTable::default(),
            scripts: crate::scripts::ScriptState::default(),
            outputs: Default::default(),
            secret_key,
            script_slots: Arc::new(tokio::sync::Semaphore::new(crate::scripts::run::MAX_RUNNING)),
            userns,
        });
        match platform.host.btrfs.enable_quotas(platform.pool.root()) {
            Ok(mode) => tracing::info!(?mode, "disk quotas on"),
            Err(e) => tracing::warn!(error = %e, "disk quotas are unavailable: disk limits will not be enforced"),
        }
        if platform.userns.is_some() {
            crate::userns::raise_key_quotas(&platform.config.proc_root, platform.ipam.capacity())?;
        }
        platform.seal_plain_secrets()?;
        platform.prepare_network().await?;
        platform.ensure_minimal_image().await?;
        platform.reconcile().await?;
        platform.collect_layers().await?;
        platform.spawn_qgroup_sweeper();
        platform.spawn_idle_reaper();
        platform.sweep_qgroups();
        platform.spawn_snapshot_expiry(platform.config.defaults.expiry_interval);
        Ok(platform)
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

    /// The daemon's bridge name.
    pub fn bridge(&self) -> String {
        self.config.layout().bridge()
    }

    async fn prepare_network(&self) -> Result<(), Error> {
        let forward = self.config.proc_root.join("sys/net/ipv4/ip_forward");
        if std::fs::read_to_string(&forward).map(|v| v.trim() != "1").unwrap_or(true) {
            tracing::info!("enabling IPv4 forwarding for container egress");
            std::fs::write(&forward, "1").map_err(Error::io("enable forwarding in", &forward))?;
        }
        let bridge = BridgeConfig {
            name: self.bridge(),
            gateway: self.ipam.gateway(),
            prefix_len: self.ipam.subnet().prefix_len(),
        };
        self.host.netlink.ensure_bridge(&bridge).await.map_err(|source| Error::Netlink {
            step: "create bridge",
            container: None,
            source: Box::new(source),
        })?;
        // The base tables and every container's chains, in one transaction:
        // there is no moment when a container runs without its rules.
        let base = BaseRules {
            table: self.config.prefix.clone(),
            bridge: self.bridge(),
            veth_prefix: self.config.layout().link_prefix(),
            subnet: self.ipam.subnet(),
            guard: self.config.egress_guard.clone(),
        };
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

    pub(crate) fn push_background(&self, task: JoinHandle<()>) {
        self.background.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(task);
    }

    /// Stops background work. Containers keep running.
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

    pub fn shutdown(&self) {
        self.outputs.abort_all();
        for task in self.background.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain(..) {
            task.abort();
        }
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
