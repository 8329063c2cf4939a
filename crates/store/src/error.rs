//! Errors of the store. Each says which operation failed; the SQLite cause
//! is in `source()`.

use std::path::PathBuf;

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("could not open the state database at {}", path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error("could not migrate the state database to the current schema")]
    Migrate {
        #[source]
        source: rusqlite_migration::Error,
    },
    #[error("state database query failed: {op}")]
    Query {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    #[error("a {what} named `{name}` already exists")]
    Duplicate { what: &'static str, name: String },
    #[error("{what} limit of {limit} reached")]
    LimitReached { what: &'static str, limit: u32 },
    #[error("{what} `{id}` is still in use by {by}")]
    InUse { what: &'static str, id: String, by: String },
    #[error("stored {what} `{key}` cannot be read: {detail}")]
    Corrupt { what: &'static str, key: String, detail: String },
}
