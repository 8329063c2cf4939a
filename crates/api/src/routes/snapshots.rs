//! `/api/v1/containers/{id}/snapshots` and `/copy`

use axum::Json as Out;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cubby_model::{Container, ContainerId, CopyContainer, CreateSnapshot, Snapshot, UpdateSnapshot};

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::ids::PathId;
use crate::json::Json;
use crate::{ApiError, AppState};

/// Copy a container (its current state, or a snapshot) into a new one,
/// optionally in another project. Answers once the copy runs.
#[utoipa::path(post, path = "/api/v1/containers/{id}/copy", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Source container id")), request_body = CopyContainer,
    responses((status = 201, body = Container), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn copy_container(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Json(req): Json<CopyContainer>,
) -> Result<(StatusCode, Out<Container>), ApiError> {
    Ok((StatusCode::CREATED, Out(s.platform.containers().copy_container(&caller, &id, &req).await?)))
}

/// Pull the template's newer files into a copy: the copy's lowers become
/// its template's current state while it keeps its own changes on top and
/// its `/data` exactly as it was. A snapshot is taken first; if the copy
/// does not start afterwards it is restored and `409 sync_failed` says
/// why. A copy already up to date is answered as it is.
#[utoipa::path(post, path = "/api/v1/containers/{id}/sync", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id (a copy)")),
    responses((status = 200, body = Container), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn sync_container(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
) -> Result<Out<Container>, ApiError> {
    Ok(Out(s.platform.containers().sync_container(&caller, &id).await?))
}

/// Take a snapshot.
#[utoipa::path(post, path = "/api/v1/containers/{id}/snapshots", tag = "snapshots", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")), request_body = CreateSnapshot,
    responses((status = 201, body = Snapshot), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_snapshot(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Json(req): Json<CreateSnapshot>,
) -> Result<(StatusCode, Out<Snapshot>), ApiError> {
    Ok((StatusCode::CREATED, Out(s.platform.containers().create_snapshot(&caller, &id, &req).await?)))
}

/// A container's snapshots, oldest first.
#[utoipa::path(get, path = "/api/v1/containers/{id}/snapshots", tag = "snapshots", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")),
    responses((status = 200, body = Vec<Snapshot>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_snapshots(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
) -> Result<Out<Vec<Snapshot>>, ApiError> {
    Ok(Out(s.platform.containers().snapshots(&caller, &id)?))
}

/// One snapshot, by name or alias.
#[utoipa::path(get, path = "/api/v1/containers/{id}/snapshots/{name}", tag = "snapshots", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id"), ("name" = String, Path, description = "Snapshot name or alias")),
    responses((status = 200, body = Snapshot), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_snapshot(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Path((_id, name)): Path<(String, String)>,
) -> Result<Out<Snapshot>, ApiError> {
    Ok(Out(s.platform.containers().snapshot(&caller, &id, &name)?))
}

/// Restore the container to this snapshot, in place (it is stopped and
/// started again around the restore).
#[utoipa::path(put, path = "/api/v1/containers/{id}/snapshots/{name}", tag = "snapshots", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id"), ("name" = String, Path, description = "Snapshot name or alias")),
    responses((status = 200, body = Container), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn restore_snapshot(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Path((_id, name)): Path<(String, String)>,
) -> Result<Out<Container>, ApiError> {
    Ok(Out(s.platform.containers().restore_snapshot(&caller, &id, &name).await?))
}

/// Rename or remove a snapshot's alias.
#[utoipa::path(patch, path = "/api/v1/containers/{id}/snapshots/{name}", tag = "snapshots", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id"), ("name" = String, Path, description = "Snapshot name or alias")),
    request_body = UpdateSnapshot,
    responses((status = 200, body = Snapshot), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_snapshot(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Path((_id, name)): Path<(String, String)>,
    Json(req): Json<UpdateSnapshot>,
) -> Result<Out<Snapshot>, ApiError> {
    Ok(Out(s.platform.containers().update_snapshot(&caller, &id, &name, &req).await?))
}

/// Delete a snapshot.
#[utoipa::path(delete, path = "/api/v1/containers/{id}/snapshots/{name}", tag = "snapshots", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id"), ("name" = String, Path, description = "Snapshot name or alias")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_snapshot(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Path((_id, name)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.platform.containers().delete_snapshot(&caller, &id, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
