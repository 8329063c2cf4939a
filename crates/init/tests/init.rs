//! End-to-end tests of the cubby-init binary run as an ordinary (non-PID-1)
//! process with a temporary `--process-file`. Every wait is bounded.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cubby-init-it-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    fn process_file(&self, json: &serde_json::Value) -> PathBuf {
        let path = self.0.join("process.json");
        std::fs::write(&path, json.to_string()).unwrap();
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running init that is killed (and reaped) on drop, even if a test panics.
struct Init(Child);

impl Init {
    fn start(process_file: &std::path::Path) -> Self {
        let child = Command::new(env!("CARGO_BIN_EXE_cubby-init"))
            .arg("--process-file")
            .arg(process_file)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start cubby-init");
        Self(child)
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(i32::try_from(self.0.id()).unwrap())
    }

    /// Wait (bounded) for exit, then return status, stdout and stderr.
    fn finish(mut self) -> (ExitStatus, String, String) {
        let deadline = Instant::now() + TIMEOUT;
        let status = loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "cubby-init did not exit within {TIMEOUT:?}");
            thread::sleep(Duration::from_millis(10));
        };
        let mut out = String::new();
        let mut err = String::new();
        if let Some(mut s) = self.0.stdout.take() {
            s.read_to_string(&mut out).unwrap();
        }
        if let Some(mut s) = self.0.stderr.take() {
            s.read_to_string(&mut err).unwrap();
        }
        (status, out, err)
    }

    /// Read one stdout line (bounded); consumes the stdout handle.
    fn first_line(&mut self) -> String {
        let stdout = self.0.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        rx.recv_timeout(TIMEOUT).expect("no output from workload within timeout")
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn run(json: &serde_json::Value) -> (ExitStatus, String, String) {
    let scratch = Scratch::new();
    Init::start(&scratch.process_file(json)).finish()
}

#[test]
fn exit_code_is_propagated() {
    for code in [0, 3, 77] {
        let (status, _, _) = run(&serde_json::json!({
            "args": ["sh", "-c", format!("exit {code}")],
            "env": ["PATH=/usr/bin:/bin"],
        }));
        assert_eq!(status.code(), Some(code));
    }
}

#[test]
fn death_by_signal_maps_to_128_plus_signal() {
    let (status, _, _) = run(&serde_json::json!({"args": ["sh", "-c", "kill -KILL $$"]}));
    assert_eq!(status.code(), Some(128 + 9));
}

#[test]
fn sigterm_is_forwarded_to_the_workload() {
    let scratch = Scratch::new();
    let file = scratch.process_file(&serde_json::json!({
        "args": ["sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.05; done"],
        "env": ["PATH=/usr/bin:/bin"],
    }));
    let mut init = Init::start(&file);
    assert_eq!(init.first_line().trim(), "ready");
    kill(init.pid(), Signal::SIGTERM).unwrap();
    let (status, _, stderr) = init.finish();
    assert_eq!(status.code(), Some(42), "stderr: {stderr}");
}

#[test]
fn other_forwarded_signals_reach_the_workload() {
    let scratch = Scratch::new();
    let file = scratch.process_file(&serde_json::json!({
        "args": ["sh", "-c", "trap 'exit 11' USR1; trap 'exit 12' HUP; echo ready; while :; do sleep 0.05; done"],
    }));
    let mut init = Init::start(&file);
    assert_eq!(init.first_line().trim(), "ready");
    kill(init.pid(), Signal::SIGUSR1).unwrap();
    assert_eq!(init.finish().0.code(), Some(11));
}

#[test]
fn missing_command_exits_127_with_clear_message() {
    let (status, _, stderr) = run(&serde_json::json!({
        "args": ["definitely-not-a-command-xyz"],
        "env": ["PATH=/usr/bin:/bin"],
    }));
    assert_eq!(status.code(), Some(127));
    assert!(stderr.starts_with("cubby-init: "), "{stderr}");
    assert!(stderr.contains("definitely-not-a-command-xyz"), "{stderr}");
    assert!(stderr.contains("not found"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");

    let (status, _, stderr) = run(&serde_json::json!({"args": ["/nonexistent/bin/app"]}));
    assert_eq!(status.code(), Some(127));
    assert!(stderr.contains("/nonexistent/bin/app"), "{stderr}");
}

#[test]
fn non_executable_command_exits_126() {
    let scratch = Scratch::new();
    let script = scratch.0.join("script.sh");
    std::fs::write(&script, "#!/bin/sh\necho hi\n").unwrap();
    let (status, _, stderr) = run(&serde_json::json!({"args": [script]}));
    assert_eq!(status.code(), Some(126), "{stderr}");
    assert!(stderr.starts_with("cubby-init: "), "{stderr}");
}

#[test]
fn bad_process_files_exit_1_naming_the_file() {
    let scratch = Scratch::new();
    let missing = scratch.0.join("missing.json");
    let (status, _, stderr) = Init::start(&missing).finish();
    assert_eq!(status.code(), Some(1));
    assert!(stderr.starts_with("cubby-init: "), "{stderr}");
    assert!(stderr.contains(missing.to_str().unwrap()), "{stderr}");

    let (status, _, stderr) = run(&serde_json::json!({"args": []}));
    assert_eq!(status.code(), Some(1));
    assert!(stderr.contains("empty"), "{stderr}");
}

#[test]
fn env_and_cwd_are_applied() {
    let scratch = Scratch::new();
    let cwd = scratch.0.canonicalize().unwrap();
    let (status, stdout, stderr) = run(&serde_json::json!({
        "args": ["sh", "-c", "echo \"GREETING=$GREETING\"; echo \"HOME=${HOME-unset}\"; pwd"],
        "env": ["PATH=/usr/bin:/bin", "GREETING=hello world"],
        "cwd": cwd,
    }));
    assert_eq!(status.code(), Some(0), "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines, ["GREETING=hello world", "HOME=unset", cwd.to_str().unwrap()]);
}

#[test]
fn workload_starts_with_empty_signal_mask() {
    let (status, stdout, _) = run(&serde_json::json!({
        "args": ["sh", "-c", "grep SigBlk /proc/self/status"],
    }));
    assert_eq!(status.code(), Some(0));
    assert_eq!(stdout.trim(), "SigBlk:\t0000000000000000");
}

#[test]
fn orphans_are_reaped_and_exit_is_prompt() {
    // The background sleep outlives the main child; as a non-PID-1 init we do
    // not signal it, and must not wait for it either.
    let started = Instant::now();
    let (status, _, _) = run(&serde_json::json!({
        // Redirected, so only init (not the test's pipes) could wait for it.
        "args": ["sh", "-c", "sleep 5 >/dev/null 2>&1 & exit 5"],
    }));
    assert_eq!(status.code(), Some(5));
    assert!(started.elapsed() < Duration::from_secs(2), "init waited for the orphan: {:?}", started.elapsed());
}
