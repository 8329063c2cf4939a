//! What a container uses now: CPU, memory and pids from its cgroup, disk
//! from its subvolume's quota group, network from its host veth's counters
//! in `{proc_root}/net/dev`, uptime from its last start. CPU and network
//! rates are measured over a short window inside the call.

use std::time::{Duration, Instant};

use cubby_model::{ContainerId, ContainerStats, ContainerStatus};

use super::ContainerService;
use crate::{Caller, Error};

/// The window rates are measured over.
const WINDOW: Duration = Duration::from_millis(200);

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
        let net_dev = super::usage::read_net_dev(&self.config.proc_root);
        let (host_rx, host_tx) = super::usage::veth_bytes(&net_dev, veth).unwrap_or((0, 0));
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
