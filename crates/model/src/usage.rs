//! Usage per tenant, for invoices: what a container used over a span of
//! time (`GET /api/v1/containers/{id}/usage`, `GET
//! /api/v1/projects/{id}/usage`), in time series and totals.

use serde::{Deserialize, Serialize};

use crate::{ContainerId, ProjectId, Timestamp};

/// What one tenant (or a project's tenants together) used over a span.
/// Counters add up; `*_peak_*` are the largest sample in the span.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Usage {
    /// CPU time, in seconds (a container held at its limit of 0.5 core for
    /// 60 s uses 30).
    pub cpu_seconds: f64,
    /// Memory charged to it (page cache included), integrated over time:
    /// GiB × seconds, from samples.
    pub memory_gib_seconds: f64,
    /// The most memory a sample saw, in bytes.
    pub memory_peak_bytes: u64,
    /// Bytes the container received over its own network interface.
    pub network_rx_bytes: u64,
    /// Bytes the container sent over its own network interface.
    pub network_tx_bytes: u64,
    /// Disk held by it alone (its own layer, exclusive bytes) integrated
    /// over time, stopped or running: GiB × seconds, from samples.
    pub disk_gib_seconds: f64,
    /// The most disk a sample saw, in bytes.
    pub disk_peak_bytes: u64,
    /// Requests that reached it through its URL (the proxy).
    pub requests: u64,
    /// Bytes of the responses to those requests.
    pub response_bytes: u64,
    /// Time it ran, in seconds.
    pub running_seconds: f64,
    /// Starts caused by a request to its URL while it was stopped.
    pub wakes: u64,
}

impl Usage {
    /// Adds `other` to this (counters add, peaks take the larger).
    pub fn add(&mut self, other: &Usage) {
        self.cpu_seconds += other.cpu_seconds;
        self.memory_gib_seconds += other.memory_gib_seconds;
        self.memory_peak_bytes = self.memory_peak_bytes.max(other.memory_peak_bytes);
        self.network_rx_bytes += other.network_rx_bytes;
        self.network_tx_bytes += other.network_tx_bytes;
        self.disk_gib_seconds += other.disk_gib_seconds;
        self.disk_peak_bytes = self.disk_peak_bytes.max(other.disk_peak_bytes);
        self.requests += other.requests;
        self.response_bytes += other.response_bytes;
        self.running_seconds += other.running_seconds;
        self.wakes += other.wakes;
    }
}

/// The usage of one step of a series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UsagePoint {
    /// The start of the step.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    pub usage: Usage,
}

/// One container's usage over `[from, to)`: a series of steps (only the
/// steps with any usage) and their total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerUsage {
    pub container_id: ContainerId,
    pub project_id: ProjectId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub from: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub to: Timestamp,
    /// Seconds per step of `series`.
    pub step_seconds: u32,
    pub totals: Usage,
    pub series: Vec<UsagePoint>,
}

/// One container's total within a project's usage. Deleted containers
/// stay listed (by id only) until their usage ages out, so their last
/// invoice can be made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerTotal {
    pub container_id: ContainerId,
    /// Its name now; `null` once it is deleted.
    pub name: Option<String>,
    pub totals: Usage,
}

/// A project's usage over `[from, to)`: the series of its containers
/// together, the total, and with `group_by=container` each container's
/// total.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProjectUsage {
    pub project_id: ProjectId,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub from: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub to: Timestamp,
    /// Seconds per step of `series`.
    pub step_seconds: u32,
    pub totals: Usage,
    pub series: Vec<UsagePoint>,
    /// With `group_by=container`: every container with usage in the span,
    /// by id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub containers: Vec<ContainerTotal>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_sums_counters_and_keeps_the_larger_peak() {
        let mut a = Usage { cpu_seconds: 1.5, memory_peak_bytes: 10, requests: 2, ..Usage::default() };
        a.add(&Usage { cpu_seconds: 0.5, memory_peak_bytes: 7, requests: 3, wakes: 1, ..Usage::default() });
        assert_eq!(a.cpu_seconds, 2.0);
        assert_eq!(a.memory_peak_bytes, 10);
        assert_eq!((a.requests, a.wakes), (5, 1));
    }
}
