//! Rollouts: one upgrade (a sync with a template, or a move onto an image)
//! applied to many tenants of a project, a batch at a time. Each tenant
//! goes through [`Rebase`](super::sync): a snapshot first, the swap, a
//! start, and its snapshot restored when it does not start. A batch with
//! such a failure ends the rollout (`failed`): the tenants after it are
//! not tried, so a broken release reaches at most one batch.
//!
//! Rollouts are kept in memory while they run and after (the last
//! [`KEPT`]); their progress is in events (`rollout.started`,
//! `container.upgraded`, `rollout.finished`), which are stored. A daemon
//! that stops mid-rollout leaves every tenant either upgraded or as it was
//! (each step is crash-safe); the rollout itself is not resumed.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use cubby_model::{
    ContainerId, ContainerStatus, CreateRollout, EventType, ProjectId, Rollout, RolloutFailure, RolloutId,
    RolloutStatus,
};
use cubby_store::LayerKind;

use super::ContainerService;
use super::sync::Rebase;
use crate::events::Happened;
use crate::{Caller, Error};

/// Rollouts remembered (the oldest finished ones go first).
const KEPT: usize = 100;
/// Largest batch.
const MAX_BATCH: u32 = 100;

/// The rollouts of this daemon.
#[derive(Debug, Default)]
pub(crate) struct Rollouts {
    list: Mutex<VecDeque<Rollout>>,
}

impl Rollouts {
    fn update(&self, id: &RolloutId, change: impl FnOnce(&mut Rollout)) {
        let mut list = self.list.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(r) = list.iter_mut().find(|r| &r.id == id) {
            change(r);
        }
    }

    fn insert(&self, rollout: Rollout) {
        let mut list = self.list.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if list.len() >= KEPT
            && let Some(i) = list.iter().position(|r| r.status != RolloutStatus::Running)
        {
            list.remove(i);
        }
        list.push_back(rollout);
    }

    fn get(&self, project: &ProjectId, id: &RolloutId) -> Option<Rollout> {
        let list = self.list.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        list.iter().find(|r| &r.id == id && &r.project_id == project).cloned()
    }

    fn of(&self, project: &ProjectId) -> Vec<Rollout> {
        let list = self.list.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        list.iter().filter(|r| &r.project_id == project).cloned().collect()
    }
}

impl ContainerService {
    /// Starts a rollout over project `project`'s tenants; answers at once,
    /// with the tenants it applies to. Progress: [`Self::rollout`] and
    /// events.
    pub async fn start_rollout(
        self: &Arc<Self>,
        caller: &Caller,
        project: &ProjectId,
        req: &CreateRollout,
    ) -> Result<Rollout, Error> {
        crate::projects::visible(&*self.store, caller, project)?;
        let batch_size = req.batch_size.unwrap_or(5);
        if !(1..=MAX_BATCH).contains(&batch_size) {
            return Err(Error::invalid("batch_size", format!("give 1 to {MAX_BATCH}")));
        }
        let max_unavailable = req.max_unavailable.unwrap_or(batch_size);
        if max_unavailable == 0 {
            return Err(Error::invalid("max_unavailable", "give at least 1"));
        }
        let (target, tenants) = match (&req.template, &req.image) {
            (Some(template), None) => {
                if req.from_image.is_some() {
                    return Err(Error::invalid("from_image", "`from_image` goes with `image`"));
                }
                let t = self.record(caller, template)?;
                if t.project_id != *project {
                    return Err(Error::invalid("template", "the template must be in the rollout's project"));
                }
                (Rebase::OnContainer(t.id.clone()), self.copies_of(project, &t.id)?)
            }
            (None, Some(image)) => {
                self.store.image(image)?.ok_or_else(|| Error::NotFound { kind: "image", id: image.clone() })?;
                let tenants = self
                    .store
                    .containers(Some(project), None, u32::MAX)?
                    .into_iter()
                    .filter(|c| &c.image != image && req.from_image.as_ref().is_none_or(|from| &c.image == from))
                    .filter(|c| !matches!(c.status, ContainerStatus::Creating | ContainerStatus::Copying))
                    .map(|c| c.id)
                    .collect();
                (Rebase::OnImage(image.clone()), tenants)
            }
            _ => return Err(Error::invalid("template", "give either `template` or `image`")),
        };
        let rollout = Rollout {
            id: RolloutId::random(),
            project_id: project.clone(),
            template: req.template.clone(),
            image: req.image.clone(),
            status: RolloutStatus::Running,
            batch_size,
            max_unavailable: max_unavailable.min(batch_size),
            total: u32::try_from(tenants.len()).unwrap_or(u32::MAX),
            upgraded: Vec::new(),
            failed: Vec::new(),
            pending: u32::try_from(tenants.len()).unwrap_or(u32::MAX),
            created_at: cubby_model::now(),
            finished_at: None,
        };
        self.rollouts.insert(rollout.clone());
        self.rollout_event(EventType::RolloutStarted, &rollout, caller);
        let this = Arc::clone(self);
        let (caller, id) = (caller.clone(), rollout.id.clone());
        tokio::spawn(
            async move { this.run_rollout(&caller, &id, &target, tenants, batch_size, max_unavailable).await },
        );
        Ok(rollout)
    }

    /// One rollout of project `project`.
    pub fn rollout(&self, caller: &Caller, project: &ProjectId, id: &RolloutId) -> Result<Rollout, Error> {
        crate::projects::visible(&*self.store, caller, project)?;
        self.rollouts.get(project, id).ok_or_else(|| Error::NotFound { kind: "rollout", id: id.to_string() })
    }

    /// The rollouts of project `project` this daemon remembers, oldest
    /// first.
    pub fn rollouts(&self, caller: &Caller, project: &ProjectId) -> Result<Vec<Rollout>, Error> {
        crate::projects::visible(&*self.store, caller, project)?;
        Ok(self.rollouts.of(project))
    }

    /// The containers of `project` copied from `template`.
    fn copies_of(&self, project: &ProjectId, template: &ContainerId) -> Result<Vec<ContainerId>, Error> {
        let mut copies = Vec::new();
        for c in self.store.containers(Some(project), None, u32::MAX)? {
            let first = self.store.container_lowers(&c.id)?.into_iter().next();
            if first.is_some_and(|l| l.kind == LayerKind::Frozen && l.source_container.as_ref() == Some(template)) {
                copies.push(c.id);
            }
        }
        Ok(copies)
    }

    async fn run_rollout(
        self: &Arc<Self>,
        caller: &Caller,
        id: &RolloutId,
        target: &Rebase,
        tenants: Vec<ContainerId>,
        batch_size: u32,
        max_unavailable: u32,
    ) {
        let step = usize::try_from(max_unavailable.min(batch_size)).unwrap_or(1).max(1);
        let mut failed_batch = false;
        for batch in tenants.chunks(usize::try_from(batch_size).unwrap_or(1)) {
            for wave in batch.chunks(step) {
                let results = futures::future::join_all(wave.iter().map(|tenant| async move {
                    (tenant.clone(), self.rebase_in_rollout(caller, tenant, target, id).await)
                }))
                .await;
                for (tenant, result) in results {
                    failed_batch |= result.is_err();
                    self.rollouts.update(id, |r| {
                        r.pending = r.pending.saturating_sub(1);
                        match result {
                            Ok(()) => r.upgraded.push(tenant),
                            Err(e) => r.failed.push(RolloutFailure { container_id: tenant, message: e.to_string() }),
                        }
                    });
                }
            }
            if failed_batch {
                break;
            }
        }
        let status = if failed_batch { RolloutStatus::Failed } else { RolloutStatus::Completed };
        self.rollouts.update(id, |r| {
            r.status = status;
            r.finished_at = Some(cubby_model::now());
        });
        if let Some(done) = self.rollouts.list.lock().ok().and_then(|l| l.iter().find(|r| &r.id == id).cloned()) {
            tracing::info!(rollout = %id, status = ?done.status, upgraded = done.upgraded.len(), failed = done.failed.len(), pending = done.pending, "rollout finished");
            self.rollout_event(EventType::RolloutFinished, &done, caller);
        }
    }

    /// One tenant's step; a tenant deleted since the rollout began counts
    /// as done (there is nothing left to upgrade).
    async fn rebase_in_rollout(
        self: &Arc<Self>,
        caller: &Caller,
        tenant: &ContainerId,
        target: &Rebase,
        rollout: &RolloutId,
    ) -> Result<(), Error> {
        match self.rebase_as(caller, tenant, target, Some(rollout)).await {
            Ok(_) | Err(Error::NotFound { kind: "container", .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn rollout_event(&self, kind: EventType, r: &Rollout, caller: &Caller) {
        let data = serde_json::json!({
            "rollout_id": r.id,
            "status": r.status,
            "total": r.total,
            "upgraded": r.upgraded.len(),
            "failed": r.failed.len(),
            "pending": r.pending,
        });
        self.events.emit(Happened {
            kind,
            project: &r.project_id,
            container: None,
            trigger: None,
            caller: Some(caller),
            data,
        });
    }
}
