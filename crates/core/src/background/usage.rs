//! The usage sampler: every `--usage-interval`, one reading of every
//! container's counters (see [`crate::containers::usage`]), and once an
//! hour the rows past their retention are dropped. The readings run on a
//! blocking thread: they are file reads and one transaction each.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::containers::ContainerService;

/// How often rows past their retention are looked for.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Starts the sampler on `containers`, every `every`, keeping hour rows
/// for `retention`.
pub(crate) fn spawn(containers: &Arc<ContainerService>, every: Duration, retention: time::Duration) -> JoinHandle<()> {
    let last_prune = Arc::new(std::sync::Mutex::new(None::<Instant>));
    super::every(Arc::downgrade(containers), every, move |c| {
        let last_prune = Arc::clone(&last_prune);
        async move {
            let task = tokio::task::spawn_blocking(move || {
                c.sample_usage(None);
                let mut last = last_prune.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                if last.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
                    c.prune_usage(retention);
                    *last = Some(Instant::now());
                }
            });
            if let Err(e) = task.await {
                tracing::warn!(error = %e, "usage sampling stopped short");
            }
        }
    })
}
