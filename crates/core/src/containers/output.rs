//! A running container's output: one collector task per container moves
//! what its FIFO receives into its capped log ([`cubby_runtime::logs`]).
//! Started with the container (and again for one found running at
//! start-up), drained when it stops so its last words are kept, and
//! dropped without a drain when it is deleted.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use cubby_model::ContainerId;
use cubby_runtime::logs::{self, LogPolicy};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::ContainerService;

/// How long a stop waits for the collector to take what is left.
const DRAIN_WAIT: Duration = Duration::from_secs(2);

/// One container's collector: the signal to finish, and its task.
#[derive(Debug)]
struct Collector {
    finish: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// The collectors of running containers.
#[derive(Debug, Default)]
pub(crate) struct Collectors(Mutex<HashMap<ContainerId, Collector>>);

impl Collectors {
    fn take(&self, id: &ContainerId) -> Option<Collector> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id)
    }

    /// Ends every collector at once (the daemon stops; containers keep
    /// their output in the pipe for the next one).
    pub(crate) fn abort_all(&self) {
        for (_, c) in self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain() {
            c.task.abort();
        }
    }
}

impl ContainerService {
    /// Starts collecting the output of a container about to be created
    /// (any earlier collector of it is dropped): the daemon's end of its
    /// FIFO is open before the container's first write.
    pub(crate) fn collect_output(&self, id: &ContainerId, slot: u32) -> Result<(), crate::Error> {
        let paths = self.paths(id, slot);
        let end = paths.output.open_for_daemon().map_err(crate::Error::runtime("open the output pipe", id.as_str()))?;
        let policy = LogPolicy::with_cap(self.config.defaults.log_cap.0);
        let (finish, finished) = oneshot::channel::<()>();
        let container = id.clone();
        let task = tokio::spawn(async move {
            let until = async move {
                let _ = finished.await;
            };
            if let Err(e) = logs::collect(end, paths.log, policy, until).await {
                tracing::warn!(container = %container, error = %crate::error::error_chain(&e), "container output is not collected");
            }
        });
        let old = self
            .outputs
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id.clone(), Collector { finish, task });
        if let Some(old) = old {
            old.task.abort();
        }
        Ok(())
    }

    /// Lets the collector take what is left in the pipe (the container's
    /// processes are gone), then ends it.
    pub(crate) async fn drain_output(&self, id: &ContainerId) {
        let Some(Collector { finish, mut task }) = self.outputs.take(id) else { return };
        let _ = finish.send(());
        if tokio::time::timeout(DRAIN_WAIT, &mut task).await.is_err() {
            tracing::warn!(container = %id, "the output collector did not finish in time");
            task.abort();
        }
    }

    /// Ends the collector without keeping what is left (a delete).
    pub(crate) fn drop_output(&self, id: &ContainerId) {
        if let Some(c) = self.outputs.take(id) {
            c.task.abort();
        }
    }
}
