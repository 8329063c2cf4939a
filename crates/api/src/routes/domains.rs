//! `/api/v1/containers/{id}/domains`: a customer's own hostnames for a
//! tenant, served once their TXT record is verified.

use axum::Json as Out;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cubby_model::{ContainerId, CreateDomain, CustomDomain};

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::ids::PathId;
use crate::json::Json;
use crate::{ApiError, AppState};

/// Add a custom domain (`{hostname}`) to a container. The answer names the
/// TXT record to create (`_cubby-challenge.<hostname>`) and where to point
/// the hostname (`cname_target`); the domain is served once verified. A
/// hostname is one container's in the whole daemon.
#[utoipa::path(post, path = "/api/v1/containers/{id}/domains", tag = "domains", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")), request_body = CreateDomain,
    responses((status = 201, body = CustomDomain), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_domain(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Json(req): Json<CreateDomain>,
) -> Result<(StatusCode, Out<CustomDomain>), ApiError> {
    Ok((StatusCode::CREATED, Out(s.platform.access().create_domain(&caller, &id, &req)?)))
}

/// A container's custom domains, pending and verified.
#[utoipa::path(get, path = "/api/v1/containers/{id}/domains", tag = "domains", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")),
    responses((status = 200, body = Vec<CustomDomain>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_domains(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
) -> Result<Out<Vec<CustomDomain>>, ApiError> {
    Ok(Out(s.platform.access().domains(&caller, &id)?))
}

/// Look for the domain's TXT record now; found, the proxy serves the
/// container at the hostname. Not found: 409 `domain_not_verified`, saying
/// what was found.
#[utoipa::path(post, path = "/api/v1/containers/{id}/domains/{hostname}/verify", tag = "domains",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id"), ("hostname" = String, Path, description = "Hostname")),
    responses((status = 200, body = CustomDomain), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn verify_domain(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Path(path): Path<(String, String)>,
) -> Result<Out<CustomDomain>, ApiError> {
    Ok(Out(s.platform.access().verify_domain(&caller, &id, &path.1, &*s.dns).await?))
}

/// Remove a custom domain: it is no longer served.
#[utoipa::path(delete, path = "/api/v1/containers/{id}/domains/{hostname}", tag = "domains", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id"), ("hostname" = String, Path, description = "Hostname")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_domain(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Path(path): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    s.platform.access().delete_domain(&caller, &id, &path.1)?;
    Ok(StatusCode::NO_CONTENT)
}
