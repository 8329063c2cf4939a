//! Cubby's HTTP API under `/api/v1`: thin axum handlers that parse a
//! request, call the core with the caller's identity, and map the result.
//!
//! - [`error`]: the one API error type, with its explicit mapping from
//!   core errors to HTTP status and stable code;
//! - [`auth`]: bearer-token authentication as an extractor;
//! - [`routes`]: one module per resource;
//! - [`openapi`]: the OpenAPI document, generated from the handlers and
//!   checked in at `openapi/cubby.json`;
//! - [`ui`]: the dashboard at `/ui`, embedded files that use this API.

pub mod auth;
pub mod error;
pub mod ids;
mod json;
pub mod openapi;
pub mod routes;
pub mod ui;

use std::sync::Arc;

use axum::Router;
use cubby_core::Platform;

pub use error::ApiError;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub platform: Arc<Platform>,
    /// Largest image archive accepted, once decompressed.
    pub max_image_bytes: u64,
    /// What the API measures of itself, for `/metrics`.
    pub metrics: Arc<routes::metrics::ApiMetrics>,
    /// Where custom domains' TXT records are looked up.
    pub dns: Arc<dyn cubby_core::domains::TxtLookup>,
}

/// The API router, and the OpenAPI document it serves.
pub fn router(state: AppState) -> Router {
    let (router, doc) = routes::api_router().split_for_parts();
    let doc = openapi::finish(doc);
    let json = Arc::new(doc.to_pretty_json().expect("the OpenAPI document serialises"));
    router
        .route(
            "/api/v1/openapi.json",
            axum::routing::get(move || {
                let json = Arc::clone(&json);
                async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], (*json).clone()) }
            }),
        )
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), routes::metrics::track))
        .merge(ui::router())
        .fallback(routes::meta::not_found)
        .layer(axum::extract::DefaultBodyLimit::max(json::MAX_JSON_BODY))
        .with_state(state)
}
