//! Runtime errors: which container, which command, and what it said.

use std::path::PathBuf;

/// Why a runtime operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("`{command}` for container {id} failed: {message}")]
    Command { id: String, command: String, message: String },
    #[error("could not run `{command}` for container {id}")]
    Spawn {
        id: String,
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the OCI runtime printed output Cubby cannot read for container {id}: {detail}")]
    Output { id: String, detail: String },
    #[error("could not build the OCI spec of container {id}")]
    Spec {
        id: String,
        #[source]
        source: oci_spec::OciSpecError,
    },
    #[error("could not prepare the mount namespace that container {id} is created in")]
    Namespace {
        id: String,
        #[source]
        source: Box<RuntimeError>,
    },
    #[error("could not {op}")]
    MountNamespace {
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("could not {op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl RuntimeError {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { op, path, source }
    }
}
