//! Waiting for a process that is not our child to exit, through a pidfd
//! (Linux 5.3+): the descriptor becomes readable when the process ends.
//! The daemon uses it to notice a container's init exiting, even after a
//! daemon restart, without polling.

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
}
