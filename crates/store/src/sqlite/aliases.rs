//! Aliases in SQLite, and the record of names given up (by which project,
//! when) that keeps another project from taking one over at once.

use cubby_model::{ContainerId, ProjectId};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, from_ms, insert_error, ms, q};
use crate::{AliasRecord, AliasStore, StoreError};

impl AliasStore for SqliteStore {
    fn insert_alias(&self, a: &AliasRecord) -> Result<(), StoreError> {
        self.conn()
            .execute(
                "INSERT INTO aliases (name, container_id, port, created_at) VALUES (?1, ?2, ?3, ?4)",
                params![a.name, a.container_id.as_str(), a.port, ms(a.created_at)],
            )
            .map_err(insert_error("insert alias", "alias", a.name.clone()))?;
        Ok(())
    }

    fn alias(&self, name: &str) -> Result<Option<AliasRecord>, StoreError> {
        Ok(self.aliases(None)?.into_iter().find(|a| a.name == name))
    }

    fn aliases(&self, container: Option<&ContainerId>) -> Result<Vec<AliasRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(
                "SELECT name, container_id, port, created_at FROM aliases WHERE (?1 IS NULL OR container_id = ?1) ORDER BY name",
            )
            .map_err(q("list aliases"))?;
        let rows = stmt
            .query_map([container.map(ContainerId::as_str)], |r| {
                Ok(AliasRecord {
                    name: r.get(0)?,
                    container_id: ContainerId::from_stored(r.get(1)?),
                    port: r.get(2)?,
                    created_at: from_ms(r.get(3)?),
                })
            })
            .map_err(q("list aliases"))?;
        rows.collect::<Result<_, _>>().map_err(q("list aliases"))
    }

    fn delete_alias(&self, name: &str) -> Result<bool, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(q("begin delete alias"))?;
        release_aliases(&tx, "a.name = ?1", name)?;
        let n = tx.execute("DELETE FROM aliases WHERE name = ?1", [name]).map_err(q("delete alias"))?;
        tx.commit().map_err(q("commit delete alias"))?;
        Ok(n > 0)
    }

    fn alias_release(&self, name: &str) -> Result<Option<(ProjectId, cubby_model::Timestamp)>, StoreError> {
        self.conn()
            .query_row("SELECT project_id, released_at FROM alias_releases WHERE name = ?1", [name], |r| {
                Ok((ProjectId::from_stored(r.get(0)?), from_ms(r.get(1)?)))
            })
            .optional()
            .map_err(q("read alias release"))
    }
}

/// Records the aliases matching `filter` (on `aliases a`, with `?1`) as
/// released by their container's project, now.
pub(super) fn release_aliases(conn: &Connection, filter: &str, value: &str) -> Result<(), StoreError> {
    conn.execute(
        &format!(
            "INSERT OR REPLACE INTO alias_releases (name, project_id, released_at)
             SELECT a.name, c.project_id, ?2 FROM aliases a JOIN containers c ON c.id = a.container_id WHERE {filter}"
        ),
        params![value, ms(cubby_model::now())],
    )
    .map_err(q("release aliases"))?;
    Ok(())
}
