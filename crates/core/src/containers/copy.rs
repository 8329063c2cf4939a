//! Copying a container (or one of its snapshots) into a new tenant.
//!
//! The copy's lowers are the source's state frozen into a read-only layer
//! plus the source's own lowers; its own subvolume starts empty, so a copy
//! costs kilobytes and every copy of one template reads the same files.
//! Chains deeper than the limit are flattened into one layer.

use std::sync::Arc;
use std::time::Instant;

use cubby_model::{
    Container, ContainerId, ContainerStatus, CopyContainer, EventType, Firewall, FirewallRule, LayerId, NetworkRules,
    RuleId, validate_container_name, validate_env,
};
use cubby_store::NewContainer;
use tracing::Instrument;

use super::ContainerService;
use crate::{Caller, Error};

pub(super) fn with_new_ids(rules: Vec<FirewallRule>) -> Vec<FirewallRule> {
    rules.into_iter().map(|r| FirewallRule { id: RuleId::random(), ..r }).collect()
}

impl ContainerService {
    /// Copies container `source` (its current state, or a snapshot) into a
    /// new container, and starts it unless asked not to.
    pub async fn copy_container(
        self: &Arc<Self>,
        caller: &Caller,
        source: &ContainerId,
        req: &CopyContainer,
    ) -> Result<Container, Error> {
        let span = tracing::info_span!("container.copy", source = %source, name = %req.name, container = tracing::field::Empty);
        self.copy_inner(caller, source, req).instrument(span).await
    }

    async fn copy_inner(
        self: &Arc<Self>,
        caller: &Caller,
        source: &ContainerId,
        req: &CopyContainer,
    ) -> Result<Container, Error> {
        let started = Instant::now();
        let src = self.record(caller, source)?;
        let target = req.target_project_id.clone().unwrap_or_else(|| src.project_id.clone());
        // A token that cannot see the target project cannot copy into it.
        let quota = crate::projects::visible(&*self.store, caller, &target)?.quota;
        validate_container_name(&req.name)?;
        validate_env("environment_vars", &req.environment_vars)?;

        let (top, below) = match &req.source_snapshot {
            Some(key) => {
                let snapshot = self
                    .store
                    .snapshot(&src.id, key)?
                    .ok_or_else(|| Error::NotFound { kind: "snapshot", id: key.clone() })?;
                (None, Some(snapshot))
            }
            None => (Some(()), None),
        };

        // Lock order: the source container, then the layers.
        let source_guard = if top.is_some() { Some(self.lock(&src.id).await) } else { None };
        let src = self.record(caller, source)?;
        if matches!(src.status, ContainerStatus::Creating | ContainerStatus::Copying | ContainerStatus::Deleting) {
            return Err(Error::Conflict {
                code: "container_busy",
                message: format!("container {} is {}: wait and try again", src.id, src.status.as_str()),
            });
        }
        let layers_guard = self.layers_lock.lock().await;
        let mut lowers: Vec<LayerId> = match below {
            Some(snapshot) => std::iter::once(snapshot.layer_id).chain(snapshot.lowers).collect(),
            None => {
                let frozen = tracing::info_span!("storage.freeze").in_scope(|| self.frozen_layer(&src))?;
                self.failpoint("copy.frozen");
                let mut chain = vec![frozen];
                chain.extend(self.store.container_lowers(&src.id)?.into_iter().map(|l| l.id));
                chain
            }
        };
        drop(source_guard);
        if lowers.len() > self.config.defaults.max_layer_depth {
            let flat = tokio::task::block_in_place(|| self.flatten_chain(&lowers))?;
            lowers = vec![flat];
        }

        let mut env = src.env.clone();
        env.extend(req.environment_vars.clone());
        // The template's limits, within the target project's quota.
        let limits = quota.clamp(src.limits);
        let firewall = if req.copy_firewall_rules.unwrap_or(true) {
            let f = self.store.firewall(&src.id)?;
            Firewall { ingress: with_new_ids(f.ingress), egress: with_new_ids(f.egress) }
        } else {
            self.network.default_firewall(src.port)
        };
        let network =
            if req.copy_network_rules.unwrap_or(true) { self.store.network(&src.id)? } else { NetworkRules::default() };
        let new = NewContainer {
            id: ContainerId::random(),
            project_id: target.clone(),
            name: req.name.clone(),
            image: src.image.clone(),
            command: src.command.clone(),
            env,
            port: src.port,
            limits,
            workdir: src.workdir.clone(),
            user: src.user.clone(),
            created_at: cubby_model::now(),
            firewall,
            network,
            lowers,
            max_snapshots: src.max_snapshots,
            status: ContainerStatus::Copying,
            access: src.access,
            autostart: src.autostart,
            idle_timeout: src.idle_timeout,
        };
        let inserted =
            tracing::info_span!("db.insert").in_scope(|| self.store.insert_container(&new, self.network.capacity()));
        drop(layers_guard);
        let rec = match inserted {
            Ok(rec) => rec,
            Err(e) => {
                // A layer frozen for this copy alone is garbage now.
                let _ = self.collect_layers().await;
                return Err(e.into());
            }
        };
        tracing::Span::current().record("container", tracing::field::display(&rec.id));
        self.failpoint("copy.inserted");
        let born = (
            EventType::ContainerCopied,
            serde_json::json!({ "source_id": src.id, "source_snapshot": req.source_snapshot }),
        );
        self.provision_new(rec, req.start.unwrap_or(true), started, caller, born).await
    }
}
