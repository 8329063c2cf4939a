//! `/api/v1/projects/{id}/tokens`

use axum::Json as Out;
use axum::extract::State;
use axum::http::StatusCode;
use cubby_model::{CreateToken, CreatedToken, ProjectId, Token, TokenId};

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::ids::PathId;
use crate::json::Json;
use crate::{ApiError, AppState};

/// Make a token that sees only this project. The secret is shown once.
#[utoipa::path(post, path = "/api/v1/projects/{id}/tokens", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id")), request_body = CreateToken,
    responses((status = 201, body = CreatedToken), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn create_token(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
    Json(req): Json<CreateToken>,
) -> Result<(StatusCode, Out<CreatedToken>), ApiError> {
    Ok((StatusCode::CREATED, Out(s.platform.access().create_token(&caller, &id, &req)?)))
}

/// The project's tokens, without secrets.
#[utoipa::path(get, path = "/api/v1/projects/{id}/tokens", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id")),
    responses((status = 200, body = Vec<Token>), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn list_tokens(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
) -> Result<Out<Vec<Token>>, ApiError> {
    Ok(Out(s.platform.access().tokens(&caller, &id)?))
}

/// Revoke a token.
#[utoipa::path(delete, path = "/api/v1/projects/{id}/tokens/{token_id}", tag = "tokens", security(("bearer" = [])),
    params(("id" = String, Path, description = "Project id"), ("token_id" = String, Path, description = "Token id")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_token(
    State(s): State<AppState>,
    Auth(caller): Auth,
    PathId(id): PathId<ProjectId>,
    PathId(token_id): PathId<TokenId>,
) -> Result<StatusCode, ApiError> {
    s.platform.access().delete_token(&caller, &id, &token_id)?;
    Ok(StatusCode::NO_CONTENT)
}
