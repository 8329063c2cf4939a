//! Containers: one tenant each. Their view in the API, the request that
//! creates one, limits, states and the record of state transitions.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::{AccessMode, ByteSize, ContainerId, ProjectId, Timestamp};

/// Where a container is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ContainerStatus {
    /// Being made; not yet usable.
    Creating,
    /// Its processes run and its URL answers.
    Running,
    /// No process, no CPU, no memory; its files and address are kept.
    Stopped,
    /// Being copied from a template.
    Copying,
    /// Being removed.
    Deleting,
    /// A start or create failed; see its transitions and logs.
    Failed,
}

impl ContainerStatus {
    /// The status as stored and shown (`running`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Creating => "creating",
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Copying => "copying",
            Self::Deleting => "deleting",
            Self::Failed => "failed",
        }
    }

    /// Parses a stored status.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "creating" => Self::Creating,
            "running" => Self::Running,
            "stopped" => Self::Stopped,
            "copying" => Self::Copying,
            "deleting" => Self::Deleting,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// What caused a state transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// An API call (create, start, stop, restart, delete).
    Api,
    /// The container's main process ended on its own.
    Exited,
    /// The daemon found the host out of step with its records at start.
    Reconcile,
    /// A request to the container's URL woke it.
    Wake,
    /// It had no traffic for its idle timeout.
    Idle,
}

impl Trigger {
    /// The trigger as stored (`api`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Api => "api",
            Self::Exited => "exited",
            Self::Reconcile => "reconcile",
            Self::Wake => "wake",
            Self::Idle => "idle",
        }
    }

    /// Parses a stored trigger.
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "api" => Self::Api,
            "exited" => Self::Exited,
            "reconcile" => Self::Reconcile,
            "wake" => Self::Wake,
            "idle" => Self::Idle,
            _ => return None,
        })
    }
}

/// Resource limits applied to a container's cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Limits {
    /// CPU time, in cores (0.5 is half of one core).
    pub cpu: f64,
    /// Memory, in bytes, including its `/ramdisk` tmpfs.
    #[cfg_attr(feature = "openapi", schema(value_type = u64))]
    pub memory: ByteSize,
    /// Most processes and threads.
    pub pids: u32,
    /// Most bytes of the container's own files (its writes on top of its
    /// image or template); unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<u64>))]
    pub disk: Option<ByteSize>,
}

/// Limits in a request: each one left out keeps the default (on create) or
/// the current value (on update).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct LimitsSpec {
    /// CPU time, in cores, from 0.01 up to the host's core count.
    pub cpu: Option<f64>,
    /// Memory: bytes, or a string like "512MiB". At least 16 MiB.
    pub memory: Option<ByteSize>,
    /// Most processes and threads, from 16 to 65536.
    pub pids: Option<u32>,
    /// Most bytes the container may write: bytes or a string like "1GiB".
    pub disk: Option<ByteSize>,
}

/// A container, as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Container {
    pub id: ContainerId,
    pub project_id: ProjectId,
    /// Unique in the project; its hostname and part of its URL.
    pub name: String,
    /// The image its root filesystem is layered on.
    pub image: String,
    /// The program and its arguments.
    pub command: Vec<String>,
    pub environment_vars: BTreeMap<String, String>,
    /// The TCP port of its HTTP app; the URL forwards to it.
    pub port: u16,
    pub limits: Limits,
    pub status: ContainerStatus,
    /// Where its app answers, through the daemon's proxy.
    pub url: String,
    /// Its disk use, when the pool accounts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskUse>,
    /// Most snapshots it may keep.
    pub max_snapshots: u32,
    /// Who may open its URL (its own mode, else its project's default).
    pub access: AccessMode,
    /// A request to its URL starts it when it is stopped.
    pub autostart: bool,
    /// Stopped after this long without proxied traffic (0: never).
    pub idle_timeout_seconds: u32,
    /// Its address on the daemon's container network.
    pub address: String,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub updated_at: Timestamp,
}

/// A container's disk use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DiskUse {
    /// Bytes the container itself wrote: its own subvolume's delta.
    pub exclusive_bytes: u64,
    /// Bytes its subvolume refers to (equal to exclusive with simple quotas).
    pub referenced_bytes: u64,
    /// Its limit, if any.
    pub limit_bytes: Option<u64>,
}

/// What a container uses now (`GET /api/v1/containers/{id}/stats`), as
/// `docker stats` shows it. Rates are measured over a short window
/// (`window_ms`) inside the call; a stopped container uses nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ContainerStats {
    pub status: ContainerStatus,
    /// CPU over the window, in percent of one core (200 is two cores).
    pub cpu_percent: f64,
    /// Its CPU limit, in cores.
    pub cpu_limit: f64,
    /// CPU time used since it started, in seconds.
    pub cpu_seconds: f64,
    /// Memory charged to it now (page cache included), in bytes.
    pub memory_bytes: u64,
    pub memory_limit_bytes: u64,
    /// Processes and threads.
    pub pids: u64,
    pub pids_limit: u32,
    /// Bytes of its own files (the exclusive size of its subvolume).
    pub disk_bytes: u64,
    pub disk_limit_bytes: Option<u64>,
    /// Bytes it received and sent over its veth since its network was
    /// made. The proxy's connections made inside its namespace (see the
    /// README's proxy section) do not cross the veth and are not counted.
    pub net_rx_bytes: u64,
    pub net_tx_bytes: u64,
    /// Receive and send rates over the window, in bytes per second.
    pub net_rx_rate: f64,
    pub net_tx_rate: f64,
    /// Seconds since it last started (0 when not running).
    pub uptime_seconds: u64,
    /// The window the rates were measured over.
    pub window_ms: u64,
}

/// The body of `POST /api/v1/containers/{id}/copy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CopyContainer {
    /// Name of the new container, unique in its project.
    pub name: String,
    /// Project of the new container; the source's when left out.
    #[serde(default)]
    pub target_project_id: Option<ProjectId>,
    /// Copy this snapshot (name or alias) instead of the current state.
    #[serde(default)]
    pub source_snapshot: Option<String>,
    /// Copy the source's firewall rules (default true).
    #[serde(default)]
    pub copy_firewall_rules: Option<bool>,
    /// Copy the source's network rules (default true).
    #[serde(default)]
    pub copy_network_rules: Option<bool>,
    /// Merged over the source's env; these win. Also accepted as
    /// `env_vars`.
    #[serde(default, alias = "env_vars")]
    pub environment_vars: BTreeMap<String, String>,
    /// Start it at once (default true).
    #[serde(default)]
    pub start: Option<bool>,
}

/// The body of `PUT /api/v1/containers/{id}/env/{key}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnvValue {
    pub value: String,
}

/// The body of `PATCH /api/v1/containers/{id}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateContainer {
    /// A new name; the URL follows.
    #[serde(default)]
    pub name: Option<String>,
    /// Merged into the env; `null` removes a key. Applies at the next
    /// start, or at once with `restart`. Also accepted as `env_vars`.
    #[serde(default, alias = "env_vars")]
    pub environment_vars: BTreeMap<String, Option<String>>,
    /// Applied at once to the running container.
    #[serde(default)]
    pub limits: Option<LimitsSpec>,
    /// Most snapshots it may keep.
    #[serde(default)]
    pub max_snapshots: Option<u32>,
    /// Restart it so env changes apply now.
    #[serde(default)]
    pub restart: Option<bool>,
    #[serde(default)]
    pub access: Option<AccessMode>,
    #[serde(default)]
    pub autostart: Option<bool>,
    #[serde(default)]
    pub idle_timeout_seconds: Option<u32>,
    /// Move it onto this image, keeping its own files and its `/data` (a
    /// snapshot first; rolled back if it does not start on the new image).
    #[serde(default)]
    pub image: Option<String>,
    /// Move it onto this container's current state, as a fresh copy of it
    /// would get, keeping its own files and its `/data` (as `image`).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub rebase_on: Option<ContainerId>,
}

/// The body of `POST /api/v1/projects/{id}/containers`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateContainer {
    /// Unique in the project: 1 to 30 lowercase letters, digits and hyphens.
    pub name: String,
    /// Image name; `minimal` (busybox and the demo app) when left out.
    #[serde(default)]
    pub image: Option<String>,
    /// Program and arguments; the image's default when left out.
    #[serde(default)]
    pub command: Option<Vec<String>>,
    /// Added to the image's env; these win. Also accepted as `env_vars`.
    #[serde(default, alias = "env_vars")]
    pub environment_vars: BTreeMap<String, String>,
    /// The app's TCP port; the image's default (8080 for `minimal`) when left out.
    #[serde(default)]
    pub port: Option<u16>,
    #[serde(default)]
    pub limits: Option<LimitsSpec>,
    /// Start it at once (default true).
    #[serde(default)]
    pub start: Option<bool>,
    /// Who may open its URL; the project's default when left out.
    #[serde(default)]
    pub access: Option<AccessMode>,
    /// Start it on a request to its URL (default true).
    #[serde(default)]
    pub autostart: Option<bool>,
    /// Stop it after this many seconds without traffic (0: never); the
    /// project's default when left out.
    #[serde(default)]
    pub idle_timeout_seconds: Option<u32>,
}

/// One recorded change of a container's status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Transition {
    /// The status before; absent for the first one.
    pub from: Option<ContainerStatus>,
    pub to: ContainerStatus,
    pub trigger: Trigger,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    /// How long the change took.
    pub duration_ms: u64,
}

/// The body of `POST /api/v1/containers/{id}/exec`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ExecRequest {
    /// Program and arguments, run inside the container.
    pub command: Vec<String>,
    /// Added to the container's env for this process only.
    #[serde(default)]
    pub environment_vars: BTreeMap<String, String>,
    /// Killed after this many seconds (default 30, at most 600).
    #[serde(default)]
    pub timeout_seconds: Option<u32>,
}

/// What an exec produced. Each stream is capped at 1 MiB.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ExecResult {
    /// The exit status; 128+N when killed by signal N, 124 on timeout.
    pub exit_code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// A page of a list. Pass `next_cursor` as `cursor` to get the next one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_rejects_unknown_fields() {
        let err = serde_json::from_str::<CreateContainer>(r#"{"name":"a","imgae":"x"}"#).unwrap_err();
        assert!(err.to_string().contains("imgae"));
        let ok: CreateContainer =
            serde_json::from_str(r#"{"name":"a","limits":{"memory":"256MiB","cpu":0.5}}"#).unwrap();
        assert_eq!(ok.limits.unwrap().memory, Some(ByteSize(256 << 20)));
    }

    #[test]
    fn statuses_round_trip() {
        for s in [
            ContainerStatus::Creating,
            ContainerStatus::Running,
            ContainerStatus::Stopped,
            ContainerStatus::Copying,
            ContainerStatus::Deleting,
            ContainerStatus::Failed,
        ] {
            assert_eq!(ContainerStatus::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.as_str()));
        }
    }
}
