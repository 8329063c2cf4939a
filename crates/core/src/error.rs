//! The core's errors. Each variant carries what the user needs to act (the
//! resource, the field) and what an operator needs to debug (the container
//! and the step), with the host cause in `source()`. The API maps each
//! variant to an HTTP status and a stable code.

use cubby_model::ValidationError;
use cubby_network::{NetlinkError, NftError};
use cubby_runtime::RuntimeError;
use cubby_storage::StorageError;
use cubby_store::StoreError;

/// Why a core operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The resource does not exist, or the caller may not see it.
    #[error("{kind} `{id}` not found")]
    NotFound { kind: &'static str, id: String },
    /// A field of the request is invalid.
    #[error("invalid request")]
    Invalid(#[source] ValidationError),
    /// The resource's current state does not allow the operation.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A name is already taken.
    #[error("a {what} named `{name}` already exists")]
    Duplicate { what: &'static str, name: String },
    /// A quota is used up.
    #[error("{what} limit of {limit} reached")]
    LimitReached { what: &'static str, limit: u32 },
    /// Only the admin may do this.
    #[error("this operation needs the admin token")]
    Forbidden,
    /// An uploaded archive is malformed or has a refused entry.
    #[error("the archive was refused: {reason}")]
    InvalidArchive { reason: String },
    /// An uploaded tenant export is malformed, tampered with or cut short.
    #[error("the export was refused: {reason}")]
    InvalidExport { reason: String },
    /// A backup directory that cannot be restored from as it is.
    #[error("the backup in {} cannot be used: {reason}", dir.display())]
    InvalidBackup { dir: std::path::PathBuf, reason: String },
    /// The object store backups go to failed or refused a request.
    #[error("the object store {url} failed to {op}")]
    ObjectStore {
        url: String,
        op: &'static str,
        #[source]
        source: Box<object_store::Error>,
    },
    /// An upload is larger than allowed.
    #[error("the upload is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    /// The container's main process failed to start or exited at once.
    #[error("container {id} failed to start: {reason}")]
    StartFailed { id: String, reason: String, log_tail: String },
    #[error("storage step `{step}` failed{}", for_container(container))]
    Storage {
        step: &'static str,
        container: Option<String>,
        #[source]
        source: Box<StorageError>,
    },
    #[error("runtime step `{step}` failed{}", for_container(container))]
    Runtime {
        step: &'static str,
        container: Option<String>,
        #[source]
        source: Box<RuntimeError>,
    },
    #[error("network step `{step}` failed{}", for_container(container))]
    Netlink {
        step: &'static str,
        container: Option<String>,
        #[source]
        source: Box<NetlinkError>,
    },
    #[error("firewall step `{step}` failed")]
    Firewall {
        step: &'static str,
        #[source]
        source: Box<NftError>,
    },
    #[error("state database")]
    Store(#[source] Box<StoreError>),
    #[error("could not {op} {}", path.display())]
    Io {
        op: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn for_container(c: &Option<String>) -> String {
    c.as_ref().map(|c| format!(" for container {c}")).unwrap_or_default()
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Duplicate { what, name } => Self::Duplicate { what, name },
            StoreError::LimitReached { what, limit } => Self::LimitReached { what, limit },
            StoreError::InUse { what, id, by } => Self::Conflict {
                code: "in_use",
                message: format!("{what} `{id}` is still used by {by}: remove them first"),
            },
            other => Self::Store(Box::new(other)),
        }
    }
}

impl From<ValidationError> for Error {
    fn from(e: ValidationError) -> Self {
        Self::Invalid(e)
    }
}

/// Milliseconds since `since`, saturating.
/// `err` and its causes, `: `-separated.
pub(crate) fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

pub(crate) fn elapsed_ms(since: std::time::Instant) -> u64 {
    u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl Error {
    /// This error and its causes, `: `-separated, for logs (`Display`
    /// gives only the outermost, as the error guide asks).
    pub fn chain(&self) -> String {
        error_chain(self)
    }

    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid(ValidationError::new(field, message))
    }

    pub(crate) fn storage(step: &'static str, container: &str) -> impl FnOnce(StorageError) -> Self {
        let container = Some(container.to_string());
        move |source| Self::Storage { step, container, source: Box::new(source) }
    }

    pub(crate) fn runtime(step: &'static str, container: &str) -> impl FnOnce(RuntimeError) -> Self {
        let container = Some(container.to_string());
        move |source| Self::Runtime { step, container, source: Box::new(source) }
    }

    pub(crate) fn netlink(step: &'static str, container: &str) -> impl FnOnce(NetlinkError) -> Self {
        let container = Some(container.to_string());
        move |source| Self::Netlink { step, container, source: Box::new(source) }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<std::path::PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }
}
