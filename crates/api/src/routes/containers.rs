//! `/api/v1/projects/{id}/containers` and `/api/v1/containers/...`

use axum::Json as Out;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use cubby_model::{
    Container, ContainerId, ContainerStats, CreateContainer, ExecRequest, ExecResult, Page, ProjectId, Transition,
    UpdateContainer,
};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::ids::PathId;
use crate::json::{Json, Query};
use crate::{ApiError, AppState};

/// Paging of a list.
#[derive(Debug, Deserialize, IntoParams)]
pub struct PageQuery {
    /// Most items (1 to 500, default 100).
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Make a container in a project. It answers once the container runs and
/// its app's port accepts connections; `url` opens the app.
#[utoipa::path(post, path = "/api/v1/projects/{id}/containers", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id")), request_body = CreateContainer,
    responses((status = 201, body = Container), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_container(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
    Json(req): Json<CreateContainer>,
) -> Result<(StatusCode, Out<Container>), ApiError> {
    Ok((StatusCode::CREATED, Out(s.platform.containers().create_container(&caller, &id, &req).await?)))
}

/// Filter of a project's containers.
#[derive(Debug, Deserialize, IntoParams)]
pub struct NameQuery {
    /// Only the container with this name (names are unique per project).
    pub name: Option<String>,
}

/// A project's containers, a page at a time (or the one named `name`).
#[utoipa::path(get, path = "/api/v1/projects/{id}/containers", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id"), PageQuery, NameQuery),
    responses((status = 200, body = Page<Container>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_project_containers(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
    Query(q): Query<PageQuery>,
    Query(n): Query<NameQuery>,
) -> Result<Out<Page<Container>>, ApiError> {
    let project = id;
    if let Some(name) = n.name {
        let items = s.platform.containers().container_by_name(&caller, &project, &name)?.into_iter().collect();
        return Ok(Out(Page { items, next_cursor: None }));
    }
    Ok(Out(s.platform.containers().list(&caller, Some(&project), q.cursor.as_deref(), q.limit.unwrap_or(100))?))
}

/// Every container this token can see, a page at a time.
#[utoipa::path(get, path = "/api/v1/containers", tag = "containers", security(("bearer" = [])), params(PageQuery),
    responses((status = 200, body = Page<Container>), (status = 401, body = ErrorBody)))]
pub async fn list_containers(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<PageQuery>,
) -> Result<Out<Page<Container>>, ApiError> {
    Ok(Out(s.platform.containers().list(&caller, None, q.cursor.as_deref(), q.limit.unwrap_or(100))?))
}

/// One container.
#[utoipa::path(get, path = "/api/v1/containers/{id}", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")),
    responses((status = 200, body = Container), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_container(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
) -> Result<Out<Container>, ApiError> {
    Ok(Out(s.platform.containers().container(&caller, &id)?))
}

/// Change a container: env vars (merged; `null` removes a key), limits
/// (applied live), name (the URL follows), snapshot cap.
#[utoipa::path(patch, path = "/api/v1/containers/{id}", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")), request_body = UpdateContainer,
    responses((status = 200, body = Container), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update_container(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Json(req): Json<UpdateContainer>,
) -> Result<Out<Container>, ApiError> {
    Ok(Out(s.platform.containers().update_container(&caller, &id, &req).await?))
}

/// Delete a container and everything of it: processes, files, snapshots,
/// network, routes and records.
#[utoipa::path(delete, path = "/api/v1/containers/{id}", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_container(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
) -> Result<StatusCode, ApiError> {
    s.platform.containers().delete_container(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Start a stopped container.
#[utoipa::path(post, path = "/api/v1/containers/{id}/start", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")),
    responses((status = 200, body = Container), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn start_container(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
) -> Result<Out<Container>, ApiError> {
    Ok(Out(s.platform.containers().start_container(&caller, &id).await?))
}

/// Stop a container: SIGTERM, then SIGKILL after a grace period.
#[utoipa::path(post, path = "/api/v1/containers/{id}/stop", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")),
    responses((status = 200, body = Container), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn stop_container(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
) -> Result<Out<Container>, ApiError> {
    Ok(Out(s.platform.containers().stop_container(&caller, &id).await?))
}

/// Stop and start a container.
#[utoipa::path(post, path = "/api/v1/containers/{id}/restart", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")),
    responses((status = 200, body = Container), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn restart_container(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
) -> Result<Out<Container>, ApiError> {
    Ok(Out(s.platform.containers().restart_container(&caller, &id).await?))
}

/// Run a command in a running container and collect its output.
#[utoipa::path(post, path = "/api/v1/containers/{id}/exec", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")), request_body = ExecRequest,
    responses((status = 200, body = ExecResult), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn exec_container(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Json(req): Json<ExecRequest>,
) -> Result<Out<ExecResult>, ApiError> {
    Ok(Out(s.platform.containers().exec(&caller, &id, &req).await?))
}

/// How much log to read.
#[derive(Debug, Deserialize, IntoParams)]
pub struct LogQuery {
    /// Last bytes of output to return (default 65536, at most 1048576).
    pub tail_bytes: Option<u64>,
}

/// The app's output (stdout and stderr), newest last.
#[utoipa::path(get, path = "/api/v1/containers/{id}/logs", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id"), LogQuery),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn container_logs(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Query(q): Query<LogQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let bytes = s.platform.containers().logs(&caller, &id, q.tail_bytes.unwrap_or(64 * 1024))?;
    Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], bytes))
}

/// Every recorded state change of a container: when, from what, to what,
/// what caused it and how long it took.
#[utoipa::path(get, path = "/api/v1/containers/{id}/transitions", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")),
    responses((status = 200, body = Vec<Transition>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn container_transitions(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
) -> Result<Out<Vec<Transition>>, ApiError> {
    Ok(Out(s.platform.containers().transitions(&caller, &id)?))
}

/// What a container uses now: CPU, memory, pids, disk, network, uptime
/// (rates over a short window measured in the call), as `docker stats`
/// shows it.
#[utoipa::path(get, path = "/api/v1/containers/{id}/stats", tag = "containers", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")),
    responses((status = 200, body = ContainerStats), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn container_stats(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
) -> Result<Out<ContainerStats>, ApiError> {
    Ok(Out(s.platform.containers().stats(&caller, &id).await?))
}
