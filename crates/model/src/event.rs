//! Events: every lifecycle change of a tenant, with a stable type, what
//! triggered it and who asked (`GET /api/v1/events`, and the live stream
//! `GET /api/v1/events/stream`).

use serde::{Deserialize, Serialize};

use crate::{ContainerId, ProjectId, Timestamp, Trigger};

/// The type of an event. The strings are stable: clients switch on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum EventType {
    #[serde(rename = "container.created")]
    ContainerCreated,
    #[serde(rename = "container.copied")]
    ContainerCopied,
    #[serde(rename = "container.started")]
    ContainerStarted,
    /// Started by a request to its URL.
    #[serde(rename = "container.woken")]
    ContainerWoken,
    #[serde(rename = "container.stopped")]
    ContainerStopped,
    /// Stopped after its idle timeout.
    #[serde(rename = "container.idle_stopped")]
    ContainerIdleStopped,
    /// Its main process ended on its own (`data.exit_code`).
    #[serde(rename = "container.exited")]
    ContainerExited,
    /// The kernel's OOM killer ended processes of it (`data.count`).
    #[serde(rename = "container.oom_killed")]
    ContainerOomKilled,
    #[serde(rename = "container.deleted")]
    ContainerDeleted,
    #[serde(rename = "snapshot.created")]
    SnapshotCreated,
    #[serde(rename = "snapshot.restored")]
    SnapshotRestored,
    #[serde(rename = "snapshot.deleted")]
    SnapshotDeleted,
    /// Its disk use reached its limit (`data.used_bytes`, `data.limit_bytes`).
    #[serde(rename = "quota.disk_full")]
    QuotaDiskFull,
    /// Its firewall or network rules changed.
    #[serde(rename = "firewall.changed")]
    FirewallChanged,
    /// An exec script failed (`data.path`, `data.code`).
    #[serde(rename = "script.failed")]
    ScriptFailed,
    /// Moved onto new lowers, keeping its own files and `/data`: a sync, a
    /// new image or template, a rollout's step (`data.onto`,
    /// `data.rollout_id`).
    #[serde(rename = "container.upgraded")]
    ContainerUpgraded,
    /// A rollout began (`data.rollout_id`, `data.total`).
    #[serde(rename = "rollout.started")]
    RolloutStarted,
    /// A rollout ended: `data.status` is `completed`, or `failed` when a
    /// batch had a tenant that did not start (rolled back) and the rest
    /// were not tried.
    #[serde(rename = "rollout.finished")]
    RolloutFinished,
}

impl EventType {
    /// Every type, in the order above.
    pub const ALL: [EventType; 18] = [
        Self::ContainerCreated,
        Self::ContainerCopied,
        Self::ContainerStarted,
        Self::ContainerWoken,
        Self::ContainerStopped,
        Self::ContainerIdleStopped,
        Self::ContainerExited,
        Self::ContainerOomKilled,
        Self::ContainerDeleted,
        Self::SnapshotCreated,
        Self::SnapshotRestored,
        Self::SnapshotDeleted,
        Self::QuotaDiskFull,
        Self::FirewallChanged,
        Self::ScriptFailed,
        Self::ContainerUpgraded,
        Self::RolloutStarted,
        Self::RolloutFinished,
    ];

    /// The stable string (`container.started`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ContainerCreated => "container.created",
            Self::ContainerCopied => "container.copied",
            Self::ContainerStarted => "container.started",
            Self::ContainerWoken => "container.woken",
            Self::ContainerStopped => "container.stopped",
            Self::ContainerIdleStopped => "container.idle_stopped",
            Self::ContainerExited => "container.exited",
            Self::ContainerOomKilled => "container.oom_killed",
            Self::ContainerDeleted => "container.deleted",
            Self::SnapshotCreated => "snapshot.created",
            Self::SnapshotRestored => "snapshot.restored",
            Self::SnapshotDeleted => "snapshot.deleted",
            Self::QuotaDiskFull => "quota.disk_full",
            Self::FirewallChanged => "firewall.changed",
            Self::ScriptFailed => "script.failed",
            Self::ContainerUpgraded => "container.upgraded",
            Self::RolloutStarted => "rollout.started",
            Self::RolloutFinished => "rollout.finished",
        }
    }

    /// Parses the stable string.
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// One event. `id` grows with time: it is the cursor of `after` and the
/// stream's `Last-Event-ID`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Event {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: EventType,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    pub project_id: Option<ProjectId>,
    pub container_id: Option<ContainerId>,
    /// What set it off; `null` for a direct API change without a state
    /// transition (a snapshot, a rule).
    pub trigger: Option<Trigger>,
    /// Who asked: the id of the API token the call came with (`t…`);
    /// `project` for a script's `ctx.cubby` call; `null` for the daemon
    /// itself (a crash, the idle reaper, a wake).
    pub actor: Option<String>,
    /// The type's own details (an exit code, a snapshot id, a count), as
    /// an object.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub data: serde_json::Value,
}

/// A page of events, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EventPage {
    pub items: Vec<Event>,
    /// Give it as `after` for the next page; `null` when there is none yet.
    pub next_after: Option<u64>,
}

/// One request through a tenant's URL, as its project's access log keeps
/// it: no query string, cookie or header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AccessLogLine {
    /// When the request came.
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub at: Timestamp,
    pub container_id: ContainerId,
    pub method: String,
    /// The status the client got (0: none, the connection ended first).
    pub status: u16,
    /// Bytes of the response body sent.
    pub response_bytes: u64,
    /// From the request to the end of the response (or of an upgraded
    /// connection), in milliseconds.
    pub duration_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_round_trip_through_their_stable_strings() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
            assert_eq!(serde_json::to_value(t).unwrap(), serde_json::json!(t.as_str()));
        }
        assert_eq!(EventType::parse("container.exploded"), None);
    }
}
