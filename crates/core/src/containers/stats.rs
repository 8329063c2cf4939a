//! What a container uses now: CPU, memory and pids from its cgroup, disk
//! from its subvolume's quota group, network from its host veth's counters
//! in `{proc_root}/net/dev`, uptime from its last start. CPU and network
//! rates are measured over a short window inside the call.

use std::path::Path;
use std::time::{Duration, Instant};

use cubby_model::{ContainerId, ContainerStats, ContainerStatus};

use super::ContainerService;
use crate::{Caller, Error};

/// The window rates are measured over.
const WINDOW: Duration = Duration::from_millis(200);

/// Bytes the host side of `veth` received and sent, from `net/dev` under
/// `proc_root` (the host's namespace). The container's own view is the
/// other way round.
fn veth_bytes(proc_root: &Path, veth: &str) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(proc_root.join("net/dev")).ok()?;
    text.lines().find_map(|line| {
        let (name, counters) = line.split_once(':')?;
        if name.trim() != veth {
            return None;
        }
        let fields: Vec<u64> = counters.split_whitespace().filter_map(|f| f.parse().ok()).collect();
        // rx bytes is the first field, tx bytes the ninth.
        Some((*fields.first()?, *fields.get(8)?))
    })
}

/// One reading of the counters that rates are made from.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    cpu_ns: u64,
    /// What the container received and sent.
    net: (u64, u64),
}

impl ContainerService {
    fn sample(&self, cgroup: &str, veth: &str) -> Result<Sample, Error> {
        let cpu_ns = self.host.cgroups.cpu_usage_ns(cgroup).map_err(Error::runtime("read cpu usage", cgroup))?;
        let (host_rx, host_tx) = veth_bytes(&self.config.proc_root, veth).unwrap_or((0, 0));
        Ok(Sample { at: Instant::now(), cpu_ns: cpu_ns.unwrap_or(0), net: (host_tx, host_rx) })
    }

    /// A container's use of CPU, memory, pids, disk and network now.
    pub async fn stats(&self, caller: &Caller, id: &ContainerId) -> Result<ContainerStats, Error> {
        let rec = self.record(caller, id)?;
        let paths = self.paths(&rec.id, rec.slot);
        let running = rec.status == ContainerStatus::Running;
        let first = self.sample(&paths.cgroup, &paths.veth)?;
        if running {
            tokio::time::sleep(WINDOW).await;
        }
        let last = self.sample(&paths.cgroup, &paths.veth)?;
        let seconds = last.at.duration_since(first.at).as_secs_f64().max(f64::EPSILON);
        let rate = |a: u64, b: u64| if running { b.saturating_sub(a) as f64 / seconds } else { 0.0 };
        let memory =
            self.host.cgroups.memory_usage(&paths.cgroup).map_err(Error::runtime("read memory", id.as_str()))?;
        let pids = self.host.cgroups.pid_count(&paths.cgroup).map_err(Error::runtime("read pids", id.as_str()))?;
        let disk = self.host.btrfs.disk_usage(&paths.subvolume).ok().flatten();
        let uptime = if running {
            self.store
                .transitions(id)?
                .iter()
                .rev()
                .find(|t| t.to == ContainerStatus::Running)
                .map_or(0, |t| u64::try_from((cubby_model::now() - t.at).whole_seconds()).unwrap_or(0))
        } else {
            0
        };
        Ok(ContainerStats {
            status: rec.status,
            cpu_percent: rate(first.cpu_ns, last.cpu_ns) / 1e9 * 100.0,
            cpu_limit: rec.limits.cpu,
            cpu_seconds: last.cpu_ns as f64 / 1e9,
            memory_bytes: if running { memory.unwrap_or(0) } else { 0 },
            memory_limit_bytes: rec.limits.memory.0,
            pids: if running { pids.unwrap_or(0) } else { 0 },
            pids_limit: rec.limits.pids,
            disk_bytes: disk.map_or(0, |d| d.exclusive),
            disk_limit_bytes: rec.limits.disk.map(|d| d.0),
            net_rx_bytes: last.net.0,
            net_tx_bytes: last.net.1,
            net_rx_rate: rate(first.net.0, last.net.0),
            net_tx_rate: rate(first.net.1, last.net.1),
            uptime_seconds: uptime,
            window_ms: u64::try_from(last.at.duration_since(first.at).as_millis()).unwrap_or(u64::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn veth_counters_come_from_net_dev() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("net")).unwrap();
        std::fs::write(
            dir.path().join("net/dev"),
            "Inter-|   Receive                            |  Transmit\n \
             face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
             lo: 100 1 0 0 0 0 0 0 100 1 0 0 0 0 0 0\n\
             cbt-7: 1500 10 0 0 0 0 0 0 64000 50 0 0 0 0 0 0\n",
        )
        .unwrap();
        assert_eq!(veth_bytes(dir.path(), "cbt-7"), Some((1500, 64000)));
        assert_eq!(veth_bytes(dir.path(), "cbt-8"), None);
    }
}
