//! Usage in SQLite: each reading updates its container's cursor and adds
//! what it measured to the container's minute and hour rows; a batch of
//! readings is one transaction (a crash keeps all of it or none). Rows hold ids and
//! numbers only, and outlive their container until they age out.

use cubby_model::{ContainerId, ProjectId};
use rusqlite::{Connection, OptionalExtension, params};

use super::{SqliteStore, q};
use crate::usage::{UsageCursor, UsageDelta, UsageReading, UsageResolution, UsageRow, UsageScope, advance};
use crate::{StoreError, UsageStore};

fn cursor(conn: &Connection, id: &ContainerId) -> Result<Option<UsageCursor>, StoreError> {
    conn.prepare_cached("SELECT at_ms, running, cpu_ns, rx_bytes, tx_bytes FROM usage_cursors WHERE container_id = ?1")
        .and_then(|mut stmt| {
            stmt.query_row([id.as_str()], |r| {
                Ok(UsageCursor {
                    at_ms: r.get(0)?,
                    running: r.get(1)?,
                    cpu_ns: r.get::<_, i64>(2)?.try_into().unwrap_or(0),
                    rx_bytes: r.get::<_, i64>(3)?.try_into().unwrap_or(0),
                    tx_bytes: r.get::<_, i64>(4)?.try_into().unwrap_or(0),
                })
            })
            .optional()
        })
        .map_err(q("read usage cursor"))
}

/// Counters are u64 in Rust and i64 in SQLite: no counter of one minute
/// comes near 2^63.
fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn add_row(
    conn: &Connection,
    resolution: UsageResolution,
    reading: &UsageReading,
    delta: &UsageDelta,
) -> Result<(), StoreError> {
    let seconds = reading.at.unix_timestamp();
    let start = seconds - seconds.rem_euclid(resolution.seconds());
    let sql = "INSERT INTO usage_rows (container_id, project_id, start, cpu_ns, memory_byte_seconds, \
         memory_peak_bytes, rx_bytes, tx_bytes, disk_byte_seconds, disk_peak_bytes, requests, response_bytes, \
         running_ms, wakes, resolution) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
         ON CONFLICT (container_id, resolution, start) DO UPDATE SET \
         cpu_ns = cpu_ns + excluded.cpu_ns, \
         memory_byte_seconds = memory_byte_seconds + excluded.memory_byte_seconds, \
         memory_peak_bytes = max(memory_peak_bytes, excluded.memory_peak_bytes), \
         rx_bytes = rx_bytes + excluded.rx_bytes, tx_bytes = tx_bytes + excluded.tx_bytes, \
         disk_byte_seconds = disk_byte_seconds + excluded.disk_byte_seconds, \
         disk_peak_bytes = max(disk_peak_bytes, excluded.disk_peak_bytes), \
         requests = requests + excluded.requests, response_bytes = response_bytes + excluded.response_bytes, \
         running_ms = running_ms + excluded.running_ms, wakes = wakes + excluded.wakes";
    conn.prepare_cached(sql)
        .and_then(|mut stmt| {
            stmt.execute(params![
                reading.container_id.as_str(),
                reading.project_id.as_str(),
                start,
                int(delta.cpu_ns),
                delta.memory_byte_seconds,
                int(delta.memory_peak_bytes),
                int(delta.rx_bytes),
                int(delta.tx_bytes),
                delta.disk_byte_seconds,
                int(delta.disk_peak_bytes),
                int(delta.requests),
                int(delta.response_bytes),
                int(delta.running_ms),
                int(delta.wakes),
                resolution.seconds(),
            ])
        })
        .map_err(q("add usage"))?;
    Ok(())
}

/// One reading inside the caller's transaction.
fn record_one(tx: &Connection, reading: &UsageReading) -> Result<UsageDelta, StoreError> {
    let prev = cursor(tx, &reading.container_id)?;
    let (delta, next) = advance(prev.as_ref(), reading);
    if delta != UsageDelta::default() {
        add_row(tx, UsageResolution::Minute, reading, &delta)?;
        add_row(tx, UsageResolution::Hour, reading, &delta)?;
    }
    // A reading that raced the container's delete leaves no cursor.
    tx.prepare_cached(
        "INSERT INTO usage_cursors (container_id, at_ms, running, cpu_ns, rx_bytes, tx_bytes) \
         SELECT ?1, ?2, ?3, ?4, ?5, ?6 WHERE EXISTS (SELECT 1 FROM containers WHERE id = ?1) \
         ON CONFLICT (container_id) DO UPDATE SET at_ms = excluded.at_ms, running = excluded.running, \
         cpu_ns = excluded.cpu_ns, rx_bytes = excluded.rx_bytes, tx_bytes = excluded.tx_bytes",
    )
    .and_then(|mut stmt| {
        stmt.execute(params![
            reading.container_id.as_str(),
            next.at_ms,
            next.running,
            int(next.cpu_ns),
            int(next.rx_bytes),
            int(next.tx_bytes)
        ])
    })
    .map_err(q("move usage cursor"))?;
    Ok(delta)
}

impl UsageStore for SqliteStore {
    fn record_usage(&self, readings: &[UsageReading]) -> Result<Vec<UsageDelta>, StoreError> {
        let mut conn = self.conn();
        let tx = conn.transaction().map_err(q("begin usage"))?;
        let mut deltas = Vec::with_capacity(readings.len());
        for reading in readings {
            deltas.push(record_one(&tx, reading)?);
        }
        tx.commit().map_err(q("commit usage"))?;
        Ok(deltas)
    }

    fn usage_rows(
        &self,
        scope: UsageScope<'_>,
        resolution: UsageResolution,
        from: i64,
        to: i64,
    ) -> Result<Vec<UsageRow>, StoreError> {
        let (column, id) = match scope {
            UsageScope::Container(id) => ("container_id", id.as_str()),
            UsageScope::Project(id) => ("project_id", id.as_str()),
        };
        let sql = format!(
            "SELECT container_id, start, cpu_ns, memory_byte_seconds, memory_peak_bytes, rx_bytes, tx_bytes, \
             disk_byte_seconds, disk_peak_bytes, requests, response_bytes, running_ms, wakes \
             FROM usage_rows WHERE {column} = ?1 AND resolution = ?4 AND start >= ?2 AND start < ?3 \
             ORDER BY start, container_id"
        );
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&sql).map_err(q("read usage"))?;
        let count = |r: &rusqlite::Row<'_>, i: usize| -> rusqlite::Result<u64> {
            let v: i64 = r.get(i)?;
            u64::try_from(v).map_err(|_| super::corrupt_column(i, format!("a negative usage counter: {v}")))
        };
        let rows = stmt
            .query_map(params![id, from, to, resolution.seconds()], |r| {
                Ok(UsageRow {
                    container_id: ContainerId::from_stored(r.get(0)?),
                    start: r.get(1)?,
                    usage: UsageDelta {
                        cpu_ns: count(r, 2)?,
                        memory_byte_seconds: r.get(3)?,
                        memory_peak_bytes: count(r, 4)?,
                        rx_bytes: count(r, 5)?,
                        tx_bytes: count(r, 6)?,
                        disk_byte_seconds: r.get(7)?,
                        disk_peak_bytes: count(r, 8)?,
                        requests: count(r, 9)?,
                        response_bytes: count(r, 10)?,
                        running_ms: count(r, 11)?,
                        wakes: count(r, 12)?,
                    },
                })
            })
            .map_err(q("read usage"))?;
        rows.collect::<Result<_, _>>().map_err(q("read usage"))
    }

    fn prune_usage(&self, resolution: UsageResolution, before: i64) -> Result<usize, StoreError> {
        self.conn()
            .execute("DELETE FROM usage_rows WHERE resolution = ?2 AND start < ?1", [before, resolution.seconds()])
            .map_err(q("prune usage"))
    }

    fn usage_project(&self, id: &ContainerId) -> Result<Option<ProjectId>, StoreError> {
        self.conn()
            .query_row("SELECT project_id FROM usage_rows WHERE container_id = ?1 LIMIT 1", [id.as_str()], |r| {
                r.get::<_, String>(0)
            })
            .optional()
            .map(|p| p.map(ProjectId::from_stored))
            .map_err(q("read usage project"))
    }
}
