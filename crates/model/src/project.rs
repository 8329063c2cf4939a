//! Projects: one per customer of Cubby (a SaaS company). Containers and
//! project tokens belong to exactly one.

use serde::{Deserialize, Serialize};

use crate::{AccessMode, ProjectId, Timestamp};

/// A project, as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Project {
    pub id: ProjectId,
    /// Unique on the daemon; part of its containers' URLs.
    pub name: String,
    /// Most containers it may hold; unlimited when absent.
    pub max_containers: Option<u32>,
    /// Access mode of its containers that do not set one.
    pub default_access: AccessMode,
    /// Idle timeout of its containers that do not set one (0: never stop).
    pub default_idle_timeout_seconds: u32,
    #[serde(with = "time::serde::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub created_at: Timestamp,
}

/// The body of `POST /api/v1/projects`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateProject {
    /// 1 to 20 lowercase letters, digits and hyphens, not ending in `-<digits>`.
    pub name: String,
    #[serde(default)]
    pub max_containers: Option<u32>,
    /// `claim` when left out.
    #[serde(default)]
    pub default_access: Option<AccessMode>,
    /// 0 (never) when left out.
    #[serde(default)]
    pub default_idle_timeout_seconds: Option<u32>,
}

/// The body of `PATCH /api/v1/projects/{id}` (admin token).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UpdateProject {
    #[serde(default)]
    pub max_containers: Option<u32>,
    #[serde(default)]
    pub default_access: Option<AccessMode>,
    #[serde(default)]
    pub default_idle_timeout_seconds: Option<u32>,
}
