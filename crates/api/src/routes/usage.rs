//! `/api/v1/containers/{id}/usage` and `/api/v1/projects/{id}/usage`:
//! what tenants used over a span of time, in steps and totals, for
//! invoices.

use axum::Json as Out;
use axum::extract::State;
use cubby_core::containers::UsageWindow;
use cubby_model::{ContainerId, ContainerUsage, ProjectId, ProjectUsage, Timestamp};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::ids::PathId;
use crate::json::Query;
use crate::{ApiError, AppState};

/// The span and step of a usage query.
#[derive(Debug, Deserialize, IntoParams)]
pub struct UsageQuery {
    /// Start of the span (RFC 3339, e.g. `2026-12-01T00:00:00Z`); default:
    /// a day before `to`. Rounded down to the step.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub from: Option<Timestamp>,
    /// End of the span (RFC 3339); default: now. Rounded up to the step.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[param(value_type = Option<String>, format = DateTime)]
    pub to: Option<Timestamp>,
    /// Seconds per step of the series: a multiple of 60 (minutes, kept 2
    /// days) or of 3600 (hours); default 3600 for spans over 6 hours,
    /// else 60.
    pub step: Option<u32>,
    /// `container`: also each container's total (project usage only).
    #[param(inline)]
    pub group_by: Option<GroupBy>,
}

/// How a project's usage is broken down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Container,
}

impl UsageQuery {
    fn window(&self) -> UsageWindow {
        UsageWindow { from: self.from, to: self.to, step: self.step }
    }
}

/// What a container used over a span: CPU seconds, memory and disk
/// GiB-seconds and peaks, network bytes, requests through its URL and
/// their bytes, running seconds and wakes. Current to the call. A deleted
/// container's usage stays readable by its project until it ages out.
#[utoipa::path(get, path = "/api/v1/containers/{id}/usage", tag = "usage", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id"), UsageQuery),
    responses((status = 200, body = ContainerUsage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn container_usage(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Query(q): Query<UsageQuery>,
) -> Result<Out<ContainerUsage>, ApiError> {
    Ok(Out(s.platform.containers().container_usage(&caller, &id, &q.window())?))
}

/// What a project's containers used over a span, together, and with
/// `group_by=container` each one's total (deleted ones by id, until their
/// usage ages out).
#[utoipa::path(get, path = "/api/v1/projects/{id}/usage", tag = "usage", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id"), UsageQuery),
    responses((status = 200, body = ProjectUsage), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn project_usage(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
    Query(q): Query<UsageQuery>,
) -> Result<Out<ProjectUsage>, ApiError> {
    let by_container = q.group_by == Some(GroupBy::Container);
    Ok(Out(s.platform.containers().project_usage(&caller, &id, &q.window(), by_container)?))
}
