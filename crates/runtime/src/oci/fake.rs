//! [`FakeRuntime`]: containers as entries in a map, with a call log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;

use super::{ContainerState, ExecOutput, ExecSpec, OciRuntime, RuntimeStatus};
use crate::{PrivateMount, RuntimeError};

/// One call made to a [`FakeRuntime`].
#[derive(Debug, Clone, PartialEq)]
pub enum RuntimeCall {
    Create(String),
    Start(String),
    Kill(String, i32),
    Delete(String),
    Exec(String, Vec<String>),
    Update(String, cubby_model::Limits),
}

/// An in-memory runtime. `create` fails for ids listed in `fail_create`,
/// so tests can exercise rollback. Killed containers stop at once.
#[derive(Debug, Default)]
pub struct FakeRuntime {
    state: Mutex<FakeState>,
}

#[derive(Debug, Default)]
struct FakeState {
    calls: Vec<RuntimeCall>,
    containers: BTreeMap<String, ContainerState>,
    next_pid: u32,
    fail_create: Vec<String>,
    private_mounts: BTreeMap<String, Vec<PrivateMount>>,
}

impl FakeRuntime {
    /// An empty runtime.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes the next `create` of a container whose id contains `pattern` fail.
    pub fn fail_create_of(&self, pattern: &str) {
        self.lock().fail_create.push(pattern.to_string());
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<RuntimeCall> {
        self.lock().calls.clone()
    }

    /// The private mounts the last creation of `id` was given.
    pub fn private_mounts(&self, id: &str) -> Vec<PrivateMount> {
        self.lock().private_mounts.get(id).cloned().unwrap_or_default()
    }

    /// Simulates the container's init exiting on its own.
    pub fn exit(&self, id: &str) {
        if let Some(c) = self.lock().containers.get_mut(id) {
            c.status = RuntimeStatus::Stopped;
            c.pid = None;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl OciRuntime for FakeRuntime {
    async fn create(
        &self,
        id: &str,
        bundle: &Path,
        _output: &Path,
        mounts: &[PrivateMount],
    ) -> Result<u32, RuntimeError> {
        let mut s = self.lock();
        s.calls.push(RuntimeCall::Create(id.into()));
        s.private_mounts.insert(id.into(), mounts.to_vec());
        if let Some(i) = s.fail_create.iter().position(|p| id.contains(p.as_str())) {
            s.fail_create.remove(i);
            return Err(RuntimeError::Command {
                id: id.into(),
                command: "fake create".into(),
                message: "injected failure".into(),
            });
        }
        if s.containers.contains_key(id) {
            return Err(RuntimeError::Command {
                id: id.into(),
                command: "fake create".into(),
                message: "already exists".into(),
            });
        }
        s.next_pid += 1;
        let pid = 10_000 + s.next_pid;
        s.containers.insert(
            id.into(),
            ContainerState {
                id: id.into(),
                status: RuntimeStatus::Created,
                pid: Some(pid),
                bundle: PathBuf::from(bundle),
            },
        );
        Ok(pid)
    }

    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let mut s = self.lock();
        s.calls.push(RuntimeCall::Start(id.into()));
        match s.containers.get_mut(id) {
            Some(c) if c.status == RuntimeStatus::Created => {
                c.status = RuntimeStatus::Running;
                Ok(())
            }
            _ => Err(RuntimeError::Command {
                id: id.into(),
                command: "fake start".into(),
                message: "not created".into(),
            }),
        }
    }

    async fn state(&self, id: &str) -> Result<Option<ContainerState>, RuntimeError> {
        Ok(self.lock().containers.get(id).cloned())
    }

    async fn kill(&self, id: &str, signal: i32, _all: bool) -> Result<(), RuntimeError> {
        let mut s = self.lock();
        s.calls.push(RuntimeCall::Kill(id.into(), signal));
        if let Some(c) = s.containers.get_mut(id) {
            c.status = RuntimeStatus::Stopped;
            c.pid = None;
        }
        Ok(())
    }

    async fn delete(&self, id: &str, _force: bool) -> Result<(), RuntimeError> {
        let mut s = self.lock();
        s.calls.push(RuntimeCall::Delete(id.into()));
        s.containers.remove(id);
        Ok(())
    }

    async fn exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecOutput, RuntimeError> {
        let mut s = self.lock();
        s.calls.push(RuntimeCall::Exec(id.into(), spec.args.clone()));
        Ok(ExecOutput { exit_code: 0, stdout: spec.args.join(" ").into_bytes(), stderr: Vec::new(), timed_out: false })
    }

    async fn update(&self, id: &str, limits: &cubby_model::Limits) -> Result<(), RuntimeError> {
        self.lock().calls.push(RuntimeCall::Update(id.into(), *limits));
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ContainerState>, RuntimeError> {
        Ok(self.lock().containers.values().cloned().collect())
    }
}
