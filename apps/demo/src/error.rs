//! Startup errors of cubby-demo (request-time failures become HTTP 500s).

use std::path::PathBuf;

/// Why the demo could not start serving.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// `PORT` is set but is not a valid TCP port.
    #[error("invalid PORT {0:?}: expected a number between 1 and 65535")]
    InvalidPort(String),

    /// The database's parent directory could not be created.
    #[error("cannot create database directory {}", path.display())]
    CreateDir {
        /// Directory that was being created.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },

    /// Opening or initialising the SQLite database failed.
    #[error("cannot open database {}", path.display())]
    Db {
        /// Database file.
        path: PathBuf,
        /// Underlying SQLite error.
        source: rusqlite::Error,
    },

    /// Binding or serving the HTTP listener failed.
    #[error("cannot serve on {addr}")]
    Bind {
        /// Address that was being served.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },

    /// The async runtime could not start.
    #[error("cannot start the async runtime")]
    Runtime {
        /// The I/O error.
        source: std::io::Error,
    },
}
