//! `/api/v1/backups`: a backup of the whole box (admin token).

use axum::Json as Out;
use axum::extract::State;
use axum::http::StatusCode;
use cubby_model::{Backup, CreateBackup};

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::json::Json;
use crate::{ApiError, AppState};

/// Take a backup of the whole box (admin token): the state, every
/// container, layer, key, certificate and script, into a new directory
/// under `to` (a path on the daemon's host) or the daemon's
/// `--backup-dir`, incremental against the newest backup there. Answers
/// when it is complete; `cubby restore --from DIR` rebuilds the box.
#[utoipa::path(post, path = "/api/v1/backups", tag = "backups", request_body = CreateBackup,
    security(("bearer" = [])),
    responses((status = 201, body = Backup), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_backup(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Json(req): Json<CreateBackup>,
) -> Result<(StatusCode, Out<Backup>), ApiError> {
    Ok((StatusCode::CREATED, Out(s.platform.backup(&caller, &req).await?)))
}
