//! A JSON body extractor whose rejections are API errors with stable codes
//! (axum's own answer with plain text).

use axum::extract::{FromRequest, Request, rejection::JsonRejection};
use serde::de::DeserializeOwned;

use crate::ApiError;

/// Largest JSON request body.
pub const MAX_JSON_BODY: usize = 1 << 20;

/// `Json<T>`, with rejections mapped to [`ApiError`].
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        // A declared size over the limit is refused before any byte is read
        // (a client that sent `Expect: 100-continue` then sends none).
        let declared = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_JSON_BODY as u64) {
            return Err(ApiError::payload_too_large(MAX_JSON_BODY as u64));
        }
        // Any content type is accepted: `curl -d` sends form encoding by
        // default, and the body is JSON either way.
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::payload_too_large(MAX_JSON_BODY as u64)
            } else {
                ApiError::bad_request("invalid_json", e.body_text())
            }
        })?;
        let bytes = if bytes.is_empty() { axum::body::Bytes::from_static(b"{}") } else { bytes };
        match axum::Json::<T>::from_bytes(&bytes) {
            Ok(axum::Json(v)) => Ok(Self(v)),
            Err(rejection) => Err(match rejection {
                JsonRejection::JsonDataError(e) => ApiError::bad_request("invalid_request", e.body_text()),
                JsonRejection::JsonSyntaxError(e) => ApiError::bad_request("invalid_json", e.body_text()),
                JsonRejection::MissingJsonContentType(_) => {
                    ApiError::bad_request("invalid_json", "send the body as JSON with `Content-Type: application/json`")
                }
                JsonRejection::BytesRejection(e) if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                    ApiError::payload_too_large(MAX_JSON_BODY as u64)
                }
                other => ApiError::bad_request("invalid_json", other.body_text()),
            }),
        }
    }
}

/// Query parameters, with a bad query answered in the API's error shape
/// (`invalid_request`) instead of axum's plain-text rejection.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Self(v)),
            Err(e) => Err(ApiError::bad_request("invalid_request", format!("bad query string: {}", e.body_text()))),
        }
    }
}
