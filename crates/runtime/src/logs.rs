//! Container output logs: one file per container on the host, appended to
//! by the container's processes (they hold it open as stdout and stderr)
//! and capped by rotation.
//!
//! The writers keep appending with `O_APPEND`, so the daemon can rotate
//! without their cooperation: when `current` passes the cap, its content
//! moves to `previous` and `current` is truncated. Disk use per container
//! stays under twice the cap.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

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

    /// The file containers append to.
    pub fn path(&self) -> &Path {
        &self.current
    }

    /// Moves the log aside once it passes `cap` bytes. Returns whether it did.
    pub fn rotate_if_over(&self, cap: u64) -> Result<bool, RuntimeError> {
        let len = match std::fs::metadata(&self.current) {
            Ok(m) => m.len(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(RuntimeError::io("stat", &self.current)(e)),
        };
        if len <= cap {
            return Ok(false);
        }
        std::fs::copy(&self.current, &self.previous).map_err(RuntimeError::io("copy", &self.previous))?;
        let file = std::fs::OpenOptions::new()
            .write(true)
            .open(&self.current)
            .map_err(RuntimeError::io("open", &self.current))?;
        file.set_len(0).map_err(RuntimeError::io("truncate", &self.current))?;
        Ok(true)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn rotation_caps_size_and_tail_spans_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let log = LogFile::new(dir.path(), "c1");
        let mut w = std::fs::OpenOptions::new().create(true).append(true).open(log.path()).unwrap();
        w.write_all(b"0123456789").unwrap();
        assert!(!log.rotate_if_over(16).unwrap());
        w.write_all(b"abcdefghij").unwrap();
        assert!(log.rotate_if_over(16).unwrap());
        // The writer keeps appending at the (new) end.
        w.write_all(b"XYZ").unwrap();
        assert_eq!(std::fs::read(log.path()).unwrap(), b"XYZ");
        assert_eq!(log.tail(8).unwrap(), b"fghijXYZ");
        log.remove().unwrap();
        assert!(log.tail(100).unwrap().is_empty());
    }
}
