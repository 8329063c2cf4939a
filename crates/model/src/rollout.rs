//! Rollouts: one upgrade applied to many tenants of a project, a batch at
//! a time, stopping at the first batch where a tenant does not start.

use serde::{Deserialize, Serialize};

use crate::{ContainerId, ProjectId, RolloutId, Timestamp};

/// `POST /api/v1/projects/{id}/rollouts`: give `template` or `image`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateRollout {
    /// Sync every copy of this container (its copies in the project) onto
    /// its current state, as `POST /containers/{id}/sync` does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<ContainerId>,
    /// Move the project's tenants onto this image, as `PATCH {image}` does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// With `image`: only the tenants now on this image (default: every
    /// tenant not on `image` yet).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from_image: Option<String>,
    /// Tenants per batch (default 5, at most 100). A batch ends before the
    /// next begins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_size: Option<u32>,
    /// Most tenants of a batch stopped at the same time (default: the
    /// batch size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<u32>,
}

/// Where a rollout is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum RolloutStatus {
    Running,
    /// Every tenant upgraded (or already up to date).
    Completed,
    /// A batch had a tenant that did not start on the new version: it was
    /// put back as it was, and the tenants after that batch were not tried.
    Failed,
    /// The daemon stopped while it ran; each tenant is either upgraded or
    /// as it was.
    Interrupted,
}

/// A tenant a rollout could not upgrade.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutFailure {
    pub container_id: ContainerId,
    /// Why, as the API would have said it.
    pub message: String,
}

/// A rollout and its progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rollout {
    pub id: RolloutId,
    pub project_id: ProjectId,
    pub template: Option<ContainerId>,
    pub image: Option<String>,
    pub status: RolloutStatus,
    pub batch_size: u32,
    pub max_unavailable: u32,
    /// Tenants it applies to.
    pub total: u32,
    /// Tenants done: upgraded, or found up to date.
    pub upgraded: Vec<ContainerId>,
    /// Tenants that did not start on the new version (each put back).
    pub failed: Vec<RolloutFailure>,
    /// Tenants not tried (yet, or because an earlier batch failed).
    pub pending: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
    #[serde(with = "time::serde::rfc3339::option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub finished_at: Option<Timestamp>,
}
