//! `/api/v1/projects/{id}/scripts` (the files of a project's `scripts/`
//! folder, and their invocation logs) and `/api/v1/projects/{id}/secrets`.
//!
//! Script paths contain slashes, so the file routes use a catch-all
//! segment; they are documented through [`ScriptFileDocs`].

use axum::Json as Out;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use cubby_model::{ProjectId, PutSecrets, ScriptFile, ScriptInvocation, SecretNames};
use serde::Deserialize;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::ids::PathId;
use crate::json::{Json, Query};
use crate::{ApiError, AppState};

/// The scripts of a project, with the URL each serves.
#[utoipa::path(get, path = "/api/v1/projects/{id}/scripts", tag = "scripts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = Vec<ScriptFile>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_scripts(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
) -> Result<Out<Vec<ScriptFile>>, ApiError> {
    Ok(Out(s.platform.scripts().list(&caller, &id)?))
}

/// Query of the logs listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LogsQuery {
    /// Most entries, newest first (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// The latest invocations of the project's scripts, newest first, with
/// what each printed with `console.*`.
#[utoipa::path(get, path = "/api/v1/projects/{id}/scripts/logs", tag = "scripts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id"), LogsQuery),
    responses((status = 200, body = Vec<ScriptInvocation>), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn script_logs(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
    Query(q): Query<LogsQuery>,
) -> Result<Out<Vec<ScriptInvocation>>, ApiError> {
    Ok(Out(s.platform.scripts().script_logs(&caller, &id, q.limit.unwrap_or(100))?))
}

/// Write one script (the request body is the file). `.ts` files are
/// checked at once; the file serves at the answer's `url`.
#[utoipa::path(put, path = "/api/v1/projects/{id}/scripts/{path}", tag = "scripts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id"),
        ("path" = String, Path, description = "File path in scripts/, slashes allowed: `webhooks/stripe.ts`")),
    request_body(content = String, content_type = "text/plain", description = "The script source (JavaScript or TypeScript)"),
    responses((status = 200, body = ScriptFile), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn put_script(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
    Path((_id, path)): Path<(String, String)>,
    body: Bytes,
) -> Result<Out<ScriptFile>, ApiError> {
    Ok(Out(s.platform.scripts().put_script(&caller, &id, &path, &body)?))
}

/// Read one script's content.
#[utoipa::path(get, path = "/api/v1/projects/{id}/scripts/{path}", tag = "scripts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id"),
        ("path" = String, Path, description = "File path in scripts/, slashes allowed")),
    responses((status = 200, body = String, content_type = "text/plain"), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn get_script(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
    Path((_id, path)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let (file, content) = s.platform.scripts().script(&caller, &id, &path)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_string()),
            (header::ETAG, format!("\"{}\"", file.sha256)),
        ],
        content,
    )
        .into_response())
}

/// Remove one script.
#[utoipa::path(delete, path = "/api/v1/projects/{id}/scripts/{path}", tag = "scripts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id"),
        ("path" = String, Path, description = "File path in scripts/, slashes allowed")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_script(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
    Path((_id, path)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.platform.scripts().delete_script(&caller, &id, &path)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the project's secrets (scripts read them as `ctx.env`). Values
/// are never returned.
#[utoipa::path(put, path = "/api/v1/projects/{id}/secrets", tag = "scripts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id")), request_body = std::collections::BTreeMap<String, String>,
    responses((status = 200, body = SecretNames), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn put_secrets(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
    Json(req): Json<PutSecrets>,
) -> Result<Out<SecretNames>, ApiError> {
    Ok(Out(s.platform.scripts().set_secrets(&caller, &id, &req)?))
}

/// The names of the project's secrets.
#[utoipa::path(get, path = "/api/v1/projects/{id}/secrets", tag = "scripts", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = SecretNames), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_secrets(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
) -> Result<Out<SecretNames>, ApiError> {
    Ok(Out(s.platform.scripts().secret_names(&caller, &id)?))
}

/// The OpenAPI paths of the catch-all file routes.
#[derive(Debug, utoipa::OpenApi)]
#[openapi(paths(put_script, get_script, delete_script))]
pub struct ScriptFileDocs;
