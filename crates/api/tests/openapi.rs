//! The checked-in OpenAPI document (`openapi/cubby.json`) must be exactly
//! what the code generates. Regenerate it with
//! `UPDATE_OPENAPI=1 cargo test -p cubby-api --test openapi` (or
//! `cubby openapi > openapi/cubby.json`).

use std::path::PathBuf;

#[test]
fn checked_in_openapi_document_is_current() {
    let generated = format!("{}\n", cubby_api::openapi::document().to_pretty_json().unwrap());
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../openapi/cubby.json");
    if std::env::var("UPDATE_OPENAPI").is_ok() {
        std::fs::write(&path, &generated).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "openapi/cubby.json is stale: run `UPDATE_OPENAPI=1 cargo test -p cubby-api --test openapi` and commit it"
    );
}

#[test]
fn document_covers_the_container_lifecycle() {
    let doc = serde_json::to_value(cubby_api::openapi::document()).unwrap();
    for path in [
        "/api/v1/projects",
        "/api/v1/projects/{id}/containers",
        "/api/v1/containers/{id}",
        "/api/v1/containers/{id}/start",
        "/api/v1/containers/{id}/stop",
        "/api/v1/containers/{id}/exec",
        "/api/v1/containers/{id}/logs",
        "/api/v1/projects/{id}/tokens",
        "/api/v1/images",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is not documented");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["Container"].is_object());
}
