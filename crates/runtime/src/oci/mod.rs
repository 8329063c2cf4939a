//! The OCI runtime that creates, starts, signals and removes containers.
//!
//! [`OciRuntime`] is the seam. [`Runc`] drives the `runc` binary (or any
//! runtime with runc's command line: crun, youki, runsc); [`FakeRuntime`]
//! records calls and keeps states in memory for unit tests.

mod fake;
mod runc;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use async_trait::async_trait;

pub use fake::{FakeRuntime, RuntimeCall};
pub use runc::Runc;

use crate::{PrivateMount, RuntimeError};

/// The runtime's view of a container's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuntimeStatus {
    /// Set up; its init waits for `start`.
    Created,
    Running,
    Paused,
    /// Its init has exited; it must still be deleted.
    Stopped,
}

/// What the runtime reports about one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerState {
    pub id: String,
    pub status: RuntimeStatus,
    /// Host pid of its init, while it has one.
    pub pid: Option<u32>,
    pub bundle: PathBuf,
}

/// A process to run in a running container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub cwd: String,
    pub timeout: Duration,
    /// Each of stdout and stderr is cut after this many bytes.
    pub max_output: usize,
}

/// What an exec produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// Exit code; 128+N if killed by signal N; 124 on timeout.
    pub exit_code: i32,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub timed_out: bool,
}

/// The container operations of an OCI runtime. Removal is idempotent.
#[async_trait]
pub trait OciRuntime: Send + Sync + std::fmt::Debug {
    /// Creates container `id` from the bundle in `bundle`, leaving its init
    /// waiting. The container's stdout and stderr are the FIFO at `output`
    /// (made if missing; see [`crate::logs`]), which the caller reads.
    /// `mounts` (its root filesystem, its namespace pins) are made in a
    /// private mount namespace for this creation only: the container keeps
    /// them, the host never has them. Returns the host pid of its init.
    async fn create(
        &self,
        id: &str,
        bundle: &Path,
        output: &Path,
        mounts: &[PrivateMount],
    ) -> Result<u32, RuntimeError>;
    /// Lets a created container's init run.
    async fn start(&self, id: &str) -> Result<(), RuntimeError>;
    /// Creates and starts in one step (one runtime process instead of
    /// two); the host pid of its init.
    async fn run(&self, id: &str, bundle: &Path, output: &Path, mounts: &[PrivateMount]) -> Result<u32, RuntimeError> {
        let pid = self.create(id, bundle, output, mounts).await?;
        self.start(id).await?;
        Ok(pid)
    }
    /// The container's state, or `None` if the runtime does not know it.
    async fn state(&self, id: &str) -> Result<Option<ContainerState>, RuntimeError>;
    /// Sends `signal` to the container's init (or to every process when `all`).
    async fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), RuntimeError>;
    /// Removes the container's runtime state and cgroup, killing it first
    /// if `force`. Succeeds when the runtime does not know it.
    async fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError>;
    /// Runs a process in a running container and collects its output.
    async fn exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecOutput, RuntimeError>;
    /// Changes the cgroup limits of a created or running container.
    async fn update(&self, id: &str, limits: &cubby_model::Limits) -> Result<(), RuntimeError>;
    /// Every container the runtime knows (in this daemon's runtime root).
    async fn list(&self) -> Result<Vec<ContainerState>, RuntimeError>;
}
