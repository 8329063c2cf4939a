//! Moving a tenant onto new lowers while it keeps its own files ("rebase"):
//! a copy synced with its template (its lowers become the template's
//! current state, frozen into a layer, as a new copy would get), rebased on
//! another container, or moved onto another image. The tenant keeps its
//! own changes on top and its `/data` exactly as it saw it, lower files
//! included. A snapshot is taken first; when the tenant does not start on
//! its new lowers, it is restored and the change is refused.
//!
//! The rule for the copy's own files: what the copy wrote anywhere stays
//! and wins over the template's new version of that file; everything it
//! never touched outside `/data` comes from the template's new state.
//! `/data` is made the copy's own (an opaque directory of its upper
//! holding the merged view from before), so the template's `/data` never
//! shows through again.

use std::path::Path;
use std::sync::Arc;

use cubby_model::{Container, ContainerId, ContainerStatus, CreateSnapshot, LayerId, Trigger};
use cubby_storage::Overlay;
use cubby_storage::image::beneath::Beneath;
use cubby_store::{ContainerRecord, LayerKind};

use super::ContainerService;
use crate::{Caller, Error};

/// What a tenant is moved onto.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rebase {
    /// A container's current state (a template's, for a sync).
    OnContainer(ContainerId),
    /// An image, under the tenant's other lowers.
    OnImage(String),
}

/// The xattr that makes an upper directory hide the lowers' directory of
/// the same path.
const OPAQUE: &str = "trusted.overlay.opaque";

impl ContainerService {
    /// The template `rec` was copied from, if it still exists.
    fn template_of(&self, caller: &Caller, rec: &ContainerRecord) -> Result<ContainerRecord, Error> {
        let no_template = || Error::Conflict {
            code: "no_template",
            message: format!(
                "container {} was not copied from a container that still exists: there is nothing to sync from",
                rec.id
            ),
        };
        let lowers = self.store.container_lowers(&rec.id)?;
        let source = lowers
            .first()
            .filter(|l| l.kind == LayerKind::Frozen)
            .and_then(|l| l.source_container.clone())
            .ok_or_else(no_template)?;
        match self.record(caller, &source) {
            Ok(template) => Ok(template),
            Err(Error::NotFound { .. }) => Err(no_template()),
            Err(e) => Err(e),
        }
    }

    /// Pulls the template's newer files into copy `id` (see the module
    /// header); answers the copy as it runs after.
    pub async fn sync_container(self: &Arc<Self>, caller: &Caller, id: &ContainerId) -> Result<Container, Error> {
        let rec = self.record(caller, id)?;
        let template = self.template_of(caller, &rec)?;
        self.rebase(caller, id, &Rebase::OnContainer(template.id)).await
    }

    /// The lowers `target` gives container `rec` now.
    async fn target_chain(
        &self,
        caller: &Caller,
        rec: &ContainerRecord,
        target: &Rebase,
    ) -> Result<Vec<LayerId>, Error> {
        let _template = match target {
            Rebase::OnContainer(on) => Some(self.lock(on).await),
            Rebase::OnImage(_) => None,
        };
        let _layers = self.layers_lock.lock().await;
        self.locked_chain(caller, rec, target)
    }

    /// [`Self::target_chain`] for a caller holding the target container's
    /// lock (if any) and the layer lock.
    fn locked_chain(&self, caller: &Caller, rec: &ContainerRecord, target: &Rebase) -> Result<Vec<LayerId>, Error> {
        match target {
            Rebase::OnContainer(on) => {
                let template = self.record(caller, on)?;
                let mut chain = vec![self.frozen_layer(&template)?];
                chain.extend(self.store.container_lowers(&template.id)?.into_iter().map(|l| l.id));
                Ok(chain)
            }
            Rebase::OnImage(name) => {
                let image =
                    self.store.image(name)?.ok_or_else(|| Error::NotFound { kind: "image", id: name.clone() })?;
                let mut chain: Vec<LayerId> = self
                    .store
                    .container_lowers(&rec.id)?
                    .into_iter()
                    .filter(|l| l.kind != LayerKind::Image)
                    .map(|l| l.id)
                    .collect();
                chain.push(image.layer_id);
                Ok(chain)
            }
        }
    }

    /// Moves container `id` onto `target`'s lowers (see the module header).
    pub(crate) async fn rebase(
        self: &Arc<Self>,
        caller: &Caller,
        id: &ContainerId,
        target: &Rebase,
    ) -> Result<Container, Error> {
        self.rebase_as(caller, id, target, None).await
    }

    /// [`Self::rebase`], as a step of rollout `rollout` when given (its
    /// `container.upgraded` event names it).
    pub(crate) async fn rebase_as(
        self: &Arc<Self>,
        caller: &Caller,
        id: &ContainerId,
        target: &Rebase,
        rollout: Option<&cubby_model::RolloutId>,
    ) -> Result<Container, Error> {
        let rec = self.record(caller, id)?;
        if let Rebase::OnContainer(on) = target {
            if on == id {
                return Err(Error::invalid("rebase_on", "a container cannot be rebased on itself"));
            }
            self.record(caller, on)?;
        }
        let old_image = rec.image.clone();
        let before: Vec<LayerId> = self.store.container_lowers(&rec.id)?.into_iter().map(|l| l.id).collect();
        if self.target_chain(caller, &rec, target).await? == before {
            // Up to date: nothing to stop or swap.
            return self.detailed_view(&rec);
        }
        let rollback =
            self.create_snapshot(caller, id, &CreateSnapshot { alias: None, expiry_days: Some(7.0) }).await?;
        let guard = self.lock(id).await;
        let rec = self.record(caller, id)?;
        let was_running = rec.status == ContainerStatus::Running;
        let stopped = match rec.status {
            ContainerStatus::Running | ContainerStatus::Failed => {
                self.stop_locked(&rec, Trigger::Api, Some(self.config.defaults.stop_timeout), Some(caller)).await
            }
            ContainerStatus::Stopped => Ok(rec),
            other => Err(Error::Conflict {
                code: "container_busy",
                message: format!("container {id} is {}: wait and try again", other.as_str()),
            }),
        };
        let staging = self.pool.tmp_path("sync");
        let swapped = match stopped {
            Ok(rec) => match self.stage_sync(&rec, &staging) {
                // The template's state at this moment, frozen and swapped
                // in under the layer lock, so nothing collects it between.
                Ok(()) => {
                    let template_guard = match target {
                        Rebase::OnContainer(on) => Some(self.lock(on).await),
                        Rebase::OnImage(_) => None,
                    };
                    let layers = self.layers_lock.lock().await;
                    let result = self.locked_chain(caller, &rec, target).and_then(|chain| {
                        self.swap_in(&rec, &staging, &chain)?;
                        if let Rebase::OnImage(name) = target {
                            let mut changed = rec.clone();
                            changed.image.clone_from(name);
                            self.store.update_container(&changed)?;
                        }
                        Ok(())
                    });
                    drop((layers, template_guard));
                    result.and_then(|()| self.record(caller, id))
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if self.host.btrfs.is_subvolume(&staging).unwrap_or(false) {
            let _ = self.host.btrfs.delete_subvolume(&staging);
        }
        let rec = match swapped {
            Ok(rec) => rec,
            Err(e) => {
                // Nothing was swapped: the container is as it was, and runs
                // again if it ran; its snapshot is not needed.
                if was_running
                    && let Ok(rec) = self.record(caller, id)
                    && rec.status != ContainerStatus::Running
                    && let Err(again) = self.start_locked(&rec, Trigger::Api, Some(caller)).await
                {
                    tracing::error!(container = %id, error = %again, "could not start again after a failed rebase");
                }
                drop(guard);
                let _ = self.delete_snapshot(caller, id, &rollback.name).await;
                return Err(e);
            }
        };
        tracing::info!(container = %id, onto = ?target, "rebased");
        let started =
            if was_running { self.start_locked(&rec, Trigger::Api, Some(caller)).await.map(Some) } else { Ok(None) };
        drop(guard);
        match started {
            Ok(_) => {
                let _ = self.delete_snapshot(caller, id, &rollback.name).await;
                let _ = self.collect_layers().await;
                let rec = self.record(caller, id)?;
                let onto = match target {
                    Rebase::OnContainer(on) => serde_json::json!({ "container_id": on }),
                    Rebase::OnImage(image) => serde_json::json!({ "image": image }),
                };
                let data = serde_json::json!({ "onto": onto, "rollout_id": rollout });
                self.announce(cubby_model::EventType::ContainerUpgraded, &rec, Some(Trigger::Api), Some(caller), data);
                self.detailed_view(&rec)
            }
            Err(e) => {
                tracing::warn!(container = %id, error = %e, "the synced copy did not start; rolling back");
                self.restore_snapshot(caller, id, &rollback.name).await?;
                if let Rebase::OnImage(_) = target {
                    // The snapshot holds files and lowers; the image's name
                    // goes back too.
                    let mut back = self.record(caller, id)?;
                    back.image.clone_from(&old_image);
                    self.store.update_container(&back)?;
                }
                // The failed start left it failed: it runs again as before.
                let restarted = self.start_container(caller, id).await;
                let _ = self.delete_snapshot(caller, id, &rollback.name).await;
                if let Err(again) = restarted {
                    tracing::error!(container = %id, error = %again, "the rolled-back copy did not start either");
                }
                let _ = self.collect_layers().await;
                Err(Error::Conflict {
                    code: "sync_failed",
                    message: format!(
                        "container {id} did not start on its new lowers ({}); it was put back as it was",
                        crate::error::error_chain(&e)
                    ),
                })
            }
        }
    }

    /// A writable copy of the (stopped) container's subvolume at `staging`
    /// whose `upper/data` holds the whole `/data` the container saw.
    fn stage_sync(&self, rec: &ContainerRecord, staging: &Path) -> Result<(), Error> {
        let step = |s| Error::storage(s, rec.id.as_str());
        let own = self.pool.container(rec.id.as_str());
        self.host.btrfs.snapshot(&own, staging, false).map_err(step("snapshot for sync"))?;
        let view = self.pool.tmp_path("sync-view");
        std::fs::create_dir(&view).map_err(Error::io("create", &view))?;
        let mut lowers = vec![staging.join("upper")];
        lowers.extend(self.lower_paths(rec)?);
        let overlay = Overlay { lowers, upper: None, target: view.clone() };
        self.host.mounts.mount_overlay(&overlay).map_err(step("mount the view before sync"))?;
        let merged = staging.join("data.synced");
        let copied = (|| -> Result<bool, Error> {
            let seen = view.join("data");
            if !seen.is_dir() {
                return Ok(false);
            }
            std::fs::create_dir(&merged).map_err(Error::io("create", &merged))?;
            cubby_storage::flatten::copy_tree(&seen, &merged).map_err(step("copy /data"))?;
            let meta = std::fs::metadata(&seen).map_err(Error::io("stat", &seen))?;
            use std::os::unix::fs::MetadataExt;
            std::os::unix::fs::lchown(&merged, Some(meta.uid()), Some(meta.gid()))
                .map_err(Error::io("chown", &merged))?;
            std::fs::set_permissions(&merged, std::os::unix::fs::PermissionsExt::from_mode(meta.mode() & 0o7777))
                .map_err(Error::io("chmod", &merged))?;
            Ok(true)
        })();
        let unmounted = self.host.mounts.unmount(&view).map_err(step("unmount the view before sync"));
        let _ = std::fs::remove_dir(&view);
        let had_data = copied?;
        unmounted?;
        // The copy's own /data goes; the merged one takes its place, opaque.
        let upper = Beneath::open(&staging.join("upper")).map_err(step("open the staged upper"))?;
        upper.remove(std::ffi::OsStr::new("data")).map_err(step("replace /data"))?;
        if had_data {
            let data = staging.join("upper/data");
            std::fs::rename(&merged, &data).map_err(Error::io("move", &merged))?;
            rustix::fs::setxattr(&data, OPAQUE, b"y", rustix::fs::XattrFlags::empty())
                .map_err(|e| Error::io("mark opaque", &data)(e.into()))?;
        }
        Ok(())
    }
}
