//! Storage errors. Each variant names the path and the operation; causes
//! are in `source()` and never repeated in the message.

use std::path::PathBuf;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("btrfs {op} failed on {}", path.display())]
    Btrfs {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: libbtrfsutil::Error,
    },
    #[error("could not {op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("could not {op} {}", target.display())]
    Mount {
        op: &'static str,
        target: PathBuf,
        #[source]
        source: nix::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Command { command: String, status: String, stderr: String },
    #[error("could not run `{command}`")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is not on btrfs", path.display())]
    NotBtrfs { path: PathBuf },
    #[error("archive entry `{entry}` refused: {reason}")]
    Refused { entry: String, reason: String },
    #[error("archive is larger than the limit of {limit} bytes once unpacked")]
    TooLarge { limit: u64 },
    #[error("could not read the archive")]
    Archive {
        #[source]
        source: std::io::Error,
    },
    #[error("the OCI image archive is unusable: {detail}")]
    Oci { detail: String },
    #[error("{what} not found at {}", path.display())]
    Missing { what: &'static str, path: PathBuf },
}

impl StorageError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }
}
