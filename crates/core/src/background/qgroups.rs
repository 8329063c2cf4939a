//! The quota-group sweeper: btrfs frees a deleted subvolume's extents a
//! little after the delete (later still while something holds its files),
//! and only then can its quota group go. After each request it sweeps
//! every second for 10 s, every 5 s up to a minute, then every 30 s up to
//! five minutes. It needs only the btrfs seam and the pool.

use std::path::PathBuf;
use std::sync::{Arc, Weak};
use std::time::Duration;

use cubby_storage::Btrfs;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The delays between sweeps after one request.
fn schedule() -> impl Iterator<Item = Duration> {
    std::iter::repeat_n(1u64, 10)
        .chain(std::iter::repeat_n(5, 10))
        .chain(std::iter::repeat_n(30, 8))
        .map(Duration::from_secs)
}

/// Sweeps `pool` after each notification of `requests`, until the owner
/// of `requests` drops it.
pub(crate) fn spawn(btrfs: Arc<dyn Btrfs>, pool: PathBuf, requests: Weak<Notify>) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Some(notify) = requests.upgrade() else { return };
            notify.notified().await;
            drop(notify);
            for delay in schedule() {
                let Some(notify) = requests.upgrade() else { return };
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = notify.notified() => {}
                }
                drop(notify);
                let (btrfs, pool) = (Arc::clone(&btrfs), pool.clone());
                if let Ok(Err(e)) = tokio::task::spawn_blocking(move || btrfs.remove_stale_qgroups(&pool)).await {
                    tracing::debug!(error = %e, "qgroup sweep");
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use cubby_storage::{BtrfsCall, FakeBtrfs};

    use super::*;

    fn sweeps(btrfs: &FakeBtrfs) -> usize {
        btrfs.calls().iter().filter(|c| matches!(c, BtrfsCall::RemoveStaleQgroups(_))).count()
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_starts_a_bounded_schedule_of_sweeps() {
        let btrfs = Arc::new(FakeBtrfs::new());
        let requests = Arc::new(Notify::new());
        let task = spawn(Arc::clone(&btrfs) as Arc<dyn Btrfs>, "/pool".into(), Arc::downgrade(&requests));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert_eq!(sweeps(&btrfs), 0, "nothing asked, nothing swept");
        requests.notify_one();
        tokio::time::sleep(Duration::from_millis(10_500)).await;
        assert_eq!(sweeps(&btrfs), 10, "every second for 10 s");
        tokio::time::sleep(Duration::from_secs(600)).await;
        assert_eq!(sweeps(&btrfs), 28, "then fewer, and the schedule ends");
        requests.notify_one();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        assert_eq!(sweeps(&btrfs), 29, "a new request starts a new schedule");
        task.abort();
    }
}
