//! The daemon's background tasks, one module each, and the runner that
//! owns their handles: the quota-group sweeper ([`qgroups`]), the idle
//! reaper ([`idle`]), snapshot expiry ([`expiry`]) and the usage sampler
//! ([`usage`]). A task holds only
//! a weak reference to what it works on, so it never keeps the core
//! alive; [`Background::abort_all`] stops them at shutdown.

pub(crate) mod expiry;
pub(crate) mod idle;
pub(crate) mod qgroups;
pub(crate) mod usage;

use std::future::Future;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::task::JoinHandle;

/// The handles of running background tasks.
#[derive(Debug, Default)]
pub(crate) struct Background {
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Background {
    pub(crate) fn push(&self, task: JoinHandle<()>) {
        self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(task);
    }

    /// Stops every task.
    pub(crate) fn abort_all(&self) {
        for task in self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner).drain(..) {
            task.abort();
        }
    }
}

/// Runs `tick` on `target` every `every` (the first at once) while
/// `target` lives.
pub(crate) fn every<T, F, Fut>(target: Weak<T>, every: Duration, tick: F) -> JoinHandle<()>
where
    T: Send + Sync + 'static,
    F: Fn(Arc<T>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        loop {
            interval.tick().await;
            let Some(target) = target.upgrade() else { return };
            tick(target).await;
        }
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_periodic_task_ends_with_its_target() {
        let target = Arc::new(AtomicUsize::new(0));
        let task = every(Arc::downgrade(&target), Duration::from_secs(1), |t| async move {
            t.fetch_add(1, Ordering::Relaxed);
        });
        tokio::time::sleep(Duration::from_millis(3500)).await;
        assert_eq!(target.load(Ordering::Relaxed), 4, "at once, then every second");
        drop(target);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(task.is_finished(), "the task does not outlive what it works on");
    }
}
