//! Running a command in a container, and reading its output log.

use std::sync::Arc;
use std::time::Duration;

use cubby_model::{ContainerId, ContainerStatus, ExecRequest, ExecResult, validate_command, validate_env};
use cubby_runtime::ExecSpec;

use super::ContainerService;
use crate::{Caller, Error};

/// Each of stdout and stderr of an exec is cut after this.
pub const MAX_EXEC_OUTPUT: usize = 1 << 20;
/// Longest exec.
pub const MAX_EXEC_SECONDS: u32 = 600;
/// Most log bytes one request returns.
pub const MAX_LOG_BYTES: u64 = 1 << 20;

impl ContainerService {
    /// Runs `req.command` in a running container, as its user, in its
    /// working dir, with its env plus `req.environment_vars`.
    pub async fn exec(
        self: &Arc<Self>,
        caller: &Caller,
        id: &ContainerId,
        req: &ExecRequest,
    ) -> Result<ExecResult, Error> {
        let rec = self.record(caller, id)?;
        validate_command("command", &req.command)?;
        validate_env("environment_vars", &req.environment_vars)?;
        let timeout = req.timeout_seconds.unwrap_or(30);
        if timeout == 0 || timeout > MAX_EXEC_SECONDS {
            return Err(Error::invalid("timeout_seconds", format!("give 1 to {MAX_EXEC_SECONDS} seconds")));
        }
        if rec.status != ContainerStatus::Running {
            return Err(Error::Conflict {
                code: "container_not_running",
                message: format!("container {id} is {}: start it first", rec.status.as_str()),
            });
        }
        let mut env = self.process_env(&rec, &self.store.network(id)?);
        env.extend(req.environment_vars.clone());
        let spec = ExecSpec {
            args: req.command.clone(),
            env,
            cwd: rec.workdir.clone().unwrap_or_else(|| "/".into()),
            timeout: Duration::from_secs(u64::from(timeout)),
            max_output: MAX_EXEC_OUTPUT,
        };
        let out = self.host.runtime.exec(id.as_str(), &spec).await.map_err(Error::runtime("exec", id.as_str()))?;
        // A command the OOM killer ended is told at once.
        self.check_oom(&rec);
        Ok(ExecResult {
            exit_code: out.exit_code,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        })
    }

    /// The last `max_bytes` of the container's output.
    pub fn logs(&self, caller: &Caller, id: &ContainerId, max_bytes: u64) -> Result<Vec<u8>, Error> {
        let rec = self.record(caller, id)?;
        let paths = self.paths(&rec.id, rec.slot);
        paths.log.tail(max_bytes.min(MAX_LOG_BYTES)).map_err(Error::runtime("read logs", id.as_str()))
    }
}
