//! Supervision loop of PID 1: signal forwarding, zombie reaping and the final
//! cleanup of leftover processes once the workload has exited.
//!
//! Design: the forwarded signals and SIGCHLD are blocked with the thread mask
//! *before* the workload is spawned, then consumed synchronously with
//! `sigwait`. Blocked signals are queued even for a PID 1 without handlers
//! (the kernel only discards *unblocked* default-disposition signals to a
//! namespace init), so nothing is lost and there are no async handlers.

use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{SigSet, Signal, kill};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::{Pid, getpid};

/// Signals that init forwards to the workload.
pub const FORWARDED: [Signal; 7] = [
    Signal::SIGTERM,
    Signal::SIGINT,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGWINCH,
];

/// How long leftover processes get between SIGTERM and SIGKILL.
pub const GRACE: Duration = Duration::from_secs(2);
/// Upper bound on waiting for SIGKILLed processes to be reaped.
const KILL_WAIT: Duration = Duration::from_secs(1);
const POLL: Duration = Duration::from_millis(10);

/// How the workload ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Exited normally with this status.
    Exited(i32),
    /// Killed by this signal.
    Signaled(Signal),
}

impl Outcome {
    /// Shell convention: the exit status, or 128 + signal number.
    pub fn exit_code(self) -> i32 {
        match self {
            Self::Exited(code) => code,
            Self::Signaled(sig) => 128 + sig as i32,
        }
    }
}

/// The set of signals init handles synchronously (forwarded ones + SIGCHLD).
pub fn handled_signals() -> SigSet {
    let mut set = SigSet::empty();
    for sig in FORWARDED {
        set.add(sig);
    }
    set.add(Signal::SIGCHLD);
    set
}

/// Block `set` on the calling (only) thread so its signals queue up for `sigwait`.
pub fn block(set: &SigSet) -> nix::Result<()> {
    set.thread_block()
}

/// Forward signals to `child` and reap zombies until `child` exits.
pub fn run(child: Pid, set: &SigSet) -> nix::Result<Outcome> {
    // SIGCHLD may have fired before we got here; it is pending, but also reap
    // right away in case the child is already gone.
    if let Some(outcome) = reap_all(Some(child)) {
        return Ok(outcome);
    }
    loop {
        let sig = match set.wait() {
            Ok(sig) => sig,
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e),
        };
        if sig == Signal::SIGCHLD {
            if let Some(outcome) = reap_all(Some(child)) {
                return Ok(outcome);
            }
        } else {
            // ESRCH: the child already died; its SIGCHLD is pending.
            let _ = kill(child, sig);
        }
    }
}

/// Reap every exited child without blocking. Returns the outcome of `main`
/// if it was among them.
fn reap_all(main: Option<Pid>) -> Option<Outcome> {
    let mut outcome = None;
    loop {
        match waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) if Some(pid) == main => {
                outcome = Some(Outcome::Exited(code));
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) if Some(pid) == main => {
                outcome = Some(Outcome::Signaled(sig));
            }
            Ok(WaitStatus::StillAlive) | Err(Errno::ECHILD) => return outcome,
            Err(Errno::EINTR) | Ok(_) => {}
            Err(_) => return outcome,
        }
    }
}

/// True once init has no children left (nothing to reap, now or later).
fn no_children_left() -> bool {
    reap_all(None);
    matches!(waitpid(None::<Pid>, Some(WaitPidFlag::WNOHANG)), Err(Errno::ECHILD))
}

/// Wait until init has no children or `timeout` passes; true if none are left.
fn wait_for_no_children(timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if no_children_left() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(POLL);
    }
}

/// After the workload exited: terminate whatever is left in the container.
///
/// Only as PID 1 (i.e. in our own pid namespace) is `kill(-1)` used: SIGTERM
/// to everything, up to `grace` to exit (reaping meanwhile), then SIGKILL.
/// When not PID 1 (tests, debugging on a host) nothing is signalled, since
/// `kill(-1)` would hit unrelated processes; zombies are still reaped.
pub fn cleanup(grace: Duration) {
    if getpid() != Pid::from_raw(1) {
        reap_all(None);
        return;
    }
    let everyone = Pid::from_raw(-1);
    if kill(everyone, Signal::SIGTERM) == Err(Errno::ESRCH) {
        reap_all(None);
        return;
    }
    if wait_for_no_children(grace) {
        return;
    }
    let _ = kill(everyone, Signal::SIGKILL);
    wait_for_no_children(KILL_WAIT);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_shell_convention() {
        assert_eq!(Outcome::Exited(0).exit_code(), 0);
        assert_eq!(Outcome::Exited(42).exit_code(), 42);
        assert_eq!(Outcome::Signaled(Signal::SIGKILL).exit_code(), 137);
        assert_eq!(Outcome::Signaled(Signal::SIGTERM).exit_code(), 143);
    }

    #[test]
    fn handled_set_has_forwarded_signals_and_sigchld() {
        let set = handled_signals();
        for sig in FORWARDED {
            assert!(set.contains(sig));
        }
        assert!(set.contains(Signal::SIGCHLD));
        assert!(!set.contains(Signal::SIGKILL));
    }
}
