//! The idle reaper: once a second, a running container that had no
//! proxied traffic for its idle timeout (its own, else its project's
//! default; 0 is never) is stopped. It wakes again on its next request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cubby_model::{ContainerStatus, Trigger};
use tokio::task::JoinHandle;

use crate::containers::ContainerService;

/// Starts the reaper on `containers`.
pub(crate) fn spawn(containers: &Arc<ContainerService>) -> JoinHandle<()> {
    super::every(Arc::downgrade(containers), Duration::from_secs(1), |p| async move { reap(&p) })
}

fn reap(containers: &Arc<ContainerService>) {
    let Ok(projects) = containers.store.projects() else { return };
    let defaults: HashMap<_, _> = projects.into_iter().map(|p| (p.id, p.default_idle_timeout_seconds)).collect();
    let Ok(records) = containers.store.containers(None, None, u32::MAX) else { return };
    for rec in records.into_iter().filter(|r| r.status == ContainerStatus::Running) {
        let timeout = rec.idle_timeout.or_else(|| defaults.get(&rec.project_id).copied()).unwrap_or(0);
        if timeout == 0 {
            continue;
        }
        let activity = containers.activity.get(&rec.id);
        if activity.idle_for().is_none_or(|d| d < Duration::from_secs(u64::from(timeout))) {
            continue;
        }
        let containers = Arc::clone(containers);
        tokio::spawn(async move {
            let _guard = containers.lock(&rec.id).await;
            // Traffic may have come, or someone stopped it, meanwhile.
            let still_idle = activity.idle_for().is_some_and(|d| d >= Duration::from_secs(u64::from(timeout)));
            let Ok(Some(now)) = containers.store.container(&rec.id) else { return };
            if !still_idle || now.status != ContainerStatus::Running {
                return;
            }
            tracing::info!(container = %rec.id, timeout, "no traffic for the idle timeout: stopping");
            if let Err(e) =
                containers.stop_locked(&now, Trigger::Idle, Some(containers.config.defaults.stop_timeout), None).await
            {
                tracing::warn!(container = %rec.id, error = %e, "idle stop failed");
            }
        });
    }
}
