//! Creating a container: validate, record, make its subvolume and network,
//! start it. If any step fails, every step before it is undone and the
//! error says which step and why.

use std::sync::Arc;
use std::time::Instant;

use cubby_model::{
    ByteSize, Container, ContainerId, ContainerStatus, CreateContainer, EventType, Limits, LimitsSpec, ProjectId,
    Trigger, validate_command, validate_container_name, validate_env, validate_image_name,
};
use cubby_storage::image::minimal;
use cubby_store::{AuditEntry, ContainerRecord, NewContainer};

use tracing::Instrument;

use super::ContainerService;
use crate::{Caller, Error};

/// Bounds of limits a container may ask for.
const MIN_MEMORY: u64 = 16 << 20;
const MIN_PIDS: u32 = 16;
const MAX_PIDS: u32 = 65_536;
const MIN_CPU: f64 = 0.01;
const MIN_DISK: u64 = 1 << 20;

fn host_cpus() -> f64 {
    std::thread::available_parallelism().map(|n| n.get() as f64).unwrap_or(1.0)
}

fn host_memory(proc_root: &std::path::Path) -> u64 {
    std::fs::read_to_string(proc_root.join("meminfo"))
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(u64::MAX, |kib| kib * 1024)
}

impl ContainerService {
    /// Applies `spec` over `base`, checking every value against the host
    /// and the project's quota (which a project token cannot raise).
    pub(crate) fn resolve_limits(
        &self,
        quota: &cubby_model::ProjectQuota,
        base: Limits,
        spec: Option<&LimitsSpec>,
    ) -> Result<Limits, Error> {
        let Some(spec) = spec else { return Ok(base) };
        quota.check(spec)?;
        let mut limits = base;
        if let Some(cpu) = spec.cpu {
            let max = host_cpus();
            if !(cpu.is_finite() && (MIN_CPU..=max).contains(&cpu)) {
                return Err(Error::invalid(
                    "limits.cpu",
                    format!("{cpu} cores is out of range: give {MIN_CPU} to {max} (this host's cores)"),
                ));
            }
            limits.cpu = cpu;
        }
        if let Some(memory) = spec.memory {
            let max = host_memory(&self.config.proc_root);
            if memory.0 < MIN_MEMORY || memory.0 > max {
                return Err(Error::invalid(
                    "limits.memory",
                    format!(
                        "{memory} is out of range: give {} to {} (this host's memory)",
                        ByteSize(MIN_MEMORY),
                        ByteSize(max)
                    ),
                ));
            }
            limits.memory = memory;
        }
        if let Some(disk) = spec.disk {
            if disk.0 < MIN_DISK {
                return Err(Error::invalid(
                    "limits.disk",
                    format!("{disk} is too small: give at least {}", ByteSize(MIN_DISK)),
                ));
            }
            limits.disk = Some(disk);
        }
        if let Some(pids) = spec.pids {
            if !(MIN_PIDS..=MAX_PIDS).contains(&pids) {
                return Err(Error::invalid(
                    "limits.pids",
                    format!("{pids} is out of range: give {MIN_PIDS} to {MAX_PIDS}"),
                ));
            }
            limits.pids = pids;
        }
        Ok(limits)
    }

    /// Creates a container in `project` and, unless asked not to, starts it
    /// and waits until its app's port accepts connections.
    pub async fn create_container(
        self: &Arc<Self>,
        caller: &Caller,
        project: &ProjectId,
        req: &CreateContainer,
    ) -> Result<Container, Error> {
        let span = tracing::info_span!("container.create", project = %project, name = %req.name, container = tracing::field::Empty);
        self.create_inner(caller, project, req).instrument(span).await
    }

    async fn create_inner(
        self: &Arc<Self>,
        caller: &Caller,
        project: &ProjectId,
        req: &CreateContainer,
    ) -> Result<Container, Error> {
        let started = Instant::now();
        let quota = crate::projects::visible(&*self.store, caller, project)?.quota;
        validate_container_name(&req.name)?;
        let image_name = req.image.as_deref().unwrap_or(minimal::NAME);
        validate_image_name(image_name)?;
        let image_rec =
            self.store.image(image_name)?.ok_or_else(|| Error::NotFound { kind: "image", id: image_name.into() })?;
        let image = image_rec.image.clone();
        let command = req.command.clone().unwrap_or_else(|| image.config.command.clone());
        if command.is_empty() {
            return Err(Error::invalid(
                "command",
                format!("image `{image_name}` has no default command: give one, like [\"/bin/sh\", \"-c\", \"...\"]"),
            ));
        }
        validate_command("command", &command)?;
        validate_env("environment_vars", &req.environment_vars)?;
        let port = req.port.or(image.config.port).unwrap_or(8080);
        if port == 0 {
            return Err(Error::invalid("port", "give a TCP port from 1 to 65535"));
        }
        let limits = self.resolve_limits(&quota, quota.clamp(self.config.defaults.limits), req.limits.as_ref())?;
        if req.idle_timeout_seconds.is_some_and(|t| t > super::update::MAX_IDLE_TIMEOUT) {
            return Err(Error::invalid("idle_timeout_seconds", "give 0 (never) to 2592000 seconds"));
        }
        let mut env = image.config.env.clone();
        env.extend(req.environment_vars.clone());

        let new = NewContainer {
            id: ContainerId::random(),
            project_id: project.clone(),
            name: req.name.clone(),
            image: image.name.clone(),
            command,
            env,
            port,
            limits,
            workdir: image.config.workdir.clone(),
            user: image.config.user.clone(),
            created_at: cubby_model::now(),
            firewall: self.network.default_firewall(port),
            network: cubby_model::NetworkRules::default(),
            lowers: vec![image_rec.layer_id.clone()],
            max_snapshots: self.config.defaults.max_snapshots,
            status: ContainerStatus::Creating,
            access: req.access,
            autostart: req.autostart.unwrap_or(true),
            idle_timeout: req.idle_timeout_seconds,
        };
        // The image's layer must not be collected between the check and the insert.
        let layers = self.layers_lock.lock().await;
        let rec =
            tracing::info_span!("db.insert").in_scope(|| self.store.insert_container(&new, self.network.capacity()))?;
        drop(layers);
        tracing::Span::current().record("container", tracing::field::display(&rec.id));
        self.failpoint("create.inserted");
        let born = (EventType::ContainerCreated, serde_json::json!({ "image": image_name }));
        self.provision_new(rec, req.start.unwrap_or(true), started, caller, born).await
    }

    /// Provisions a freshly inserted container (create or copy), rolling
    /// everything back if a step fails.
    pub(crate) async fn provision_new(
        self: &Arc<Self>,
        rec: ContainerRecord,
        start: bool,
        started: Instant,
        caller: &Caller,
        born: (EventType, serde_json::Value),
    ) -> Result<Container, Error> {
        let guard = self.lock(&rec.id).await;
        match self.provision(&rec, start).await {
            Ok(rec) => {
                drop(guard);
                self.announce(born.0, &rec, Some(Trigger::Api), Some(caller), born.1);
                if rec.status == ContainerStatus::Running {
                    self.announce(
                        EventType::ContainerStarted,
                        &rec,
                        Some(Trigger::Api),
                        Some(caller),
                        serde_json::json!({}),
                    );
                }
                tracing::info!(container = %rec.id, ms = crate::error::elapsed_ms(started), "container created");
                self.detailed_view(&rec)
            }
            Err(err) => {
                tracing::warn!(container = %rec.id, error = %err, "create failed; rolling back");
                if let Err(cleanup) = self.destroy(&rec).await {
                    tracing::error!(container = %rec.id, error = %cleanup, "rollback left debris; `cubby doctor` will report it");
                }
                self.access.routes.remove(&rec.id);
                self.store.delete_container(
                    &rec.id,
                    &AuditEntry {
                        at: cubby_model::now(),
                        action: "container.create_failed".into(),
                        project_id: Some(rec.project_id.clone()),
                        container_id: Some(rec.id.clone()),
                    },
                )?;
                drop(guard);
                if let Err(e) = self.collect_layers().await {
                    tracing::warn!(error = %e, "layer collection after a failed create");
                }
                Err(err)
            }
        }
    }

    /// Makes the host resources of a recorded container and starts it.
    async fn provision(self: &Arc<Self>, rec: &ContainerRecord, start: bool) -> Result<ContainerRecord, Error> {
        let t0 = Instant::now();
        let paths = self.paths(&rec.id, rec.slot);
        {
            let _s = tracing::info_span!("storage.subvolume").entered();
            self.host
                .btrfs
                .create_subvolume(&paths.subvolume)
                .map_err(Error::storage("create subvolume", rec.id.as_str()))?;
            for dir in [&paths.upper, &paths.work] {
                std::fs::create_dir(dir).map_err(Error::io("create", dir))?;
            }
            // The upper's root is the container's `/`: 0755 whatever the
            // daemon's umask, or its non-root users could not enter it.
            crate::platform::set_mode(&paths.upper, 0o755)?;
            // The upper's root is the container's `/`: its root owns it.
            if let Some(r) = self.userns {
                std::os::unix::fs::chown(&paths.upper, Some(r.host_base), Some(r.host_base))
                    .map_err(Error::io("chown", &paths.upper))?;
            }
            if let Some(limit) = rec.limits.disk {
                self.host
                    .btrfs
                    .set_disk_limit(&paths.subvolume, Some(limit.0))
                    .map_err(Error::storage("set disk limit", rec.id.as_str()))?;
            }
        }
        self.failpoint("create.subvolume");
        self.network.connect(rec).instrument(tracing::info_span!("network.connect")).await?;
        self.failpoint("create.connected");
        if start {
            self.run_locked(rec, Trigger::Api).await
        } else {
            let rec = self
                .store
                .set_status(&rec.id, ContainerStatus::Stopped, Trigger::Api, crate::error::elapsed_ms(t0))?
                .ok_or_else(|| Error::NotFound { kind: "container", id: rec.id.to_string() })?;
            self.publish_routes(&rec, false)?;
            Ok(rec)
        }
    }
}
