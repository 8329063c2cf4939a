//! Tests of cubby-init running as a real PID 1, in a fresh pid namespace made
//! with `unshare --pid --fork`. They need root (or an unprivileged-userns
//! capable host); where `unshare` cannot create the namespace they print a
//! loud note and pass, except under `CI=true`, where they fail: CI never
//! skips silently. Every wait is bounded.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const TIMEOUT: Duration = Duration::from_secs(10);

fn pid_namespaces_available() -> bool {
    let ok = Command::new("unshare")
        .args(["--pid", "--fork", "true"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
            panic!("`unshare --pid --fork` is not available, and CI=true forbids skipping (run the tests as root)");
        }
        eprintln!("\n*** SKIPPED: `unshare --pid --fork` is not available here (run as root) ***\n");
    }
    ok
}

/// A fresh path in the temp dir (not created).
fn scratch_path(ext: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    std::env::temp_dir().join(format!(
        "cubby-init-pid1-{}-{}.{ext}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ))
}

fn process_file(json: &serde_json::Value) -> PathBuf {
    let path = scratch_path("json");
    std::fs::write(&path, json.to_string()).unwrap();
    path
}

/// `unshare --pid --fork cubby-init ...`; killed on drop (which tears down the
/// namespace, since the kernel kills a namespace when its init dies).
struct Ns {
    unshare: Child,
    file: PathBuf,
}

impl Ns {
    fn start(json: &serde_json::Value) -> Self {
        let file = process_file(json);
        let unshare = Command::new("unshare")
            .args(["--pid", "--fork", "--kill-child"])
            .arg(env!("CARGO_BIN_EXE_cubby-init"))
            .arg("--process-file")
            .arg(&file)
            .stdin(Stdio::null())
            .spawn()
            .expect("start unshare");
        Self { unshare, file }
    }

    /// Host pid of cubby-init (the only child of unshare), once it has
    /// spawned the workload (so its signal mask is already in place).
    fn init_pid(&self) -> Pid {
        let init = first_child(self.unshare.id());
        first_child(u32::try_from(init).unwrap());
        Pid::from_raw(init)
    }

    fn finish(&mut self) -> ExitStatus {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.unshare.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "cubby-init did not exit");
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Wait (bounded) for `pid` to have a child; return the child's pid.
fn first_child(pid: u32) -> i32 {
    let children = PathBuf::from(format!("/proc/{pid}/task/{pid}/children"));
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let text = std::fs::read_to_string(&children).unwrap_or_default();
        if let Some(child) = text.split_whitespace().next() {
            return child.parse().unwrap();
        }
        assert!(Instant::now() < deadline, "process {pid} got no child");
        thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for Ns {
    fn drop(&mut self) {
        if let Ok(None) = self.unshare.try_wait() {
            let _ = self.unshare.kill();
            let _ = self.unshare.wait();
        }
        let _ = std::fs::remove_file(Path::new(&self.file));
    }
}

#[test]
fn as_pid1_leftovers_get_sigterm_and_exit_is_prompt() {
    if !pid_namespaces_available() {
        return;
    }
    let started = Instant::now();
    let mut ns = Ns::start(&serde_json::json!({"args": ["sh", "-c", "sleep 100 & exit 3"]}));
    assert_eq!(ns.finish().code(), Some(3));
    // Well under the 2 s grace: the orphaned sleep died of the SIGTERM.
    assert!(started.elapsed() < Duration::from_millis(1500), "{:?}", started.elapsed());
}

#[test]
fn as_pid1_term_ignoring_leftovers_are_killed_after_grace() {
    if !pid_namespaces_available() {
        return;
    }
    // The main child exits only once the leftover ignores SIGTERM (marker).
    let marker = scratch_path("ready");
    let script = format!(
        "(trap '' TERM; : > {m}; exec sleep 100) & \
         while [ ! -e {m} ]; do sleep 0.01; done; exit 4",
        m = marker.display()
    );
    let started = Instant::now();
    let mut ns = Ns::start(&serde_json::json!({"args": ["sh", "-c", script]}));
    assert_eq!(ns.finish().code(), Some(4));
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_millis(1900), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    let _ = std::fs::remove_file(marker);
}

#[test]
fn as_pid1_sigterm_is_forwarded_to_handlerless_workload() {
    if !pid_namespaces_available() {
        return;
    }
    // `sleep` installs no handler: the signal must be forwarded by init, and
    // the workload's death by SIGTERM is reported as 128 + 15.
    let mut ns = Ns::start(&serde_json::json!({"args": ["sleep", "100"]}));
    let init = ns.init_pid();
    kill(init, Signal::SIGTERM).unwrap();
    assert_eq!(ns.finish().code(), Some(143));
}
