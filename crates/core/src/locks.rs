//! Per-container locks that serialise lifecycle operations. An entry
//! exists only while someone holds or waits for it: the table does not
//! grow with every id a caller ever named (ids come from requests).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use cubby_model::ContainerId;
use tokio::sync::OwnedMutexGuard;

type Table = Mutex<HashMap<ContainerId, Arc<tokio::sync::Mutex<()>>>>;

/// The locks of every container.
#[derive(Debug, Default, Clone)]
pub(crate) struct ContainerLocks(Arc<Table>);

/// One container's lock, held. Dropping it releases the lock and, when
/// no one else holds or waits for it, its table entry.
#[derive(Debug)]
pub(crate) struct ContainerLock {
    guard: Option<OwnedMutexGuard<()>>,
    table: Arc<Table>,
    id: ContainerId,
}

impl ContainerLocks {
    /// Waits for container `id`'s lock.
    pub(crate) async fn lock(&self, id: &ContainerId) -> ContainerLock {
        let lock = {
            let mut table = self.0.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(table.entry(id.clone()).or_default())
        };
        let guard = lock.lock_owned().await;
        ContainerLock { guard: Some(guard), table: Arc::clone(&self.0), id: id.clone() }
    }

    /// Entries in the table (tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).len()
    }
}

impl Drop for ContainerLock {
    fn drop(&mut self) {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        drop(self.guard.take());
        // The table's own reference is the last one: nobody holds or waits.
        if table.get(&self.id).is_some_and(|lock| Arc::strong_count(lock) == 1) {
            table.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn entries_live_only_while_held_or_awaited() {
        let locks = Arc::new(ContainerLocks::default());
        for i in 0..100 {
            drop(locks.lock(&ContainerId::from_stored(format!("cnope{i}"))).await);
        }
        assert_eq!(locks.len(), 0, "ids nobody holds leave nothing behind");

        let id = ContainerId::from_stored("cabc".into());
        let held = locks.lock(&id).await;
        let waiter = {
            let (locks, id) = (Arc::clone(&locks), id.clone());
            tokio::spawn(async move {
                let _second = locks.lock(&id).await;
            })
        };
        tokio::task::yield_now().await;
        assert_eq!(locks.len(), 1);
        drop(held);
        waiter.await.unwrap();
        assert_eq!(locks.len(), 0, "the last holder removes the entry");
    }
}
