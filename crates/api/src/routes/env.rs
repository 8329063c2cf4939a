//! `/api/v1/containers/{id}/env`: a container's env vars, all at once or
//! one at a time (what `PATCH` does with `environment_vars`, in the shape
//! Hoody's API has). A change applies at the container's next start, or
//! at once with `?restart=true`.

use std::collections::BTreeMap;

use axum::Json as Out;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cubby_core::containers::EnvChange;
use cubby_model::{ContainerId, EnvValue};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::ids::PathId;
use crate::json::{Json, Query};
use crate::{ApiError, AppState};

/// When an env change applies.
#[derive(Debug, Deserialize, IntoParams)]
pub struct RestartQuery {
    /// Restart a running container so the change applies now (default:
    /// at its next start).
    pub restart: Option<bool>,
}

/// A container's env vars.
#[utoipa::path(get, path = "/api/v1/containers/{id}/env", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")),
    responses((status = 200, body = BTreeMap<String, String>), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_env(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
) -> Result<Out<BTreeMap<String, String>>, ApiError> {
    Ok(Out(s.platform.containers().env(&caller, &id)?))
}

/// Replace all of a container's env vars.
#[utoipa::path(put, path = "/api/v1/containers/{id}/env", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id"), RestartQuery),
    request_body = BTreeMap<String, String>,
    responses((status = 200, body = BTreeMap<String, String>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn replace_env(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Query(q): Query<RestartQuery>,
    Json(env): Json<BTreeMap<String, String>>,
) -> Result<Out<BTreeMap<String, String>>, ApiError> {
    let restart = q.restart.unwrap_or(false);
    Ok(Out(s.platform.containers().change_env(&caller, &id, EnvChange::Replace(env), restart).await?))
}

/// Set one env var.
#[utoipa::path(put, path = "/api/v1/containers/{id}/env/{key}", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id"), ("key" = String, Path, description = "Variable name"),
        RestartQuery),
    request_body = EnvValue,
    responses((status = 200, body = BTreeMap<String, String>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_env_var(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Path((_id, key)): Path<(String, String)>,
    Query(q): Query<RestartQuery>,
    Json(body): Json<EnvValue>,
) -> Result<Out<BTreeMap<String, String>>, ApiError> {
    let change = EnvChange::Set { key, value: body.value };
    Ok(Out(s.platform.containers().change_env(&caller, &id, change, q.restart.unwrap_or(false)).await?))
}

/// Remove one env var.
#[utoipa::path(delete, path = "/api/v1/containers/{id}/env/{key}", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id"), ("key" = String, Path, description = "Variable name"),
        RestartQuery),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn delete_env_var(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Path((_id, key)): Path<(String, String)>,
    Query(q): Query<RestartQuery>,
) -> Result<StatusCode, ApiError> {
    s.platform.containers().change_env(&caller, &id, EnvChange::Remove { key }, q.restart.unwrap_or(false)).await?;
    Ok(StatusCode::NO_CONTENT)
}
