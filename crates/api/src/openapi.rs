//! The OpenAPI document: paths come from the handlers' `#[utoipa::path]`
//! annotations, schemas from the model's derives. `openapi/cubby.json` in
//! the repository is this document; a test fails when it is stale.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ComponentsBuilder, InfoBuilder, OpenApi};

/// Name of the bearer security scheme.
pub const BEARER: &str = "bearer";

/// Adds the document's info and security scheme.
pub fn finish(mut doc: OpenApi) -> OpenApi {
    doc.info = InfoBuilder::new()
        .title("Cubby API")
        .version(env!("CARGO_PKG_VERSION"))
        .description(Some(
            "One isolated Linux container per customer, made by one HTTP call. Authenticate with `Authorization: Bearer <token>`.",
        ))
        .build();
    let mut components = doc.components.take().unwrap_or_else(|| ComponentsBuilder::new().build());
    components.security_schemes.insert(
        BEARER.to_string(),
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()).into(),
    );
    doc.components = Some(components);
    doc
}

/// The document as served and checked in.
pub fn document() -> OpenApi {
    let (_, doc) = crate::routes::api_router().split_for_parts();
    finish(doc)
}
