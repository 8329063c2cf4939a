//! `/api/v1/containers/{id}/authorize`, `/revoke-claims`,
//! `/api/v1/meta/public-key` and `/api/v1/aliases`

use axum::Json as Out;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cubby_model::{Alias, Authorization, AuthorizeRequest, ContainerId, CreateAlias, PublicKey};

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::ids::PathId;
use crate::json::Json;
use crate::{ApiError, AppState};

/// Sign a claim that opens the container's URL for one user; send them to
/// the returned `url`.
#[utoipa::path(post, path = "/api/v1/containers/{id}/authorize", tag = "access", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")), request_body = AuthorizeRequest,
    responses((status = 200, body = Authorization), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn authorize(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
    Json(req): Json<AuthorizeRequest>,
) -> Result<Out<Authorization>, ApiError> {
    Ok(Out(s.platform.access().authorize(&caller, &id, &req)?))
}

/// Void every claim of the container signed so far, at once.
#[utoipa::path(post, path = "/api/v1/containers/{id}/revoke-claims", tag = "access", security(("bearer" = [])),
    params(("id" = String, Path, description = "Container id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke_claims(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ContainerId>,
) -> Result<StatusCode, ApiError> {
    s.platform.access().revoke_claims(&caller, &id)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The key that signs claims, so apps can verify them offline (no token needed).
#[utoipa::path(get, path = "/api/v1/meta/public-key", tag = "access", responses((status = 200, body = PublicKey)))]
pub async fn public_key(State(s): State<AppState>) -> Out<PublicKey> {
    Out(s.platform.access().public_key())
}

/// Point a unique name at a container (and a port): `http://{name}.{domain}`.
#[utoipa::path(post, path = "/api/v1/aliases", tag = "access", security(("bearer" = [])), request_body = CreateAlias,
    responses((status = 201, body = Alias), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_alias(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Json(req): Json<CreateAlias>,
) -> Result<(StatusCode, Out<Alias>), ApiError> {
    Ok((StatusCode::CREATED, Out(s.platform.access().create_alias(&caller, &req)?)))
}

/// The aliases this token can see.
#[utoipa::path(get, path = "/api/v1/aliases", tag = "access", security(("bearer" = [])),
    responses((status = 200, body = Vec<Alias>), (status = 401, body = ErrorBody)))]
pub async fn list_aliases(State(s): State<AppState>, Auth(caller): Auth) -> Result<Out<Vec<Alias>>, ApiError> {
    Ok(Out(s.platform.access().aliases(&caller, None)?))
}

/// Remove an alias.
#[utoipa::path(delete, path = "/api/v1/aliases/{name}", tag = "access", security(("bearer" = [])),
    params(("name" = String, Path, description = "Alias")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_alias(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.platform.access().delete_alias(&caller, &name)?;
    Ok(StatusCode::NO_CONTENT)
}
