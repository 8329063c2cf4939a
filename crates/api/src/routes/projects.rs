//! `/api/v1/projects`

use axum::Json as Out;
use axum::extract::State;
use axum::http::StatusCode;
use cubby_model::{CreateProject, Project, ProjectId, UpdateProject};

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::ids::PathId;
use crate::json::Json;
use crate::{ApiError, AppState};

/// Make a project (admin token).
#[utoipa::path(post, path = "/api/v1/projects", tag = "projects", request_body = CreateProject,
    security(("bearer" = [])),
    responses((status = 201, body = Project), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_project(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Json(req): Json<CreateProject>,
) -> Result<(StatusCode, Out<Project>), ApiError> {
    Ok((StatusCode::CREATED, Out(s.platform.create_project(&caller, &req)?)))
}

/// The projects this token can see.
#[utoipa::path(get, path = "/api/v1/projects", tag = "projects", security(("bearer" = [])),
    responses((status = 200, body = Vec<Project>), (status = 401, body = ErrorBody)))]
pub async fn list_projects(State(s): State<AppState>, Auth(caller): Auth) -> Result<Out<Vec<Project>>, ApiError> {
    Ok(Out(s.platform.projects(&caller)?))
}

/// One project.
#[utoipa::path(get, path = "/api/v1/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = Project), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_project(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
) -> Result<Out<Project>, ApiError> {
    Ok(Out(s.platform.project(&caller, &id)?))
}

/// Change a project's container limit and the defaults of its containers
/// (admin token).
#[utoipa::path(patch, path = "/api/v1/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id")), request_body = UpdateProject,
    responses((status = 200, body = Project), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn update_project(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
    Json(req): Json<UpdateProject>,
) -> Result<Out<Project>, ApiError> {
    Ok(Out(s.platform.update_project(&caller, &id, &req)?))
}

/// Delete an empty project and its tokens (admin token).
#[utoipa::path(delete, path = "/api/v1/projects/{id}", tag = "projects", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete_project(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
) -> Result<StatusCode, ApiError> {
    s.platform.delete_project(&caller, &id)?;
    Ok(StatusCode::NO_CONTENT)
}
