//! cgroupfs: where a container's processes are accounted, read from a
//! root path (normally `/sys/fs/cgroup`) so tests can use a temp dir.
//!
//! The runtime creates and removes each container's cgroup; the daemon
//! reads it (which processes remain, memory in use) and removes leftovers
//! when it cleans up. Three host layouts exist and all are handled:
//! - v2 (unified): one tree, `cgroup.controllers` at the root;
//! - v1: one tree per controller (`cpu/`, `memory/`, `pids/`, ...);
//! - hybrid: v1 trees plus a v2 tree at `unified/`.

mod fake;

use std::path::{Path, PathBuf};

pub use fake::FakeCgroups;

use crate::RuntimeError;

/// Read and clean-up access to a container's cgroup. `cgroup` is the path
/// relative to each hierarchy root, such as `/cubby/cq3v7hxk2m4ta`.
pub trait Cgroups: Send + Sync + std::fmt::Debug {
    /// Host pids in the cgroup; empty when it does not exist.
    fn pids(&self, cgroup: &str) -> Result<Vec<u32>, RuntimeError>;
    /// Every directory this cgroup has on the host (one per hierarchy).
    fn dirs(&self, cgroup: &str) -> Vec<PathBuf>;
    /// Bytes of memory charged to the cgroup, if it exists.
    fn memory_usage(&self, cgroup: &str) -> Result<Option<u64>, RuntimeError>;
    /// Removes the cgroup and any child cgroups, deepest first. They must
    /// hold no processes. Succeeds when absent.
    fn remove(&self, cgroup: &str) -> Result<(), RuntimeError>;
    /// Freezes every process of the cgroup and waits until they are frozen.
    fn freeze(&self, cgroup: &str) -> Result<(), RuntimeError>;
    /// Lets a frozen cgroup run again.
    fn thaw(&self, cgroup: &str) -> Result<(), RuntimeError>;
    /// Memory charged to the cgroup for file pages (page cache), in bytes.
    fn file_cache(&self, cgroup: &str) -> Result<Option<u64>, RuntimeError>;
    /// CPU time its processes used, in nanoseconds, if it exists.
    fn cpu_usage_ns(&self, cgroup: &str) -> Result<Option<u64>, RuntimeError>;
    /// How many tasks it holds (`pids.current`), if it exists.
    fn pid_count(&self, cgroup: &str) -> Result<Option<u64>, RuntimeError>;
    /// How many of its processes the kernel's OOM killer ended
    /// (`oom_kill` in `memory.oom_control` on v1, `memory.events` on v2),
    /// if it exists.
    fn oom_kills(&self, cgroup: &str) -> Result<Option<u64>, RuntimeError>;
}

/// The value of `key` in a flat-keyed cgroup file (`key value` lines),
/// `None` when the file is absent (0 when the key is).
fn read_key(file: &Path, key: &str) -> Result<Option<u64>, RuntimeError> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(Some(
            text.lines()
                .find_map(|l| l.strip_prefix(key).and_then(|v| v.strip_prefix(' ')))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RuntimeError::io("read", file)(e)),
    }
}

/// The number in `file` (the first token), `None` when the file is absent.
fn read_number(file: &Path) -> Result<Option<u64>, RuntimeError> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(text.split_whitespace().next().and_then(|t| t.parse().ok())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(RuntimeError::io("read", file)(e)),
    }
}

/// The cgroup version of a host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// The host's cgroupfs.
#[derive(Debug, Clone)]
pub struct CgroupFs {
    root: PathBuf,
    version: CgroupVersion,
    /// Hierarchy roots: the root itself on v2; one per mounted tree on v1.
    hierarchies: Vec<PathBuf>,
}

impl CgroupFs {
    /// Inspects the cgroupfs mounted at `root`.
    pub fn detect(root: impl Into<PathBuf>) -> Result<Self, RuntimeError> {
        let root = root.into();
        if root.join("cgroup.controllers").exists() {
            return Ok(Self { hierarchies: vec![root.clone()], root, version: CgroupVersion::V2 });
        }
        let mut hierarchies = Vec::new();
        for entry in std::fs::read_dir(&root).map_err(RuntimeError::io("list", &root))? {
            let path = entry.map_err(RuntimeError::io("list", &root))?.path();
            if path.is_dir() && !path.is_symlink() && path.join("cgroup.procs").exists() {
                hierarchies.push(path);
            }
        }
        hierarchies.sort();
        Ok(Self { root, version: CgroupVersion::V1, hierarchies })
    }

    /// The version (a hybrid host reports V1: that is where limits apply).
    pub fn version(&self) -> CgroupVersion {
        self.version
    }

    /// The root this was detected at.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn controller(&self, name: &str) -> PathBuf {
        match self.version {
            CgroupVersion::V2 => self.root.clone(),
            CgroupVersion::V1 => self.root.join(name),
        }
    }
}

fn rel(cgroup: &str) -> &str {
    cgroup.trim_start_matches('/')
}

fn read_pids(file: &Path) -> Result<Vec<u32>, RuntimeError> {
    match std::fs::read_to_string(file) {
        Ok(text) => Ok(text.lines().filter_map(|l| l.trim().parse().ok()).collect()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(RuntimeError::io("read", file)(e)),
    }
}

fn remove_tree(dir: &Path) -> Result<(), RuntimeError> {
    if !dir.exists() {
        return Ok(());
    }
    // cgroup dirs hold only pseudo-files: recurse into child dirs, then rmdir.
    for entry in std::fs::read_dir(dir).map_err(RuntimeError::io("list", dir))? {
        let entry = entry.map_err(RuntimeError::io("list", dir))?;
        if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            remove_tree(&entry.path())?;
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(RuntimeError::io("remove cgroup", dir)(e)),
    }
}

fn write(file: &Path, value: &str) -> Result<(), RuntimeError> {
    std::fs::write(file, value).map_err(RuntimeError::io("write", file))
}

/// Waits up to a second for `file` to satisfy `done`.
fn wait_for(file: &Path, done: impl Fn(&str) -> bool) -> Result<(), RuntimeError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        let text = std::fs::read_to_string(file).map_err(RuntimeError::io("read", file))?;
        if done(&text) {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            return Err(RuntimeError::Io {
                op: "wait for the freezer in",
                path: file.to_path_buf(),
                source: std::io::Error::from(std::io::ErrorKind::TimedOut),
            });
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    }
}

impl Cgroups for CgroupFs {
    fn freeze(&self, cgroup: &str) -> Result<(), RuntimeError> {
        match self.version {
            CgroupVersion::V1 => {
                let state = self.root.join("freezer").join(rel(cgroup)).join("freezer.state");
                write(&state, "FROZEN")?;
                wait_for(&state, |t| t.trim() == "FROZEN")
            }
            CgroupVersion::V2 => {
                let dir = self.root.join(rel(cgroup));
                write(&dir.join("cgroup.freeze"), "1")?;
                wait_for(&dir.join("cgroup.events"), |t| t.lines().any(|l| l.trim() == "frozen 1"))
            }
        }
    }

    fn thaw(&self, cgroup: &str) -> Result<(), RuntimeError> {
        match self.version {
            CgroupVersion::V1 => write(&self.root.join("freezer").join(rel(cgroup)).join("freezer.state"), "THAWED"),
            CgroupVersion::V2 => write(&self.root.join(rel(cgroup)).join("cgroup.freeze"), "0"),
        }
    }

    fn file_cache(&self, cgroup: &str) -> Result<Option<u64>, RuntimeError> {
        let (file, key) = match self.version {
            CgroupVersion::V1 => (self.root.join("memory").join(rel(cgroup)).join("memory.stat"), "cache"),
            CgroupVersion::V2 => (self.root.join(rel(cgroup)).join("memory.stat"), "file"),
        };
        match std::fs::read_to_string(&file) {
            Ok(text) => Ok(text.lines().find_map(|l| {
                let (k, v) = l.split_once(' ')?;
                (k == key).then(|| v.trim().parse().ok()).flatten()
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RuntimeError::io("read", &file)(e)),
        }
    }

    fn pids(&self, cgroup: &str) -> Result<Vec<u32>, RuntimeError> {
        let dir = self.controller("pids").join(rel(cgroup));
        read_pids(&dir.join("cgroup.procs"))
    }

    fn dirs(&self, cgroup: &str) -> Vec<PathBuf> {
        self.hierarchies.iter().map(|h| h.join(rel(cgroup))).filter(|d| d.exists()).collect()
    }

    fn memory_usage(&self, cgroup: &str) -> Result<Option<u64>, RuntimeError> {
        let dir = self.controller("memory").join(rel(cgroup));
        let file = match self.version {
            CgroupVersion::V2 => dir.join("memory.current"),
            CgroupVersion::V1 => dir.join("memory.usage_in_bytes"),
        };
        match std::fs::read_to_string(&file) {
            Ok(text) => Ok(text.trim().parse().ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(RuntimeError::io("read", &file)(e)),
        }
    }

    fn cpu_usage_ns(&self, cgroup: &str) -> Result<Option<u64>, RuntimeError> {
        match self.version {
            CgroupVersion::V1 => read_number(&self.controller("cpuacct").join(rel(cgroup)).join("cpuacct.usage")),
            CgroupVersion::V2 => {
                let file = self.root.join(rel(cgroup)).join("cpu.stat");
                match std::fs::read_to_string(&file) {
                    Ok(text) => Ok(text
                        .lines()
                        .find_map(|l| l.strip_prefix("usage_usec "))
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(|us| us.saturating_mul(1000))),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(e) => Err(RuntimeError::io("read", &file)(e)),
                }
            }
        }
    }

    fn pid_count(&self, cgroup: &str) -> Result<Option<u64>, RuntimeError> {
        read_number(&self.controller("pids").join(rel(cgroup)).join("pids.current"))
    }

    fn oom_kills(&self, cgroup: &str) -> Result<Option<u64>, RuntimeError> {
        let dir = self.controller("memory").join(rel(cgroup));
        match self.version {
            CgroupVersion::V1 => read_key(&dir.join("memory.oom_control"), "oom_kill"),
            CgroupVersion::V2 => read_key(&dir.join("memory.events"), "oom_kill"),
        }
    }

    fn remove(&self, cgroup: &str) -> Result<(), RuntimeError> {
        if rel(cgroup).is_empty() {
            return Ok(());
        }
        for dir in self.dirs(cgroup) {
            remove_tree(&dir)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_v2_and_reads_pids_and_memory() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("cgroup.controllers"), "cpu memory pids").unwrap();
        let cg = root.path().join("cubby/c1");
        std::fs::create_dir_all(&cg).unwrap();
        std::fs::write(cg.join("cgroup.procs"), "12\n34\n").unwrap();
        std::fs::write(cg.join("memory.current"), "4096\n").unwrap();
        std::fs::write(cg.join("cpu.stat"), "usage_usec 1500\nuser_usec 1000\n").unwrap();
        std::fs::write(cg.join("pids.current"), "2\n").unwrap();
        std::fs::write(cg.join("memory.events"), "low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\noom_group_kill 0\n")
            .unwrap();
        let fs = CgroupFs::detect(root.path()).unwrap();
        assert_eq!(fs.oom_kills("/cubby/c1").unwrap(), Some(1), "oom_kill, not oom or oom_group_kill");
        assert_eq!(fs.oom_kills("/cubby/none").unwrap(), None);
        assert_eq!(fs.cpu_usage_ns("/cubby/c1").unwrap(), Some(1_500_000));
        assert_eq!(fs.pid_count("/cubby/c1").unwrap(), Some(2));
        assert_eq!(fs.cpu_usage_ns("/cubby/none").unwrap(), None);
        assert_eq!(fs.version(), CgroupVersion::V2);
        assert_eq!(fs.pids("/cubby/c1").unwrap(), vec![12, 34]);
        assert_eq!(fs.memory_usage("/cubby/c1").unwrap(), Some(4096));
        assert_eq!(fs.pids("/cubby/none").unwrap(), Vec::<u32>::new());
        assert_eq!(fs.memory_usage("/cubby/none").unwrap(), None);
    }

    #[test]
    fn detects_v1_hybrid_and_removes_every_hierarchy() {
        let root = tempfile::tempdir().unwrap();
        for h in ["memory", "pids", "cpu", "unified"] {
            std::fs::create_dir_all(root.path().join(h).join("cubby/c1/child")).unwrap();
            std::fs::write(root.path().join(h).join("cgroup.procs"), "").unwrap();
        }
        std::fs::write(root.path().join("memory/cubby/c1/memory.usage_in_bytes"), "100").unwrap();
        std::fs::write(
            root.path().join("memory/cubby/c1/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
        )
        .unwrap();
        std::fs::create_dir_all(root.path().join("cpuacct/cubby/c1")).unwrap();
        std::fs::write(root.path().join("cpuacct/cubby/c1/cpuacct.usage"), "123456789\n").unwrap();
        let fs = CgroupFs::detect(root.path()).unwrap();
        assert_eq!(fs.cpu_usage_ns("/cubby/c1").unwrap(), Some(123_456_789));
        std::fs::remove_file(root.path().join("cpuacct/cubby/c1/cpuacct.usage")).unwrap();
        assert_eq!(fs.version(), CgroupVersion::V1);
        assert_eq!(fs.dirs("/cubby/c1").len(), 4);
        assert_eq!(fs.memory_usage("/cubby/c1").unwrap(), Some(100));
        assert_eq!(fs.oom_kills("/cubby/c1").unwrap(), Some(3));
        std::fs::remove_file(root.path().join("memory/cubby/c1/memory.oom_control")).unwrap();
        // Real cgroupfs lets rmdir remove a dir holding pseudo-files; a temp
        // dir does not, so clear them first.
        std::fs::remove_file(root.path().join("memory/cubby/c1/memory.usage_in_bytes")).unwrap();
        fs.remove("/cubby/c1").unwrap();
        assert!(fs.dirs("/cubby/c1").is_empty());
        assert!(root.path().join("memory/cubby").exists(), "the parent stays");
        fs.remove("/cubby/c1").unwrap();
    }
}
