//! What a test daemon has on the host, read directly from the kernel and
//! the filesystem (not through the API), to prove that delete leaves
//! nothing behind.

use std::path::Path;
use std::process::Command;

use crate::Daemon;

/// A view of the host resources carrying one daemon's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostView {
    /// btrfs subvolumes under the pool (relative paths).
    pub subvolumes: Vec<String>,
    /// Links whose names start with `{prefix}-`.
    pub links: Vec<String>,
    /// cgroup directories under `/{prefix}` in every hierarchy.
    pub cgroups: Vec<String>,
    /// Containers the runtime knows.
    pub runtime: Vec<String>,
    /// Network namespace files.
    pub netns: Vec<String>,
    /// Mounts under the run dir.
    pub mounts: Vec<String>,
    /// Log files.
    pub logs: Vec<String>,
}

fn lines(cmd: &mut Command) -> Vec<String> {
    let out = cmd.output().expect("run a host inspection command");
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).filter(|l| !l.trim().is_empty()).collect()
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|e| e.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    v.sort();
    v
}

impl HostView {
    /// Reads what `daemon` has on the host now.
    /// The host once the daemon's background teardowns (the network
    /// plumbing of deleted containers) have finished; fails the test if
    /// they take more than 10 s.
    pub fn settled(daemon: &Daemon) -> Self {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let pending: i64 = rusqlite::Connection::open_with_flags(
                daemon.data_dir.join("cubby.db"),
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .and_then(|db| db.query_row("SELECT COUNT(*) FROM teardowns", [], |r| r.get(0)))
            .unwrap_or(0);
            if pending == 0 {
                return Self::of(daemon);
            }
            assert!(std::time::Instant::now() < deadline, "{pending} teardowns still pending after 10 s");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }

    pub fn of(daemon: &Daemon) -> Self {
        let pool = daemon.data_dir.join("pool");
        // Sorted: btrfs lists by subvolume id, which a restore changes.
        let mut subvolumes: Vec<String> = lines(Command::new("btrfs").args(["subvolume", "list", "-o"]).arg(&pool))
            .into_iter()
            .filter_map(|l| l.split(" path ").nth(1).map(str::to_string))
            .collect();
        subvolumes.sort();
        let links = lines(Command::new("ip").args(["-o", "link", "show"]))
            .into_iter()
            .filter_map(|l| l.split(": ").nth(1).map(|n| n.split('@').next().unwrap_or(n).to_string()))
            .filter(|n| n.starts_with(&format!("{}-", daemon.prefix)))
            .collect();
        let mut cgroups = Vec::new();
        for hierarchy in names(Path::new("/sys/fs/cgroup")) {
            let dir = Path::new("/sys/fs/cgroup").join(&hierarchy).join(&daemon.prefix);
            for child in names(&dir) {
                if dir.join(&child).is_dir() {
                    cgroups.push(format!("{hierarchy}/{}/{child}", daemon.prefix));
                }
            }
        }
        let runtime = lines(Command::new("runc").arg("--root").arg(daemon.run_dir.join("runc")).args(["list", "-q"]));
        let mounts = std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&daemon.run_dir.display().to_string()))
            // The namespace directories themselves are daemon-wide bind
            // mounts (each pinned namespace inside is a mount too, and shows).
            .filter(|m| {
                *m != daemon.run_dir.join("netns").display().to_string()
                    && *m != daemon.run_dir.join("userns").display().to_string()
            })
            .collect();
        Self {
            subvolumes,
            links,
            cgroups,
            runtime,
            netns: names(&daemon.run_dir.join("netns")),
            mounts,
            logs: names(&daemon.data_dir.join("logs")),
        }
    }

    /// Whether anything in the view mentions `needle` (a container id or veth).
    pub fn mentions(&self, needle: &str) -> Vec<String> {
        [&self.subvolumes, &self.links, &self.cgroups, &self.runtime, &self.netns, &self.mounts, &self.logs]
            .iter()
            .flat_map(|v| v.iter())
            .filter(|s| s.contains(needle))
            .cloned()
            .collect()
    }
}

/// Processes whose mount namespace has a mount whose mountinfo line
/// contains `needle` (a tenant's upper dir, for instance): where a
/// container's root is mounted, now that the host never has it.
pub fn processes_mounting(needle: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        // A process that just exited has no table left: skip it.
        let table = std::fs::read_to_string(entry.path().join("mountinfo")).unwrap_or_default();
        if table.lines().any(|l| l.contains(needle)) {
            found.push(pid);
        }
    }
    found
}
