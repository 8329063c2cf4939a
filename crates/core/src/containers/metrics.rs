//! What `/metrics` shows of tenants: counters since the daemon started,
//! kept in memory from the usage readings (so a scrape reads no cgroup and
//! no database row of usage), the last memory and disk seen, and the pool's
//! space. Counters restart from zero with the daemon, as Prometheus
//! expects of counters.

use std::collections::HashMap;
use std::sync::Mutex;

use cubby_model::{ContainerId, ContainerStatus, ProjectId, Usage};
use cubby_store::{UsageDelta, UsageReading};

use super::ContainerService;
use super::usage::usage_of;
use crate::Error;

/// One tenant's counters since the daemon started, and its last gauges.
#[derive(Debug, Clone, Default)]
struct Tally {
    usage: UsageDelta,
    memory_bytes: u64,
    disk_bytes: u64,
}

/// Every tenant's tally.
#[derive(Debug, Default)]
pub(crate) struct Tallies(Mutex<HashMap<ContainerId, Tally>>);

impl Tallies {
    /// Adds what `readings` measured (`deltas`, one each).
    pub(crate) fn add(&self, readings: &[UsageReading], deltas: &[UsageDelta]) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (r, d) in readings.iter().zip(deltas) {
            let t = map.entry(r.container_id.clone()).or_default();
            t.usage.add(d);
            t.memory_bytes = if r.running { r.memory_bytes.unwrap_or(0) } else { 0 };
            if let Some(disk) = r.disk_bytes {
                t.disk_bytes = disk;
            }
        }
    }

    /// Forgets a deleted tenant.
    pub(crate) fn forget(&self, id: &ContainerId) {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(id);
    }
}

/// One tenant, as `/metrics` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantMetrics {
    pub container_id: ContainerId,
    pub project_id: ProjectId,
    pub name: String,
    pub status: ContainerStatus,
    /// Since the daemon started.
    pub counted: Usage,
    /// Memory charged to it at the last reading (0 when stopped).
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    /// Its exclusive disk bytes at the last reading.
    pub disk_bytes: u64,
    /// Responses through its URL since the daemon started, by status
    /// class (1xx to 5xx).
    pub responses_by_class: [u64; 5],
}

/// What `/metrics` shows of the host and its tenants.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsSnapshot {
    pub tenants: Vec<TenantMetrics>,
    /// Bytes of the pool in use and free.
    pub pool_used_bytes: u64,
    pub pool_free_bytes: u64,
    /// nftables changes so far, by step.
    pub nft_applies: Vec<crate::network::NftApplies>,
}

impl ContainerService {
    /// Every tenant's counters and gauges, and the pool's space: no cgroup
    /// or usage row is read.
    pub fn metrics(&self) -> Result<MetricsSnapshot, Error> {
        let tallies = self.tallies.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        let tenants = self
            .store
            .containers(None, None, u32::MAX)?
            .into_iter()
            .map(|rec| {
                let t = tallies.get(&rec.id).cloned().unwrap_or_default();
                TenantMetrics {
                    counted: usage_of(&t.usage),
                    memory_bytes: t.memory_bytes,
                    memory_limit_bytes: rec.limits.memory.0,
                    disk_bytes: t.disk_bytes,
                    responses_by_class: self.activity.get(&rec.id).classes(),
                    container_id: rec.id,
                    project_id: rec.project_id,
                    name: rec.name,
                    status: rec.status,
                }
            })
            .collect();
        let root = self.pool.root();
        let space = nix::sys::statvfs::statvfs(root).map_err(|e| Error::io("statvfs", root)(e.into()))?;
        let block = space.fragment_size();
        let (total, free) = (space.blocks() * block, space.blocks_available() * block);
        Ok(MetricsSnapshot {
            tenants,
            pool_used_bytes: total.saturating_sub(free),
            pool_free_bytes: free,
            nft_applies: self.network.nft_applies(),
        })
    }
}
