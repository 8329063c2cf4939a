//! Snapshot expiry: now and then (`--snapshot-expiry-interval`), the
//! snapshots past their `expires_at` are deleted, and their layers with
//! them when nothing else holds them.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::containers::ContainerService;

/// Starts expiry on `containers`, every `every`.
pub(crate) fn spawn(containers: &Arc<ContainerService>, every: Duration) -> JoinHandle<()> {
    super::every(Arc::downgrade(containers), every, |p| async move {
        if let Err(e) = p.expire_snapshots().await {
            tracing::warn!(error = %e, "snapshot expiry");
        }
    })
}
