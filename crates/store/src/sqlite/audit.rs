//! The audit trail in SQLite: ids and actions, never tenant data.

use cubby_model::{ContainerId, ProjectId};
use rusqlite::{Connection, params};

use super::{SqliteStore, from_ms, ms, q};
use crate::{AuditEntry, AuditStore, StoreError};

impl AuditStore for SqliteStore {
    fn append_audit(&self, entry: &AuditEntry) -> Result<(), StoreError> {
        insert_audit(&self.conn(), entry)
    }

    fn audit(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached("SELECT at, action, project_id, container_id FROM audit ORDER BY id DESC LIMIT ?1")
            .map_err(q("list audit"))?;
        let rows = stmt
            .query_map([limit], |r| {
                Ok(AuditEntry {
                    at: from_ms(r.get(0)?),
                    action: r.get(1)?,
                    project_id: r.get::<_, Option<String>>(2)?.map(ProjectId::from_stored),
                    container_id: r.get::<_, Option<String>>(3)?.map(ContainerId::from_stored),
                })
            })
            .map_err(q("list audit"))?;
        rows.collect::<Result<_, _>>().map_err(q("list audit"))
    }
}

pub(super) fn insert_audit(conn: &Connection, entry: &AuditEntry) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO audit (at, action, project_id, container_id) VALUES (?1, ?2, ?3, ?4)",
        params![
            ms(entry.at),
            entry.action,
            entry.project_id.as_ref().map(ProjectId::as_str),
            entry.container_id.as_ref().map(ContainerId::as_str)
        ],
    )
    .map_err(q("append audit"))?;
    Ok(())
}
