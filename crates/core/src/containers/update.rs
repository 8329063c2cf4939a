//! Tweaking one tenant (`PATCH`): env vars (merged; `null` removes), limits
//! (applied live to the running cgroup and the disk quota), name (the URL
//! follows) and the snapshot cap. No other container is touched.

use std::collections::BTreeMap;
use std::sync::Arc;

use cubby_model::{
    ByteSize, Container, ContainerId, ContainerStatus, Trigger, UpdateContainer, validate_container_name, validate_env,
};

use cubby_store::ContainerRecord;

use super::ContainerService;
use crate::{Caller, Error};

/// Most snapshots a container may be allowed.
const MAX_SNAPSHOTS: u32 = 1000;
/// Longest idle timeout: 30 days.
pub(crate) const MAX_IDLE_TIMEOUT: u32 = 30 * 86_400;

/// One change to a container's env (`/containers/{id}/env`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvChange {
    /// The whole env becomes this.
    Replace(BTreeMap<String, String>),
    /// One variable is set.
    Set { key: String, value: String },
    /// One variable goes; it must exist.
    Remove { key: String },
}

impl ContainerService {
    /// Changes a container.
    pub async fn update_container(
        self: &Arc<Self>,
        caller: &Caller,
        id: &ContainerId,
        req: &UpdateContainer,
    ) -> Result<Container, Error> {
        // New lowers first (a snapshot, a restart, a rollback of their own);
        // the other changes then apply to the moved container.
        let rebase = match (&req.image, &req.rebase_on) {
            (Some(_), Some(_)) => return Err(Error::invalid("image", "give image or rebase_on, not both")),
            (Some(image), None) => Some(super::sync::Rebase::OnImage(image.clone())),
            (None, Some(on)) => Some(super::sync::Rebase::OnContainer(on.clone())),
            (None, None) => None,
        };
        if let Some(target) = rebase {
            self.rebase(caller, id, &target).await?;
        }
        let _guard = self.lock(id).await;
        let old = self.record(caller, id)?;
        self.update_locked(caller, old, req).await
    }

    /// A container's env vars.
    pub fn env(&self, caller: &Caller, id: &ContainerId) -> Result<BTreeMap<String, String>, Error> {
        Ok(self.record(caller, id)?.env)
    }

    /// Changes a container's env, as one `PATCH` would: the change applies
    /// at its next start, or now with `restart`. Answers the new env.
    pub async fn change_env(
        self: &Arc<Self>,
        caller: &Caller,
        id: &ContainerId,
        change: EnvChange,
        restart: bool,
    ) -> Result<BTreeMap<String, String>, Error> {
        let _guard = self.lock(id).await;
        let old = self.record(caller, id)?;
        let environment_vars: BTreeMap<String, Option<String>> = match change {
            EnvChange::Replace(env) => {
                let gone: Vec<String> = old.env.keys().filter(|k| !env.contains_key(*k)).cloned().collect();
                gone.into_iter().map(|k| (k, None)).chain(env.into_iter().map(|(k, v)| (k, Some(v)))).collect()
            }
            EnvChange::Set { key, value } => BTreeMap::from([(key, Some(value))]),
            EnvChange::Remove { key } if old.env.contains_key(&key) => BTreeMap::from([(key, None)]),
            EnvChange::Remove { key } => return Err(Error::NotFound { kind: "env_var", id: key }),
        };
        let req = UpdateContainer { environment_vars, restart: Some(restart), ..Default::default() };
        Ok(self.update_locked(caller, old, &req).await?.environment_vars)
    }

    /// Changes container `old`; the caller holds its lock.
    async fn update_locked(
        self: &Arc<Self>,
        caller: &Caller,
        old: ContainerRecord,
        req: &UpdateContainer,
    ) -> Result<Container, Error> {
        let id = &old.id.clone();
        if matches!(old.status, ContainerStatus::Creating | ContainerStatus::Copying | ContainerStatus::Deleting) {
            return Err(Error::Conflict {
                code: "container_busy",
                message: format!("container {id} is {}: wait and try again", old.status.as_str()),
            });
        }
        let mut rec = old.clone();

        if let Some(name) = &req.name {
            validate_container_name(name)?;
            rec.name.clone_from(name);
        }
        let mut env: BTreeMap<String, String> = rec.env.clone();
        for (k, v) in &req.environment_vars {
            match v {
                Some(v) => {
                    env.insert(k.clone(), v.clone());
                }
                None => {
                    env.remove(k);
                }
            }
        }
        validate_env("environment_vars", &env)?;
        rec.env = env;
        let quota = self.store.project(&rec.project_id)?.map(|p| p.quota).unwrap_or_default();
        rec.limits = self.resolve_limits(&quota, rec.limits, req.limits.as_ref())?;
        let subvolume = self.pool.container(rec.id.as_str());
        if let (Some(disk), true) = (rec.limits.disk, rec.limits.disk != old.limits.disk) {
            let used = self.host.btrfs.disk_usage(&subvolume).ok().flatten().map_or(0, |u| u.exclusive);
            if disk.0 < used {
                return Err(Error::invalid(
                    "limits.disk",
                    format!(
                        "{disk} is below what the container already uses ({}): free space first or give more",
                        ByteSize(used)
                    ),
                ));
            }
        }
        if let Some(max) = req.max_snapshots {
            let have = self.store.snapshots(id)?.len();
            if max == 0 || max > MAX_SNAPSHOTS {
                return Err(Error::invalid("max_snapshots", format!("give 1 to {MAX_SNAPSHOTS}")));
            }
            if (max as usize) < have {
                return Err(Error::invalid(
                    "max_snapshots",
                    format!("the container has {have} snapshots; delete some before lowering the cap to {max}"),
                ));
            }
            rec.max_snapshots = max;
        }

        if let Some(access) = req.access {
            rec.access = Some(access);
        }
        if let Some(autostart) = req.autostart {
            rec.autostart = autostart;
        }
        if let Some(idle) = req.idle_timeout_seconds {
            if idle > MAX_IDLE_TIMEOUT {
                return Err(Error::invalid(
                    "idle_timeout_seconds",
                    format!("give 0 (never) to {MAX_IDLE_TIMEOUT} seconds"),
                ));
            }
            rec.idle_timeout = Some(idle);
        }

        // Live limits first: if the kernel refuses them, nothing is stored.
        let limits_changed = rec.limits != old.limits;
        if limits_changed && old.status == ContainerStatus::Running {
            self.host
                .runtime
                .update(id.as_str(), &rec.limits)
                .await
                .map_err(Error::runtime("update limits", id.as_str()))?;
        }
        if rec.limits.disk != old.limits.disk {
            self.host
                .btrfs
                .set_disk_limit(&subvolume, rec.limits.disk.map(|d| d.0))
                .map_err(Error::storage("set disk limit", id.as_str()))?;
        }
        if let Err(e) = self.store.update_container(&rec) {
            if limits_changed && old.status == ContainerStatus::Running {
                let _ = self.host.runtime.update(id.as_str(), &old.limits).await;
            }
            if rec.limits.disk != old.limits.disk {
                let _ = self.host.btrfs.set_disk_limit(&subvolume, old.limits.disk.map(|d| d.0));
            }
            return Err(e.into());
        }
        // Name, access and autostart all live in the routes.
        self.publish_routes(&rec, old.status == ContainerStatus::Running)?;
        let rec = if req.restart.unwrap_or(false) && old.status == ContainerStatus::Running {
            let stopped =
                self.stop_locked(&rec, Trigger::Api, Some(self.config.defaults.stop_timeout), Some(caller)).await?;
            self.start_locked(&stopped, Trigger::Api, Some(caller)).await?
        } else {
            self.store.container(id)?.ok_or_else(|| Error::NotFound { kind: "container", id: id.to_string() })?
        };
        self.detailed_view(&rec)
    }
}
