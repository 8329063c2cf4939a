//! Start, stop, restart, and noticing a container that exits on its own.
//!
//! Start: network namespace (if a reboot cleared it), the files init and
//! the resolver read, the OCI bundle, then `runtime run` with the overlay
//! root mounted in the private namespace the runtime creates the container
//! from (never on the host), then a connect probe on the app's port. Stop:
//! SIGTERM to init (which forwards it), SIGKILL after the grace period,
//! runtime state removed; the root goes with the container's own mount
//! namespace. A stopped container holds no process and no memory; its
//! subvolume, address and network namespace stay.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cubby_model::{Container, ContainerId, ContainerStatus, EventType, Trigger};
use cubby_runtime::bundle::{self, BundleSpec};
use cubby_runtime::pidfd::ProcessHandle;
use cubby_runtime::process::{ProcessFile, parse_user};
use cubby_runtime::{PrivateMount, RuntimeStatus};
use cubby_storage::Overlay;
use cubby_store::ContainerRecord;
use nix::mount::MsFlags;
use tracing::{Instrument, info_span};

use super::ContainerPaths;
use super::ContainerService;
use crate::events::Happened;
use crate::{Caller, Error};

const SIGTERM: i32 = 15;
const SIGKILL: i32 = 9;

fn ms(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

fn alive(pid: u32) -> bool {
    // A zombie has exited: only its entry in the process table remains.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').map(|(_, rest)| !rest.trim_start().starts_with('Z')).unwrap_or(false),
        Err(_) => false,
    }
}

async fn wait_exit(pid: Option<u32>, within: Duration) -> bool {
    let Some(pid) = pid else { return true };
    match ProcessHandle::open(pid) {
        Ok(handle) => tokio::time::timeout(within, handle.exited()).await.is_ok(),
        Err(_) => true,
    }
}

impl ContainerService {
    /// Starts a stopped (or failed) container. Starting a running one
    /// changes nothing.
    pub async fn start_container(self: &Arc<Self>, caller: &Caller, id: &ContainerId) -> Result<Container, Error> {
        let _guard = self.lock(id).await;
        let rec = self.record(caller, id)?;
        match rec.status {
            ContainerStatus::Running => self.view(&rec),
            ContainerStatus::Stopped | ContainerStatus::Failed => {
                self.view(&self.start_locked(&rec, Trigger::Api, Some(caller)).await?)
            }
            other => Err(busy(id, other)),
        }
    }

    /// Stops a running container: SIGTERM, then SIGKILL after the grace
    /// period. Stopping a stopped one changes nothing.
    pub async fn stop_container(self: &Arc<Self>, caller: &Caller, id: &ContainerId) -> Result<Container, Error> {
        let _guard = self.lock(id).await;
        let rec = self.record(caller, id)?;
        match rec.status {
            ContainerStatus::Stopped => self.view(&rec),
            ContainerStatus::Running | ContainerStatus::Failed => self.view(
                &self.stop_locked(&rec, Trigger::Api, Some(self.config.defaults.stop_timeout), Some(caller)).await?,
            ),
            other => Err(busy(id, other)),
        }
    }

    /// Stops (if running) and starts a container.
    pub async fn restart_container(self: &Arc<Self>, caller: &Caller, id: &ContainerId) -> Result<Container, Error> {
        let _guard = self.lock(id).await;
        let rec = self.record(caller, id)?;
        match rec.status {
            ContainerStatus::Running | ContainerStatus::Stopped | ContainerStatus::Failed => {
                let rec = if rec.status == ContainerStatus::Stopped {
                    rec
                } else {
                    self.stop_locked(&rec, Trigger::Api, Some(self.config.defaults.stop_timeout), Some(caller)).await?
                };
                self.view(&self.start_locked(&rec, Trigger::Api, Some(caller)).await?)
            }
            other => Err(busy(id, other)),
        }
    }

    /// Starts a container; the caller holds its lock. On failure the
    /// runtime state is removed and the container is marked failed.
    pub(crate) async fn start_locked(
        self: &Arc<Self>,
        rec: &ContainerRecord,
        trigger: Trigger,
        caller: Option<&Caller>,
    ) -> Result<ContainerRecord, Error> {
        let rec = self.run_locked(rec, trigger).await?;
        let kind = if trigger == Trigger::Wake { EventType::ContainerWoken } else { EventType::ContainerStarted };
        self.announce(kind, &rec, Some(trigger), caller, serde_json::json!({}));
        Ok(rec)
    }

    /// Tells of a change to container `rec`.
    pub(crate) fn announce(
        &self,
        kind: EventType,
        rec: &ContainerRecord,
        trigger: Option<Trigger>,
        caller: Option<&Caller>,
        data: serde_json::Value,
    ) {
        self.events.emit(Happened { kind, project: &rec.project_id, container: Some(&rec.id), trigger, caller, data });
    }

    /// [`Self::start_locked`] without the event (a create tells of its
    /// start itself, after it tells of the container).
    pub(crate) async fn run_locked(
        self: &Arc<Self>,
        rec: &ContainerRecord,
        trigger: Trigger,
    ) -> Result<ContainerRecord, Error> {
        let t0 = Instant::now();
        let span = info_span!("container.start", container = %rec.id, trigger = trigger.as_str());
        match self.boot(rec).instrument(span.clone()).await {
            Ok(pid) => {
                self.failpoint("start.booted");
                let _s = span.enter();
                let rec = info_span!("db.status")
                    .in_scope(|| self.store.set_status(&rec.id, ContainerStatus::Running, trigger, ms(t0)))?
                    .ok_or_else(|| Error::NotFound { kind: "container", id: rec.id.to_string() })?;
                self.publish_routes(&rec, true)?;
                self.activity.touch(&rec.id);
                let net_dev = super::usage::read_net_dev(&self.config.proc_root);
                self.record_usage(&rec, cubby_store::UsageEdge::Start, &net_dev);
                self.monitor(&rec.id, pid);
                self.watch.run_started(&rec.id);
                tracing::info!(container = %rec.id, ms = ms(t0), trigger = trigger.as_str(), "container started");
                Ok(rec)
            }
            Err(err) => {
                if let Err(e) = self.halt(rec, None).await {
                    tracing::warn!(container = %rec.id, error = %e, "cleanup after a failed start");
                }
                self.store.set_status(&rec.id, ContainerStatus::Failed, trigger, ms(t0))?;
                self.access.routes.set_running(&rec.id, false);
                Err(err)
            }
        }
    }

    /// Stops a container; the caller holds its lock.
    pub(crate) async fn stop_locked(
        &self,
        rec: &ContainerRecord,
        trigger: Trigger,
        grace: Option<Duration>,
        caller: Option<&Caller>,
    ) -> Result<ContainerRecord, Error> {
        let t0 = Instant::now();
        self.halt(rec, grace)
            .instrument(info_span!("container.stop", container = %rec.id, trigger = trigger.as_str()))
            .await?;
        self.access.routes.set_running(&rec.id, false);
        let rec = self
            .store
            .set_status(&rec.id, ContainerStatus::Stopped, trigger, ms(t0))?
            .ok_or_else(|| Error::NotFound { kind: "container", id: rec.id.to_string() })?;
        tracing::info!(container = %rec.id, ms = ms(t0), trigger = trigger.as_str(), "container stopped");
        let (kind, data) = match trigger {
            Trigger::Idle => (EventType::ContainerIdleStopped, serde_json::json!({})),
            Trigger::Exited => (EventType::ContainerExited, serde_json::json!({ "exit_code": self.exit_code(&rec) })),
            _ => (EventType::ContainerStopped, serde_json::json!({})),
        };
        self.announce(kind, &rec, Some(trigger), caller, data);
        Ok(rec)
    }

    /// Brings the container up and returns its init's host pid.
    async fn boot(&self, rec: &ContainerRecord) -> Result<u32, Error> {
        let id = rec.id.as_str();
        let paths = self.paths(&rec.id, rec.slot);
        self.network.ensure_connected(rec).await?;
        std::fs::create_dir_all(&paths.rootfs).map_err(Error::io("create", &paths.rootfs))?;
        // The runtime's init (the container's root, with a user namespace)
        // reaches the files it mounts from here by their paths.
        crate::platform::set_mode(&paths.bundle, 0o711)?;
        // A root an earlier version mounted on the host (its container died
        // while no daemon ran) would share the upper dir with the new one.
        self.host.mounts.unmount(&paths.rootfs).map_err(Error::storage("unmount a stale rootfs", id))?;
        let private = {
            let _s = info_span!("storage.layers").entered();
            let root = Overlay {
                lowers: self.lower_paths(rec)?,
                upper: Some((paths.upper.clone(), paths.work.clone())),
                target: paths.rootfs.clone(),
            };
            self.private_mounts(root, &paths)
        };
        {
            let _s = info_span!("runtime.bundle").entered();
            self.write_bundle(rec)?;
        }
        let runtime = &self.host.runtime;
        runtime
            .delete(id, true)
            .instrument(info_span!("runtime.clear"))
            .await
            .map_err(Error::runtime("remove stale runtime state", id))?;
        self.collect_output(&rec.id, rec.slot)?;
        let pid = runtime
            .run(id, &paths.bundle, paths.output.path(), &private)
            .instrument(info_span!("runtime.run"))
            .await
            .map_err(Error::runtime("run", id))?;
        self.wait_ready(rec, pid).instrument(info_span!("readiness")).await?;
        Ok(pid)
    }

    /// What the runtime mounts for this container alone, in the private
    /// namespace it creates the container from: the overlay root, and
    /// binds of the files pinning its network (and user) namespace, which
    /// that namespace does not show. The host's mount table keeps none of
    /// them, so it does not grow with every running tenant.
    fn private_mounts(&self, root: Overlay, paths: &ContainerPaths) -> Vec<PrivateMount> {
        let mut flags = MsFlags::MS_NOATIME;
        if root.upper.is_none() {
            flags |= MsFlags::MS_RDONLY;
        }
        let mut mounts = vec![PrivateMount::Filesystem {
            fstype: "overlay".into(),
            source: "overlay".into(),
            data: root.options(),
            flags,
            target: root.target,
        }];
        let pins = std::iter::once(&paths.netns).chain(self.userns.is_some().then_some(&paths.userns));
        mounts.extend(pins.map(|pin| PrivateMount::Bind { source: pin.clone(), target: pin.clone() }));
        mounts
    }

    fn write_bundle(&self, rec: &ContainerRecord) -> Result<(), Error> {
        let paths = self.paths(&rec.id, rec.slot);
        let address = self.network.address(rec.slot)?;
        let network = self.store.network(&rec.id)?;
        let env: Vec<String> = self.process_env(rec, &network).iter().map(|(k, v)| format!("{k}={v}")).collect();
        let (uid, gid) = parse_user(rec.user.as_deref());
        ProcessFile {
            args: rec.command.clone(),
            env,
            cwd: rec.workdir.clone().unwrap_or_else(|| "/".into()),
            uid,
            gid,
            additional_gids: Vec::new(),
            exit_file: Some(cubby_runtime::process::EXIT_FILE_PATH.into()),
        }
        .write(&paths.process_file, self.userns.map(|r| (r.host_base, r.host_base)))
        .map_err(Error::runtime("write process.json", rec.id.as_str()))?;
        // Empty until this run's init reports; its root may write it.
        let exit = std::fs::File::create(&paths.exit_report).map_err(Error::io("create", &paths.exit_report))?;
        if let Some(r) = self.userns {
            std::os::unix::fs::fchown(&exit, Some(r.host_base), Some(r.host_base))
                .map_err(Error::io("chown", &paths.exit_report))?;
        }
        let resolv = self.network.resolv_conf(&network);
        let hosts =
            format!("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n{address}\t{}\n", rec.name);
        for (path, content) in
            [(&paths.resolv_conf, resolv), (&paths.hosts, hosts), (&paths.hostname, format!("{}\n", rec.name))]
        {
            std::fs::write(path, content).map_err(Error::io("write", path))?;
            // Read by the container's processes (the daemon's umask is 077).
            crate::platform::set_mode(path, 0o644)?;
        }
        let spec = bundle::spec(&BundleSpec {
            id: rec.id.to_string(),
            hostname: rec.name.clone(),
            rootfs: paths.rootfs.clone(),
            netns: paths.netns.clone(),
            cgroups_path: paths.cgroup.clone(),
            limits: rec.limits,
            ramdisk_bytes: self.config.defaults.ramdisk.0,
            init_binary: self.config.helpers.init.clone(),
            process_file: paths.process_file.clone(),
            exit_file: paths.exit_report.clone(),
            resolv_conf: paths.resolv_conf.clone(),
            hosts: paths.hosts.clone(),
            hostname_file: paths.hostname.clone(),
            seccomp: self.config.seccomp.clone(),
            userns: self.userns.map(|r| cubby_runtime::bundle::UserNamespaceSpec {
                path: paths.userns.clone(),
                host_base: r.host_base,
                size: r.size,
            }),
        })
        .map_err(Error::runtime("build OCI spec", rec.id.as_str()))?;
        bundle::write(&paths.bundle, &spec).map_err(Error::runtime("write OCI bundle", rec.id.as_str()))
    }

    /// The environment of the container's processes: its env, `PORT`,
    /// `HOSTNAME`, and the proxy variables in proxy mode.
    pub(crate) fn process_env(
        &self,
        rec: &ContainerRecord,
        network: &cubby_model::NetworkRules,
    ) -> std::collections::BTreeMap<String, String> {
        let mut env = rec.env.clone();
        env.entry("PORT".into()).or_insert_with(|| rec.port.to_string());
        env.insert("HOSTNAME".into(), rec.name.clone());
        if let (cubby_model::NetworkMode::Proxy, Some(proxy)) = (network.mode, &network.proxy) {
            for key in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"] {
                env.insert(key.into(), proxy.clone());
            }
            for key in ["NO_PROXY", "no_proxy"] {
                env.insert(key.into(), "localhost,127.0.0.1".into());
            }
        }
        env
    }

    /// Waits until the app's port accepts a connection. Fails if the
    /// container's init exits first; gives up quietly after the ready
    /// timeout (an app may not serve HTTP at all).
    async fn wait_ready(&self, rec: &ContainerRecord, pid: u32) -> Result<(), Error> {
        let address = self.network.address(rec.slot)?;
        let target = SocketAddr::from((address, rec.port));
        let deadline = Instant::now() + self.config.defaults.ready_timeout;
        let mut delay = Duration::from_millis(1);
        loop {
            if let Ok(Ok(_)) =
                tokio::time::timeout(Duration::from_millis(250), tokio::net::TcpStream::connect(target)).await
            {
                return Ok(());
            }
            if !alive(pid) {
                self.drain_output(&rec.id).await;
                let paths = self.paths(&rec.id, rec.slot);
                let tail = paths.log.tail(2048).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
                return Err(Error::StartFailed {
                    id: rec.id.to_string(),
                    reason: "its main process exited before its port accepted connections".into(),
                    log_tail: tail,
                });
            }
            if Instant::now() >= deadline {
                tracing::warn!(container = %rec.id, port = rec.port, "app did not open its port in time; treating it as running");
                return Ok(());
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_millis(50));
        }
    }

    /// Ends every process of the container (SIGTERM first if `grace`),
    /// removes its runtime state (and a root an earlier version mounted on
    /// the host). Idempotent.
    pub(crate) async fn halt(&self, rec: &ContainerRecord, grace: Option<Duration>) -> Result<(), Error> {
        let id = rec.id.as_str();
        let paths = self.paths(&rec.id, rec.slot);
        let runtime = &self.host.runtime;
        if let Some(init) = self.unmonitor(&rec.id) {
            // The init we watch: signal it through its pidfd, no runtime call.
            let mut gone = false;
            if let Some(grace) = grace {
                init.signal(SIGTERM).map_err(Error::io("signal the init of", &paths.bundle))?;
                gone = tokio::time::timeout(grace, init.exited()).await.is_ok();
            }
            if !gone {
                init.kill().map_err(Error::io("kill the init of", &paths.bundle))?;
                let _ = tokio::time::timeout(Duration::from_secs(5), init.exited()).await;
            }
        } else if let Some(state) = runtime
            .state(id)
            .await
            .map_err(Error::runtime("read state", id))?
            .filter(|s| s.status != RuntimeStatus::Stopped)
        {
            let mut gone = false;
            if let Some(grace) = grace.filter(|_| state.status == RuntimeStatus::Running) {
                runtime.kill(id, SIGTERM, false).await.map_err(Error::runtime("send SIGTERM", id))?;
                gone = wait_exit(state.pid, grace).await;
            }
            if !gone {
                runtime.kill(id, SIGKILL, true).await.map_err(Error::runtime("send SIGKILL", id))?;
                wait_exit(state.pid, Duration::from_secs(5)).await;
            }
        }
        self.drain_output(&rec.id).await;
        self.check_oom(rec);
        // The run's last reading, while its cgroup still counts.
        self.record_usage(rec, cubby_store::UsageEdge::End, &super::usage::read_net_dev(&self.config.proc_root));
        runtime.delete(id, true).await.map_err(Error::runtime("delete", id))?;
        self.host.mounts.unmount(&paths.rootfs).map_err(Error::storage("unmount rootfs", id))?;
        self.host.cgroups.remove(&paths.cgroup).map_err(Error::runtime("remove cgroup", id))?;
        Ok(())
    }

    /// Called by a container's monitor when its init has exited.
    pub(crate) async fn on_exit(self: &Arc<Self>, id: &ContainerId, generation: u64) {
        let _guard = self.lock(id).await;
        if !self.is_current_monitor(id, generation) {
            return;
        }
        self.forget_monitor(id);
        let Ok(Some(rec)) = self.store.container(id) else { return };
        if rec.status != ContainerStatus::Running {
            return;
        }
        tracing::info!(container = %id, "container's main process exited");
        if let Err(e) = self.stop_locked(&rec, Trigger::Exited, None, None).await {
            tracing::warn!(container = %id, error = %e, "cleanup after exit");
        }
    }
}

fn busy(id: &ContainerId, status: ContainerStatus) -> Error {
    Error::Conflict {
        code: "container_busy",
        message: format!("container {id} is {}: wait until it is running or stopped and try again", status.as_str()),
    }
}
