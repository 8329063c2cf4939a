//! Health and the fallback for unknown routes.

use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiError;

/// The daemon is up.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
}

/// Whether the daemon answers (no token needed).
#[utoipa::path(get, path = "/api/v1/health", tag = "meta", responses((status = 200, body = Health)))]
pub async fn health() -> Json<Health> {
    Json(Health { status: "ok", version: env!("CARGO_PKG_VERSION") })
}

/// Any path the API does not have.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::NOT_FOUND,
        "route_not_found",
        format!("no API route at `{}`: see /api/v1/openapi.json", uri.path()),
    )
}
