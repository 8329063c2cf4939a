//! Container output: a FIFO the container writes, and a capped log on the
//! host that only the daemon writes.
//!
//! A tenant's root must not hold a writable fd of a host file: it could
//! `fallocate` or `ftruncate` it past every quota, or flood it faster than
//! any rotation. So the container's stdout and stderr are a FIFO
//! ([`OutputPipe`], in its bundle), and [`collect`] moves what comes out of
//! it into [`LogFile`]:
//! - the bytes go to `{id}.log`; past the cap it is renamed to
//!   `{id}.log.1` (the older one goes) and a new one starts, so disk use
//!   per container stays under twice the cap, and nothing is ever copied;
//! - a token bucket bounds the bytes per second taken from the pipe: past
//!   it the pipe fills and the tenant's writes wait (backpressure), as with
//!   Docker's default blocking log mode, instead of costing the daemon CPU.
//!
//! The container's fd is opened read-write on the FIFO, so the pipe always
//! has a reader: when the daemon is down (a restart), writes wait once the
//! pipe is full instead of killing the app with `SIGPIPE`, and the next
//! daemon opens the FIFO again by its path. `ftruncate`, `fallocate` and
//! `lseek` fail on a FIFO.

use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tokio::io::AsyncReadExt;

use crate::RuntimeError;

/// A container's log: `{dir}/{id}.log` and `{dir}/{id}.log.1`.
#[derive(Debug, Clone)]
pub struct LogFile {
    current: PathBuf,
    previous: PathBuf,
}

impl LogFile {
    /// The log of container `id` under `dir`.
    pub fn new(dir: &Path, id: &str) -> Self {
        Self { current: dir.join(format!("{id}.log")), previous: dir.join(format!("{id}.log.1")) }
    }

    /// The file new output is appended to.
    pub fn path(&self) -> &Path {
        &self.current
    }

    /// Opens the current file for appending (made 0600 if missing), and
    /// its size.
    fn open_current(&self) -> Result<(std::fs::File, u64), RuntimeError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(&self.current)
            .map_err(RuntimeError::io("open", &self.current))?;
        let len = file.metadata().map_err(RuntimeError::io("stat", &self.current))?.len();
        Ok((file, len))
    }

    /// Moves the current file aside (replacing the older one) by a rename.
    fn rotate(&self) -> Result<(), RuntimeError> {
        match std::fs::rename(&self.current, &self.previous) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RuntimeError::io("rotate", &self.current)(e)),
        }
    }

    /// Appends `bytes` (whole lines), first moving the current file aside
    /// when they would take it past `cap`.
    pub fn append(&self, bytes: &[u8], cap: u64) -> Result<(), RuntimeError> {
        let (mut file, len) = self.open_current()?;
        if len > 0 && len + bytes.len() as u64 > cap {
            drop(file);
            self.rotate()?;
            file = self.open_current()?.0;
        }
        file.write_all(bytes).map_err(RuntimeError::io("write", &self.current))
    }

    /// The last `max` bytes of output, oldest first, across both files.
    pub fn tail(&self, max: u64) -> Result<Vec<u8>, RuntimeError> {
        let mut out = Vec::new();
        let current = read_tail(&self.current, max)?;
        let room = max.saturating_sub(current.len() as u64);
        if room > 0 {
            out.extend(read_tail(&self.previous, room)?);
        }
        out.extend(current);
        Ok(out)
    }

    /// Removes both files. Succeeds when absent.
    pub fn remove(&self) -> Result<(), RuntimeError> {
        for path in [&self.current, &self.previous] {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(RuntimeError::io("remove", path)(e)),
            }
        }
        Ok(())
    }
}

fn read_tail(path: &Path, max: u64) -> Result<Vec<u8>, RuntimeError> {
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(RuntimeError::io("open", path)(e)),
    };
    let len = file.metadata().map_err(RuntimeError::io("stat", path))?.len();
    let start = len.saturating_sub(max);
    file.seek(SeekFrom::Start(start)).map_err(RuntimeError::io("seek", path))?;
    let mut buf = Vec::new();
    file.take(max).read_to_end(&mut buf).map_err(RuntimeError::io("read", path))?;
    Ok(buf)
}

/// The FIFO a container's stdout and stderr write to.
#[derive(Debug, Clone)]
pub struct OutputPipe {
    path: PathBuf,
}

impl OutputPipe {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Makes the FIFO (mode 0600, root's) unless it exists already.
    pub fn ensure(&self) -> Result<(), RuntimeError> {
        match nix::unistd::mkfifo(&self.path, nix::sys::stat::Mode::S_IRUSR | nix::sys::stat::Mode::S_IWUSR) {
            Ok(()) | Err(nix::errno::Errno::EEXIST) => {}
            Err(e) => return Err(RuntimeError::io("make the output pipe", &self.path)(e.into())),
        }
        let kind = std::fs::symlink_metadata(&self.path).map_err(RuntimeError::io("stat", &self.path))?.file_type();
        if !std::os::unix::fs::FileTypeExt::is_fifo(&kind) {
            return Err(RuntimeError::io("use as the output pipe", &self.path)(std::io::Error::other(
                "it exists and is not a FIFO",
            )));
        }
        Ok(())
    }

    /// The container's end: read-write, so the pipe always has a reader
    /// and a write never raises `SIGPIPE` while the daemon is away.
    pub fn open_for_container(&self) -> Result<std::fs::File, RuntimeError> {
        self.ensure()?;
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.path)
            .map_err(RuntimeError::io("open the output pipe", &self.path))?;
        // Room for a daemon restart's worth of output (best effort: the
        // kernel caps it at fs.pipe-max-size).
        // SAFETY: F_SETPIPE_SZ on an fd this function owns; no memory is passed.
        let _ = unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&file), libc::F_SETPIPE_SZ, PIPE_BYTES) };
        Ok(file)
    }

    /// The daemon's end (made if missing), opened now, so what the
    /// container writes from its first instruction on is kept even if it
    /// exits at once. Call from within a tokio runtime.
    pub fn open_for_daemon(&self) -> Result<DaemonEnd, RuntimeError> {
        self.ensure()?;
        let receiver = tokio::net::unix::pipe::OpenOptions::new()
            .read_write(true)
            .open_receiver(&self.path)
            .map_err(RuntimeError::io("open the output pipe", &self.path))?;
        Ok(DaemonEnd { receiver, path: self.path.clone() })
    }

    /// Removes the FIFO. Succeeds when absent.
    pub fn remove(&self) -> Result<(), RuntimeError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(RuntimeError::io("remove", &self.path)(e)),
        }
    }
}

/// The daemon's end of an [`OutputPipe`], read-write (see [`collect`]).
#[derive(Debug)]
pub struct DaemonEnd {
    receiver: tokio::net::unix::pipe::Receiver,
    path: PathBuf,
}

/// Size asked for the output pipe's buffer.
const PIPE_BYTES: libc::c_int = 1 << 20;

/// How much output is kept, and how fast it is taken.
#[derive(Debug, Clone, Copy)]
pub struct LogPolicy {
    /// Bytes per file; two files at most.
    pub cap: u64,
    /// Bytes per second taken from the pipe, sustained.
    pub rate: u64,
    /// Bytes that may be taken at once above the rate.
    pub burst: u64,
}

impl LogPolicy {
    /// A policy with `cap` bytes per file, 1 MiB/s sustained and 4 MiB bursts.
    pub fn with_cap(cap: u64) -> Self {
        Self { cap: cap.max(4096), rate: 1 << 20, burst: 4 << 20 }
    }
}

/// A token bucket of bytes.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
    rate: f64,
    burst: f64,
}

impl Bucket {
    fn new(policy: LogPolicy) -> Self {
        Self {
            tokens: policy.burst as f64,
            at: Instant::now(),
            rate: policy.rate.max(1) as f64,
            burst: policy.burst as f64,
        }
    }

    /// Takes `n` bytes' worth; how long to wait before taking more.
    fn take(&mut self, n: usize) -> Duration {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.at).as_secs_f64() * self.rate).min(self.burst);
        self.at = now;
        self.tokens -= n as f64;
        if self.tokens >= 0.0 { Duration::ZERO } else { Duration::from_secs_f64(-self.tokens / self.rate) }
    }
}

/// Moves what the container writes to the pipe (`rx`) into `log`, under `policy`,
/// until `stop` resolves; then takes what is left in the pipe (the last
/// words of an app that has exited) and returns. The daemon's end is
/// read-write too: a FIFO reader gets no end-of-file or hang-up it could
/// rely on when it opened after the writer, so the caller says when the
/// container is gone. Errors writing the log are logged and the output
/// dropped: a full disk must not stall the tenant.
pub async fn collect(
    mut rx: DaemonEnd,
    log: LogFile,
    policy: LogPolicy,
    stop: impl std::future::Future<Output = ()>,
) -> Result<(), RuntimeError> {
    let pipe = rx.path.clone();
    let rx = &mut rx.receiver;
    let mut sink = Sink { log, policy, file: None, len: 0 };
    let mut bucket = Bucket::new(policy);
    let mut buf = vec![0u8; 64 << 10];
    tokio::pin!(stop);
    loop {
        let n = tokio::select! {
            read = rx.read(&mut buf) => match read {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(RuntimeError::io("read the output pipe", &pipe)(e)),
            },
            () = &mut stop => break,
        };
        sink.write(&buf[..n]);
        let wait = bucket.take(n);
        if !wait.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = &mut stop => break,
            }
        }
    }
    // What is left, without waiting for more (and at most two files' worth).
    // A plain read of the non-blocking fd: the reactor may not have seen
    // the data yet.
    let mut left = 2 * policy.cap;
    while left > 0 {
        match nix::unistd::read(&*rx, &mut buf) {
            Ok(n) if n > 0 => {
                sink.write(&buf[..n]);
                left = left.saturating_sub(n as u64);
            }
            _ => break,
        }
    }
    Ok(())
}

/// The log as [`collect`] writes it: appended, renamed aside past the cap.
struct Sink {
    log: LogFile,
    policy: LogPolicy,
    file: Option<std::fs::File>,
    len: u64,
}

impl Sink {
    /// Appends `bytes`, starting a new file (the current one renamed
    /// aside) each time the cap is reached: no file passes the cap.
    fn write(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.file.is_none() {
                match self.log.open_current() {
                    Ok((file, len)) => (self.file, self.len) = (Some(file), len),
                    Err(e) => {
                        tracing::warn!(error = %e, "container output dropped");
                        return;
                    }
                }
            }
            if self.len >= self.policy.cap {
                self.file = None;
                if let Err(e) = self.log.rotate() {
                    tracing::warn!(error = %e, "log rotation failed; container output dropped");
                    return;
                }
                continue;
            }
            let room = usize::try_from(self.policy.cap - self.len).unwrap_or(usize::MAX);
            let (now, rest) = bytes.split_at(bytes.len().min(room));
            let Some(file) = &mut self.file else { return };
            match file.write_all(now) {
                Ok(()) => self.len += now.len() as u64,
                Err(e) => {
                    tracing::warn!(path = %self.log.current.display(), error = %e, "container output dropped");
                    return;
                }
            }
            bytes = rest;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(pipe: &OutputPipe) -> std::fs::File {
        pipe.open_for_container().unwrap()
    }

    #[tokio::test]
    async fn output_is_collected_and_rotated_by_rename_under_twice_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let pipe = OutputPipe::new(dir.path().join("output"));
        let log = LogFile::new(dir.path(), "c1");
        let mut w = writer(&pipe);
        let policy = LogPolicy { cap: 4096, rate: 1 << 30, burst: 1 << 30 };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(collect(pipe.open_for_daemon().unwrap(), log.clone(), policy, async move {
            drop(stopped.await);
        }));
        for i in 0..100u8 {
            w.write_all(&[b'a' + i % 26; 100]).unwrap();
        }
        drop(w);
        // What the app wrote before it went is collected when told to stop.
        stop.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(5), task).await.unwrap().unwrap().unwrap();
        let sizes: Vec<u64> =
            [&log.current, &log.previous].iter().map(|p| std::fs::metadata(p).unwrap().len()).collect();
        assert!(sizes.iter().all(|&s| s <= 4096) && sizes.iter().sum::<u64>() <= 8192, "{sizes:?}");
        // The newest output is last in the tail.
        let tail = log.tail(100).unwrap();
        assert_eq!(tail, vec![b'a' + 99 % 26; 100]);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(&log.current).unwrap().permissions().mode() & 0o777, 0o600);
        log.remove().unwrap();
        pipe.remove().unwrap();
        assert!(log.tail(100).unwrap().is_empty() && !pipe.path().exists());
    }

    #[tokio::test]
    async fn the_container_end_cannot_be_truncated_or_grown() {
        let dir = tempfile::tempdir().unwrap();
        let pipe = OutputPipe::new(dir.path().join("output"));
        let w = writer(&pipe);
        // Positive control: the same calls work on a regular file.
        let regular = std::fs::File::create(dir.path().join("plain")).unwrap();
        regular.set_len(1 << 30).unwrap();
        assert!(w.set_len(1 << 40).is_err(), "ftruncate on the output pipe");
        // SAFETY: fallocate on an fd owned by this test; no memory is passed.
        let grown = unsafe { libc::fallocate(std::os::fd::AsRawFd::as_raw_fd(&w), 0, 0, 1 << 30) };
        assert_ne!(grown, 0, "fallocate on the output pipe");
    }

    #[tokio::test]
    async fn a_flood_is_taken_at_the_rate_and_the_writer_waits() {
        let dir = tempfile::tempdir().unwrap();
        let pipe = OutputPipe::new(dir.path().join("output"));
        let log = LogFile::new(dir.path(), "c1");
        let w = writer(&pipe);
        let policy = LogPolicy { cap: 1 << 20, rate: 256 << 10, burst: 64 << 10 };
        let task = tokio::spawn(collect(pipe.open_for_daemon().unwrap(), log.clone(), policy, std::future::pending()));
        // A writer that never stops, on its own thread, non-blocking.
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = std::sync::Arc::clone(&stop);
        let flood = std::thread::spawn(move || {
            let mut w = w;
            let chunk = vec![b'x'; 64 << 10];
            let mut sent = 0u64;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) && sent < (1 << 30) {
                // Blocking writes: they wait while the pipe is full.
                if w.write_all(&chunk).is_err() {
                    break;
                }
                sent += chunk.len() as u64;
            }
            sent
        });
        tokio::time::sleep(Duration::from_millis(1000)).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let taken: u64 =
            [&log.current, &log.previous].iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
        // About a second at 256 KiB/s plus the burst, and far from what
        // the writer could do unbounded.
        assert!(taken < 1 << 20, "taken {taken} bytes in a second");
        // Drain so the writer's last blocked write returns.
        let mut reader =
            std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(pipe.path()).unwrap();
        let mut sink = vec![0u8; 1 << 20];
        let deadline = Instant::now() + Duration::from_secs(10);
        while !flood.is_finished() && Instant::now() < deadline {
            let _ = reader.read(&mut sink);
        }
        let sent = flood.join().unwrap();
        assert!(sent < 1 << 30, "the writer was never held back");
        task.abort();
    }
}
