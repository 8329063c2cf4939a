//! [`Platform`]: the facade over the core's services, and its start-up:
//! the host prepared, the services built, the store reconciled with what
//! runs, and the background tasks started.

use std::sync::Arc;

use cubby_network::{Ipam, Netlink, Nftables};
use cubby_runtime::{Cgroups, OciRuntime};
use cubby_storage::{Btrfs, Mounts, Pool, PoolOptions};
use cubby_store::Store;

use crate::containers::ContainerService;
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

/// The running core of one daemon: a facade over its services, plus what
/// spans them (projects, reconcile at start, the background tasks).
#[derive(Debug)]
pub struct Platform {
    pub(crate) config: Config,
    pub(crate) store: Arc<dyn Store>,
    /// Containers' lifecycle, layers, snapshots and images.
    pub(crate) containers: Arc<ContainerService>,
    /// Namespaces, veths, addresses and firewall rules.
    pub(crate) network: Arc<crate::network::NetworkService>,
    /// API tokens, URL claims, routes, aliases and the proxy's access checks.
    pub(crate) access: Arc<crate::access::AccessService>,
    /// Exec scripts, their secrets and runs.
    pub(crate) scripts: Arc<crate::scripts::ScriptService>,
    /// The event log and its live feed.
    pub(crate) events: Arc<crate::events::Events>,
    /// Projects' webhooks.
    pub(crate) webhooks: Arc<crate::webhooks::WebhookService>,
    /// Requests through tenants' URLs, per project.
    pub(crate) access_logs: Arc<crate::access_log::AccessLogs>,
    pub(crate) background: crate::background::Background,
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
        let events = Arc::new(crate::events::Events::new(Arc::clone(&store)));
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
            Arc::clone(&events),
        ));
        let access = Arc::new(crate::access::AccessService::new(Arc::clone(&store), claims, config.urls()));
        let (access_logs, access_log_writer) =
            crate::access_log::AccessLogs::start(Arc::clone(&store), config.data_dir.clone());
        let webhooks = Arc::new(crate::webhooks::WebhookService::new(Arc::clone(&store), secret_key.clone()));
        let scripts = Arc::new(crate::scripts::ScriptService::new(
            Arc::clone(&store),
            config.data_dir.clone(),
            config.urls(),
            config.defaults.clone(),
            secret_key,
            Arc::clone(&events),
        ));
        let containers = Arc::new(ContainerService::new(crate::containers::Parts {
            config: config.clone(),
            store: Arc::clone(&store),
            host,
            pool,
            network: Arc::clone(&network),
            access: Arc::clone(&access),
            locks,
            userns,
            events: Arc::clone(&events),
        }));
        let platform = Arc::new(Self {
            config,
            store,
            containers,
            network,
            access,
            scripts,
            events,
            webhooks,
            access_logs,
            background: Default::default(),
        });
        platform.background.push(access_log_writer);
        let containers = &platform.containers;
        match containers.host.btrfs.enable_quotas(containers.pool.root()) {
            Ok(mode) => tracing::info!(?mode, "disk quotas on"),
            Err(e) => tracing::warn!(error = %e, "disk quotas are unavailable: disk limits will not be enforced"),
        }
        if userns.is_some() {
            crate::userns::raise_key_quotas(&platform.config.proc_root, platform.network.capacity())?;
        }
        platform.scripts.seal_plain_secrets()?;
        platform.network.prepare().await?;
        containers.ensure_minimal_image().await?;
        containers.reconcile().await?;
        containers.collect_layers().await?;
        platform.background.push(crate::background::qgroups::spawn(
            Arc::clone(&containers.host.btrfs),
            containers.pool.root().to_path_buf(),
            Arc::downgrade(&containers.qgroup_sweep),
        ));
        platform.background.push(crate::background::idle::spawn(containers));
        platform
            .background
            .push(crate::background::expiry::spawn(containers, platform.config.defaults.expiry_interval));
        let defaults = &platform.config.defaults;
        platform.background.push(crate::background::usage::spawn(
            containers,
            defaults.usage_interval,
            defaults.usage_retention,
        ));
        containers.sweep_qgroups();
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

    /// Containers' lifecycle, layers, snapshots and images.
    pub fn containers(&self) -> &Arc<ContainerService> {
        &self.containers
    }

    /// The event log and its live feed.
    pub fn events(&self) -> &Arc<crate::events::Events> {
        &self.events
    }

    /// Requests through tenants' URLs, per project.
    pub fn access_logs(&self) -> &Arc<crate::access_log::AccessLogs> {
        &self.access_logs
    }

    /// Projects' webhooks.
    pub fn webhooks(&self) -> &Arc<crate::webhooks::WebhookService> {
        &self.webhooks
    }

    /// Starts delivering webhooks through `sender` (the daemon passes the
    /// scripts' `fetch` client, with its destination checks).
    pub fn deliver_webhooks(&self, sender: Arc<dyn crate::webhooks::deliver::WebhookSender>) {
        self.background.push(crate::webhooks::deliver::spawn(Arc::clone(&self.webhooks), &self.events, sender));
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
        self.access.routes()
    }

    /// The open pool.
    pub fn pool(&self) -> &Pool {
        self.containers.pool()
    }

    /// Waits (at most `within`) for the background teardowns of deleted
    /// containers to finish; true when none is left.
    pub async fn settle(&self, within: std::time::Duration) -> bool {
        self.containers.settle(within).await
    }

    /// Stops background work. Containers keep running.
    pub fn shutdown(&self) {
        self.background.abort_all();
        self.containers.shutdown();
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
