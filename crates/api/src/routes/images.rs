//! `/api/v1/images`

use axum::Json as Out;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use cubby_model::Image;
use futures::TryStreamExt;
use serde::Deserialize;
use tokio_util::io::{StreamReader, SyncIoBridge};
use utoipa::IntoParams;

use crate::auth::Auth;
use crate::error::ErrorBody;
use crate::json::Query;
use crate::{ApiError, AppState};

/// Every image.
#[utoipa::path(get, path = "/api/v1/images", tag = "images", security(("bearer" = [])),
    responses((status = 200, body = Vec<Image>), (status = 401, body = ErrorBody)))]
pub async fn list_images(State(s): State<AppState>, Auth(caller): Auth) -> Result<Out<Vec<Image>>, ApiError> {
    Ok(Out(s.platform.containers().images(&caller)?))
}

/// One image.
#[utoipa::path(get, path = "/api/v1/images/{name}", tag = "images", security(("bearer" = [])),
    params(("name" = String, Path, description = "Image name")),
    responses((status = 200, body = Image), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_image(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> Result<Out<Image>, ApiError> {
    Ok(Out(s.platform.containers().image(&caller, &name)?))
}

/// Query of an import.
#[derive(Debug, Deserialize, IntoParams)]
pub struct ImportQuery {
    /// Name of the new image.
    pub name: Option<String>,
}

/// Import an image streamed as the body (admin token): an OCI image
/// archive (`docker save`, `oci-archive`) or a rootfs tarball (plain, gzip
/// or zstd).
#[utoipa::path(post, path = "/api/v1/images", tag = "images", security(("bearer" = [])), params(ImportQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "An OCI image archive or a rootfs tarball"),
    responses((status = 201, body = Image), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 413, body = ErrorBody)))]
pub async fn import_image(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Query(q): Query<ImportQuery>,
    body: Body,
) -> Result<(StatusCode, Out<Image>), ApiError> {
    // Who may import is checked before what is asked.
    if !caller.is_admin() {
        return Err(cubby_core::Error::Forbidden.into());
    }
    let name = q.name.ok_or_else(|| {
        ApiError::bad_request("invalid_request", "name the image: POST /api/v1/images?name=<name>")
            .with_details(serde_json::json!({"field": "name"}))
    })?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = SyncIoBridge::new(StreamReader::new(stream));
    let image = s.platform.containers().import_image(&caller, &name, reader, s.max_image_bytes).await?;
    Ok((StatusCode::CREATED, Out(image)))
}

/// Delete an image's name (admin token). Containers made from it keep
/// working; its files go when nothing uses them.
#[utoipa::path(delete, path = "/api/v1/images/{name}", tag = "images", security(("bearer" = [])),
    params(("name" = String, Path, description = "Image name")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_image(
    State(s): State<AppState>,
    Auth(caller): Auth,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    s.platform.containers().delete_image(&caller, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}
