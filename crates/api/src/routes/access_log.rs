//! `/api/v1/projects/{id}/access-log`: the requests through a project's
//! tenant URLs, one line each (no query string, cookie or header).

use axum::Json as Out;
use axum::extract::State;
use cubby_model::{AccessLogLine, ProjectId};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::ids::PathId;
use crate::json::Query;
use crate::{ApiError, AppState};

/// How much of the log.
#[derive(Debug, Deserialize, IntoParams)]
pub struct AccessLogQuery {
    /// The last this many lines (1 to 1000, default 100).
    pub limit: Option<usize>,
}

/// The latest requests through the project's tenant URLs, oldest first:
/// container, method, status, response bytes, duration. Kept in two
/// 8 MiB files per project.
#[utoipa::path(get, path = "/api/v1/projects/{id}/access-log", tag = "events", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id"), AccessLogQuery),
    responses((status = 200, body = Vec<AccessLogLine>), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn access_log(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
    Query(q): Query<AccessLogQuery>,
) -> Result<Out<Vec<AccessLogLine>>, ApiError> {
    Ok(Out(s.platform.access_logs().read(&caller, &id, q.limit.unwrap_or(100))?))
}
