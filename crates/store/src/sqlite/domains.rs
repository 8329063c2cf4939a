//! Custom domains in SQLite: one row per hostname, removed with its
//! container.

use cubby_model::{ContainerId, DomainStatus, Timestamp};
use rusqlite::params;

use super::{SqliteStore, from_ms, insert_error, ms, q};
use crate::{DomainRecord, DomainStore, StoreError};

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<DomainRecord> {
    let status: String = r.get(3)?;
    Ok(DomainRecord {
        hostname: r.get(0)?,
        container_id: ContainerId::from_stored(r.get(1)?),
        token: r.get(2)?,
        status: DomainStatus::parse(&status).unwrap_or(DomainStatus::Pending),
        created_at: from_ms(r.get(4)?),
        verified_at: r.get::<_, Option<i64>>(5)?.map(from_ms),
    })
}

const COLUMNS: &str = "hostname, container_id, token, status, created_at, verified_at";

impl DomainStore for SqliteStore {
    fn insert_domain(&self, d: &DomainRecord) -> Result<(), StoreError> {
        self.conn()
            .execute(
                &format!("INSERT INTO domains ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
                params![
                    d.hostname,
                    d.container_id.as_str(),
                    d.token,
                    d.status.as_str(),
                    ms(d.created_at),
                    d.verified_at.map(ms)
                ],
            )
            .map_err(insert_error("insert domain", "domain", d.hostname.clone()))?;
        Ok(())
    }

    fn domain(&self, hostname: &str) -> Result<Option<DomainRecord>, StoreError> {
        use rusqlite::OptionalExtension;
        self.conn()
            .query_row(&format!("SELECT {COLUMNS} FROM domains WHERE hostname = ?1"), [hostname], row)
            .optional()
            .map_err(q("read domain"))
    }

    fn domains(&self, container: Option<&ContainerId>) -> Result<Vec<DomainRecord>, StoreError> {
        let conn = self.conn();
        let mut stmt = conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM domains WHERE (?1 IS NULL OR container_id = ?1) ORDER BY hostname"
            ))
            .map_err(q("list domains"))?;
        let rows = stmt.query_map([container.map(ContainerId::as_str)], row).map_err(q("list domains"))?;
        rows.collect::<Result<_, _>>().map_err(q("list domains"))
    }

    fn set_domain_verified(&self, hostname: &str, at: Timestamp) -> Result<bool, StoreError> {
        let n = self
            .conn()
            .execute(
                "UPDATE domains SET status = 'verified', verified_at = ?2 WHERE hostname = ?1",
                params![hostname, ms(at)],
            )
            .map_err(q("verify domain"))?;
        Ok(n > 0)
    }

    fn delete_domain(&self, hostname: &str) -> Result<bool, StoreError> {
        let n =
            self.conn().execute("DELETE FROM domains WHERE hostname = ?1", [hostname]).map_err(q("delete domain"))?;
        Ok(n > 0)
    }
}
