//! `/api/v1/projects/{id}/rollouts`: one upgrade over many tenants.

use axum::Json as Out;
use axum::extract::State;
use axum::http::StatusCode;
use cubby_model::{CreateRollout, ProjectId, Rollout, RolloutId};

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::ids::PathId;
use crate::json::Json;
use crate::{ApiError, AppState};

/// Start a rollout: sync every copy of `template`, or move the tenants
/// onto `image`, `batch_size` at a time (each snapshotted first and put
/// back if it does not start). A batch with such a failure ends it.
/// Answers at once; follow it with `GET .../rollouts/{rollout_id}` or the
/// events (`container.upgraded`, `rollout.finished`).
#[utoipa::path(post, path = "/api/v1/projects/{id}/rollouts", tag = "rollouts", request_body = CreateRollout,
    security(("bearer" = [])), params(("id" = String, Path, description = "Project id")),
    responses((status = 202, body = Rollout), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn create_rollout(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
    Json(req): Json<CreateRollout>,
) -> Result<(StatusCode, Out<Rollout>), ApiError> {
    Ok((StatusCode::ACCEPTED, Out(s.platform.containers().start_rollout(&caller, &id, &req).await?)))
}

/// The project's rollouts this daemon remembers, oldest first.
#[utoipa::path(get, path = "/api/v1/projects/{id}/rollouts", tag = "rollouts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = Vec<Rollout>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_rollouts(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
) -> Result<Out<Vec<Rollout>>, ApiError> {
    Ok(Out(s.platform.containers().rollouts(&caller, &id)?))
}

/// One rollout and its progress.
#[utoipa::path(get, path = "/api/v1/projects/{id}/rollouts/{rollout_id}", tag = "rollouts",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id"), ("rollout_id" = String, Path, description = "Rollout id")),
    responses((status = 200, body = Rollout), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_rollout(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
    PathId(rollout_id): PathId<RolloutId>,
) -> Result<Out<Rollout>, ApiError> {
    Ok(Out(s.platform.containers().rollout(&caller, &id, &rollout_id)?))
}
