//! Snapshots in SQLite (rows of their own, layers beside them: see
//! `layers`).

use cubby_model::{ContainerId, SnapshotId, Timestamp};
use rusqlite::params;

use super::{SqliteStore, insert_error, layers, ms, q};
use crate::{SnapshotRecord, SnapshotStore, StoreError};

impl SnapshotStore for SqliteStore {
    fn insert_snapshot(&self, snapshot: &SnapshotRecord, max: u32) -> Result<(), StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(q("begin insert snapshot"))?;
        layers::insert_snapshot(&tx, snapshot, max)?;
        tx.commit().map_err(q("commit insert snapshot"))
    }

    fn snapshots(&self, container: &ContainerId) -> Result<Vec<SnapshotRecord>, StoreError> {
        layers::snapshots(&self.conn(), Some(container), None)
    }

    fn snapshot(&self, container: &ContainerId, key: &str) -> Result<Option<SnapshotRecord>, StoreError> {
        Ok(layers::snapshots(&self.conn(), Some(container), None)?
            .into_iter()
            .find(|s| s.name == key || s.alias.as_deref() == Some(key)))
    }

    fn delete_snapshot(&self, id: &SnapshotId) -> Result<bool, StoreError> {
        let n =
            self.conn().execute("DELETE FROM snapshots WHERE id = ?1", [id.as_str()]).map_err(q("delete snapshot"))?;
        Ok(n > 0)
    }

    fn set_snapshot_alias(&self, id: &SnapshotId, alias: Option<&str>) -> Result<(), StoreError> {
        self.conn()
            .execute("UPDATE snapshots SET alias = ?2 WHERE id = ?1", params![id.as_str(), alias])
            .map_err(insert_error("rename snapshot alias", "snapshot alias", alias.unwrap_or_default().to_string()))?;
        Ok(())
    }

    fn expired_snapshots(&self, now: Timestamp) -> Result<Vec<SnapshotRecord>, StoreError> {
        layers::snapshots(&self.conn(), None, Some(ms(now)))
    }
}
