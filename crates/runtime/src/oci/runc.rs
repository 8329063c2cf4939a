//! [`Runc`]: [`OciRuntime`] through runc's command line, with a runtime
//! root of the daemon's own so two daemons never see each other's
//! containers.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::{ContainerState, ExecOutput, ExecSpec, OciRuntime, RuntimeStatus};
use crate::RuntimeError;
use crate::mountns::{self, LazyBase, PrivateMount};

/// runc (or a runtime with the same command line) with its own state root.
#[derive(Debug, Clone)]
pub struct Runc {
    binary: PathBuf,
    root: PathBuf,
    proc_root: PathBuf,
    base: Option<Arc<LazyBase>>,
}

#[derive(serde::Deserialize)]
struct RawState {
    id: String,
    status: String,
    #[serde(default)]
    pid: u32,
    #[serde(default)]
    bundle: PathBuf,
}

impl RawState {
    fn into_state(self) -> ContainerState {
        let status = match self.status.as_str() {
            "created" | "creating" => RuntimeStatus::Created,
            "running" => RuntimeStatus::Running,
            "paused" | "pausing" => RuntimeStatus::Paused,
            _ => RuntimeStatus::Stopped,
        };
        let pid = (self.pid != 0 && status != RuntimeStatus::Stopped).then_some(self.pid);
        ContainerState { id: self.id, status, pid, bundle: self.bundle }
    }
}

fn not_found(stderr: &str) -> bool {
    stderr.contains("does not exist") || stderr.contains("not exist") || stderr.contains("not found")
}

impl Runc {
    /// Uses `binary` (a path or a name in `PATH`) with state under `root`.
    pub fn new(binary: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Self {
        Self { binary: binary.into(), root: root.into(), proc_root: PathBuf::from("/proc"), base: None }
    }

    /// Creates containers from a [`BaseNamespace`](crate::BaseNamespace)
    /// that hides the mounts under `hide` (the daemon's namespace pins and
    /// container roots), made at the first creation. Without it, each
    /// creation copies the daemon's whole namespace. `proc_root` is
    /// normally `/proc`.
    pub fn with_base_namespace(mut self, proc_root: impl Into<PathBuf>, hide: Vec<PathBuf>) -> Self {
        self.proc_root = proc_root.into();
        self.base = Some(Arc::new(LazyBase::new(self.proc_root.clone(), hide)));
        self
    }

    /// `runc create` or `runc run --detach` (`subcommand`): the host pid of
    /// the container's init.
    async fn create_with(
        &self,
        subcommand: &[&str],
        id: &str,
        bundle: &Path,
        output: &Path,
        mounts: &[PrivateMount],
    ) -> Result<u32, RuntimeError> {
        let pid_file = bundle.join("init.pid");
        let runc_log = bundle.join("runc.log");
        let out_file = crate::logs::OutputPipe::new(output).open_for_container()?;
        let err_file = out_file.try_clone().map_err(RuntimeError::io("open the output pipe", output))?;
        let bundle_s = bundle.display().to_string();
        let pid_s = pid_file.display().to_string();
        let log_s = runc_log.display().to_string();
        let mut args: Vec<&str> = vec!["--log", &log_s, "--log-format", "json"];
        args.extend_from_slice(subcommand);
        args.extend_from_slice(&["--bundle", &bundle_s, "--pid-file", &pid_s, id]);
        // The container inherits runc's stdout and stderr: the output FIFO,
        // which the daemon never reads to its end while waiting for runc.
        let mut command = self.command();
        command.args(&args).stdin(Stdio::null()).stdout(Stdio::from(out_file)).stderr(Stdio::from(err_file));
        let spawned = if mounts.is_empty() {
            command.spawn()
        } else {
            let runtime = tokio::runtime::Handle::current();
            mountns::spawn_private(&self.proc_root, self.base.clone(), mounts.to_vec(), move || {
                // The child is registered with this runtime's reaper.
                let _entered = runtime.enter();
                command.spawn()
            })
            .await
            .map_err(|e| RuntimeError::Namespace { id: id.into(), source: Box::new(e) })?
        };
        let status = match spawned {
            Ok(mut child) => child.wait().await,
            Err(e) => Err(e),
        }
        .map_err(|source| RuntimeError::Spawn { id: id.into(), command: self.shown(&args), source })?;
        if !status.success() {
            let detail = std::fs::read_to_string(&runc_log).unwrap_or_default();
            let message = detail
                .lines()
                .rev()
                .find_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .and_then(|v| v["msg"].as_str().map(str::to_string))
                .or_else(|| detail.lines().rev().find(|l| !l.trim().is_empty()).map(str::to_string))
                .unwrap_or_else(|| format!("exited with {status}"));
            return Err(RuntimeError::Command { id: id.into(), command: self.shown(&args), message });
        }
        let pid = std::fs::read_to_string(&pid_file).map_err(RuntimeError::io("read", &pid_file))?;
        pid.trim()
            .parse()
            .map_err(|_| RuntimeError::Output { id: id.into(), detail: format!("pid file holds `{}`", pid.trim()) })
    }

    /// Whether the runtime keeps state for `id` (its directory under the
    /// root): when it does not, `state` and `delete` need no process.
    fn knows(&self, id: &str) -> bool {
        !id.is_empty() && !id.contains('/') && self.root.join(id).exists()
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--root").arg(&self.root);
        cmd.kill_on_drop(true);
        cmd
    }

    fn shown(&self, args: &[&str]) -> String {
        format!("{} {}", self.binary.display(), args.join(" "))
    }

    /// Runs a runc subcommand to completion, capturing its output.
    async fn run_command(&self, id: &str, args: &[&str]) -> Result<std::process::Output, RuntimeError> {
        let out =
            self.command().args(args).stdin(Stdio::null()).output().await.map_err(|source| RuntimeError::Spawn {
                id: id.into(),
                command: self.shown(args),
                source,
            })?;
        Ok(out)
    }

    fn failed(&self, id: &str, args: &[&str], out: &std::process::Output) -> RuntimeError {
        RuntimeError::Command {
            id: id.into(),
            command: self.shown(args),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        }
    }
}

/// Reads a stream to the end, keeping at most `max` bytes.
async fn read_capped<R: tokio::io::AsyncRead + Unpin>(mut r: R, max: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = max.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
            }
        }
    }
    kept
}

#[async_trait]
impl OciRuntime for Runc {
    #[tracing::instrument(level = "debug", name = "runc.create", skip(self, bundle, output))]
    async fn create(
        &self,
        id: &str,
        bundle: &Path,
        output: &Path,
        mounts: &[PrivateMount],
    ) -> Result<u32, RuntimeError> {
        self.create_with(&["create"], id, bundle, output, mounts).await
    }

    #[tracing::instrument(level = "debug", name = "runc.run", skip(self, bundle, output))]
    async fn run(&self, id: &str, bundle: &Path, output: &Path, mounts: &[PrivateMount]) -> Result<u32, RuntimeError> {
        self.create_with(&["run", "--detach"], id, bundle, output, mounts).await
    }

    #[tracing::instrument(level = "debug", name = "runc.start", skip(self))]
    async fn start(&self, id: &str) -> Result<(), RuntimeError> {
        let args = ["start", id];
        let out = self.run_command(id, &args).await?;
        if out.status.success() { Ok(()) } else { Err(self.failed(id, &args, &out)) }
    }

    async fn state(&self, id: &str) -> Result<Option<ContainerState>, RuntimeError> {
        if !self.knows(id) {
            return Ok(None);
        }
        let args = ["state", id];
        let out = self.run_command(id, &args).await?;
        if !out.status.success() {
            if not_found(&String::from_utf8_lossy(&out.stderr)) {
                return Ok(None);
            }
            return Err(self.failed(id, &args, &out));
        }
        let raw: RawState = serde_json::from_slice(&out.stdout)
            .map_err(|e| RuntimeError::Output { id: id.into(), detail: e.to_string() })?;
        Ok(Some(raw.into_state()))
    }

    async fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), RuntimeError> {
        let sig = signal.to_string();
        let mut args = vec!["kill"];
        if all {
            args.push("--all");
        }
        args.extend([id, sig.as_str()]);
        let out = self.run_command(id, &args).await?;
        if out.status.success() {
            return Ok(());
        }
        let stderr = String::from_utf8_lossy(&out.stderr);
        // Killing what has already stopped is not an error.
        if stderr.contains("not running") || stderr.contains("process already finished") || not_found(&stderr) {
            return Ok(());
        }
        Err(self.failed(id, &args, &out))
    }

    #[tracing::instrument(level = "debug", name = "runc.delete", skip(self))]
    async fn delete(&self, id: &str, force: bool) -> Result<(), RuntimeError> {
        if !self.knows(id) {
            return Ok(());
        }
        let args: Vec<&str> = if force { vec!["delete", "--force", id] } else { vec!["delete", id] };
        let out = self.run_command(id, &args).await?;
        if out.status.success() || not_found(&String::from_utf8_lossy(&out.stderr)) {
            Ok(())
        } else {
            Err(self.failed(id, &args, &out))
        }
    }

    async fn exec(&self, id: &str, spec: &ExecSpec) -> Result<ExecOutput, RuntimeError> {
        let pid_file = std::env::temp_dir().join(format!("cubby-exec-{id}-{}.pid", cubby_model::random_id(8)));
        let pid_s = pid_file.display().to_string();
        let mut args: Vec<String> = vec!["exec".into(), "--pid-file".into(), pid_s, "--cwd".into(), spec.cwd.clone()];
        for (k, v) in &spec.env {
            args.push("--env".into());
            args.push(format!("{k}={v}"));
        }
        args.push(id.into());
        args.extend(spec.args.iter().cloned());
        let shown = self.shown(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let mut child = self
            .command()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| RuntimeError::Spawn { id: id.into(), command: shown.clone(), source })?;
        let stdout = tokio::spawn(read_capped(child.stdout.take().expect("piped"), spec.max_output));
        let stderr = tokio::spawn(read_capped(child.stderr.take().expect("piped"), spec.max_output));
        let (status, timed_out) = match tokio::time::timeout(spec.timeout, child.wait()).await {
            Ok(status) => {
                (status.map_err(|source| RuntimeError::Spawn { id: id.into(), command: shown.clone(), source })?, false)
            }
            Err(_) => {
                // runc forwards signals it can catch; SIGKILL it cannot, so
                // kill the process in the container by its host pid.
                if let Some(pid) = std::fs::read_to_string(&pid_file).ok().and_then(|p| p.trim().parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
                }
                let status = child.wait().await.map_err(|source| RuntimeError::Spawn {
                    id: id.into(),
                    command: shown.clone(),
                    source,
                })?;
                (status, true)
            }
        };
        let _ = std::fs::remove_file(&pid_file);
        let stdout = stdout.await.unwrap_or_default();
        let stderr = stderr.await.unwrap_or_default();
        use std::os::unix::process::ExitStatusExt;
        let exit_code =
            if timed_out { 124 } else { status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0)) };
        Ok(ExecOutput { exit_code, stdout, stderr, timed_out })
    }

    #[tracing::instrument(level = "debug", name = "runc.update", skip(self, limits))]
    async fn update(&self, id: &str, limits: &cubby_model::Limits) -> Result<(), RuntimeError> {
        let (quota, shares) = crate::bundle::cpu_quota_and_shares(limits.cpu);
        let (quota, period, shares) = (quota.to_string(), crate::bundle::CPU_PERIOD_US.to_string(), shares.to_string());
        let (memory, pids) = (limits.memory.0.to_string(), limits.pids.to_string());
        let args = [
            "update",
            "--cpu-quota",
            &quota,
            "--cpu-period",
            &period,
            "--cpu-share",
            &shares,
            "--memory",
            &memory,
            "--memory-swap",
            &memory,
            "--pids-limit",
            &pids,
            id,
        ];
        let out = self.run_command(id, &args).await?;
        if out.status.success() { Ok(()) } else { Err(self.failed(id, &args, &out)) }
    }

    async fn list(&self) -> Result<Vec<ContainerState>, RuntimeError> {
        let args = ["list", "--format", "json"];
        let out = self.run_command("*", &args).await?;
        if !out.status.success() {
            return Err(self.failed("*", &args, &out));
        }
        if out.stdout.iter().all(u8::is_ascii_whitespace) || out.stdout.starts_with(b"null") {
            return Ok(Vec::new());
        }
        let raws: Vec<RawState> = serde_json::from_slice(&out.stdout)
            .map_err(|e| RuntimeError::Output { id: "*".into(), detail: e.to_string() })?;
        Ok(raws.into_iter().map(RawState::into_state).collect())
    }
}
