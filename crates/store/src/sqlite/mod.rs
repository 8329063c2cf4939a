//! [`SqliteStore`]: the [`Store`](crate::Store) in one SQLite file (WAL
//! mode), or in memory for tests. One module per aggregate, each
//! implementing its trait; the helpers every module shares live here.

use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};

use cubby_model::Timestamp;
use rusqlite::{Connection, ErrorCode};

use crate::StoreError;
use crate::migrations::migrations;

/// The state in SQLite. One connection behind a mutex: every call is a
/// short transaction, and WAL lets readers of other processes (`cubby
/// doctor`) look at it meanwhile.
#[derive(Debug)]
pub struct SqliteStore {
    conn: Mutex<Connection>,
}

mod aliases;
mod audit;
mod containers;
mod domains;
mod events;
mod images;
mod layers;
mod projects;
mod rules;
mod scripts;
mod snapshots;
mod tokens;
mod usage;
mod webhooks;

pub(super) fn q(op: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Query { op, source }
}

pub(super) fn ms(t: Timestamp) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(super) fn from_ms(v: i64) -> Timestamp {
    Timestamp::from_unix_timestamp_nanos(i128::from(v) * 1_000_000).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(e, _) if e.code == ErrorCode::ConstraintViolation)
}

/// The error of an insert or rename: [`StoreError::Duplicate`] when a
/// unique column refused `name` (a `what` of that name exists), else the
/// query's error.
pub(super) fn insert_error(
    op: &'static str,
    what: &'static str,
    name: impl Into<String>,
) -> impl FnOnce(rusqlite::Error) -> StoreError {
    let name = name.into();
    move |source| {
        if is_unique_violation(&source) {
            StoreError::Duplicate { what, name }
        } else {
            StoreError::Query { op, source }
        }
    }
}

/// A row whose column holds what no version of the daemon writes: an
/// error naming the column, never a default.
pub(super) fn corrupt_column(column: usize, detail: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(column, rusqlite::types::Type::Text, detail.into())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let conn = Connection::open(path).map_err(|source| StoreError::Open { path: path.to_path_buf(), source })?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|source| StoreError::Open { path: path.to_path_buf(), source })?;
        Self::init(conn)
    }

    /// A private database in memory (for tests and fakes).
    pub fn in_memory() -> Result<Self, StoreError> {
        let conn =
            Connection::open_in_memory().map_err(|source| StoreError::Open { path: ":memory:".into(), source })?;
        Self::init(conn)
    }

    fn init(mut conn: Connection) -> Result<Self, StoreError> {
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(q("set synchronous"))?;
        conn.pragma_update(None, "foreign_keys", "ON").map_err(q("enable foreign keys"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(q("set busy timeout"))?;
        migrations().to_latest(&mut conn).map_err(|source| StoreError::Migrate { source })?;
        Ok(Self { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl crate::BackupStore for SqliteStore {
    fn backup_to(&self, dest: &Path) -> Result<(), StoreError> {
        let open = |source| StoreError::Open { path: dest.to_path_buf(), source };
        let mut copy = Connection::open(dest).map_err(open)?;
        // The whole copy in one step while this store's connection is held:
        // no write of the daemon lands half in it.
        let src = self.conn();
        let backup = rusqlite::backup::Backup::new(&src, &mut copy).map_err(q("start the online backup"))?;
        backup
            .run_to_completion(std::ffi::c_int::MAX, std::time::Duration::ZERO, None)
            .map_err(q("copy the database"))?;
        Ok(())
    }
}

pub(super) fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

#[cfg(test)]
mod tests;
