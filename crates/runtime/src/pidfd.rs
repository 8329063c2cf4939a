//! Waiting for a process that is not our child to exit, through a pidfd
//! (Linux 5.3+): the descriptor becomes readable when the process ends.
//! The daemon uses it to notice a container's init exiting, even after a
//! daemon restart, without polling, and killing it without a pid race.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

/// A handle on a process that resolves when it exits.
#[derive(Debug)]
pub struct ProcessHandle {
    fd: AsyncFd<PidFd>,
}

#[derive(Debug)]
struct PidFd(OwnedFd);

impl AsRawFd for PidFd {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

impl ProcessHandle {
    /// Opens a handle on `pid`. Fails with ESRCH if it has already exited.
    pub fn open(pid: u32) -> std::io::Result<Self> {
        let pid = libc::pid_t::try_from(pid).map_err(|_| std::io::Error::from_raw_os_error(libc::ESRCH))?;
        // SAFETY: pidfd_open takes a pid and flags and returns a new file
        // descriptor or -1; it touches no memory of ours.
        let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let raw = RawFd::try_from(raw).map_err(|_| std::io::Error::from_raw_os_error(libc::EBADF))?;
        // SAFETY: `raw` is a descriptor the kernel just returned to us, open
        // and owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: `PidFd` owns the descriptor for as long as the AsyncFd
        // holds it and always returns that same descriptor.
        let fd = unsafe { AsyncFd::register_with_interest(PidFd(owned), Interest::READABLE) }
            .map_err(|e| e.into_parts().1)?;
        Ok(Self { fd })
    }

    /// Sends SIGKILL through the pidfd: it reaches this process and never
    /// a later one that reused its pid.
    pub fn kill(&self) -> std::io::Result<()> {
        self.signal(libc::SIGKILL)
    }

    /// Sends `signal` through the pidfd. A process already gone is fine.
    pub fn signal(&self, signal: i32) -> std::io::Result<()> {
        // SAFETY: pidfd_send_signal takes our open pidfd, a signal number, a
        // null siginfo and flags 0; it reads no memory of ours.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.get_ref().as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        if r < 0 {
            let e = std::io::Error::last_os_error();
            return if e.raw_os_error() == Some(libc::ESRCH) { Ok(()) } else { Err(e) };
        }
        Ok(())
    }

    /// Resolves once the process has exited.
    pub async fn exited(&self) {
        // Readiness never clears once the process is gone, so one wake is enough.
        let _ = self.fd.readable().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_when_the_process_exits() {
        let mut child = std::process::Command::new("sleep").arg("0.2").spawn().unwrap();
        let handle = ProcessHandle::open(child.id()).unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), handle.exited()).await.unwrap();
        child.wait().unwrap();
    }

    #[tokio::test]
    async fn kill_ends_the_process() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let handle = ProcessHandle::open(child.id()).unwrap();
        handle.kill().unwrap();
        tokio::time::timeout(std::time::Duration::from_secs(5), handle.exited()).await.unwrap();
        assert!(!child.wait().unwrap().success());
        handle.kill().unwrap();
    }
}
