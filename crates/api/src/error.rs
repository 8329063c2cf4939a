//! The API's one error type. Every failure becomes
//! `{"error": {"code", "message", "details"?}}` with an HTTP status; the
//! mapping from core errors is explicit, one arm per variant, so a new
//! variant cannot slip through unmapped. Internal causes are logged in full
//! and shown to the user as a short message without host details.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cubby_core::Error;
pub use cubby_model::{ErrorBody, ErrorDetail};

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
    pub details: Option<serde_json::Value>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { status, code: code.into(), message: message.into(), details: None }
    }

    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "send a valid token as `Authorization: Bearer <token>` (the admin token is in <data-dir>/admin.token)",
        )
    }

    pub fn payload_too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the request body is larger than {limit} bytes"),
        )
    }

    pub(crate) fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }

    fn internal(err: &Error, what: &str) -> Self {
        let mut chain = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            chain.push_str(": ");
            chain.push_str(&s.to_string());
            source = s.source();
        }
        tracing::error!(error = %chain, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            format!(
                "the server failed to {what}; nothing was changed that is not rolled back. The daemon's log has the cause"
            ),
        )
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        match &err {
            Error::NotFound { kind, id } => Self::new(
                StatusCode::NOT_FOUND,
                format!("{kind}_not_found"),
                format!("{kind} `{id}` does not exist, or your token cannot see it"),
            ),
            Error::Invalid(v) => Self::bad_request("invalid_request", v.to_string())
                .with_details(serde_json::json!({"field": v.field})),
            Error::Conflict { code, message } => Self::new(StatusCode::CONFLICT, *code, message.clone()),
            Error::Duplicate { what, name } => Self::new(
                StatusCode::CONFLICT,
                format!("{what}_already_exists"),
                format!("a {what} named `{name}` already exists: choose another name"),
            ),
            Error::LimitReached { what, limit } => Self::new(
                StatusCode::CONFLICT,
                "limit_reached",
                format!("the {what} limit of {limit} is reached: delete something first or raise the limit"),
            ),
            Error::Forbidden => Self::new(StatusCode::FORBIDDEN, "forbidden", "this operation needs the admin token"),
            Error::StartFailed { id, reason, log_tail } => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "start_failed",
                format!("container {id} failed to start: {reason}. Check its command and port; its last output is in details.log_tail"),
            )
            .with_details(serde_json::json!({"log_tail": log_tail})),
            Error::InvalidArchive { reason } => Self::bad_request("invalid_archive", format!("{reason}. Send a tar archive (plain, gzip or zstd) of a root filesystem")),
            Error::InvalidBackup { .. } => Self::bad_request("invalid_backup", format!("{err}. Name a directory of complete backups made by POST /api/v1/backups, unchanged")),
            Error::ObjectStore { .. } => Self::new(
                StatusCode::BAD_GATEWAY,
                "backup_store_failed",
                format!(
                    "{}. Check the bucket, the endpoint and the AWS_* credentials the daemon runs with; nothing was kept of this backup",
                    err.chain()
                ),
            ),
            Error::InvalidExport { reason } => Self::bad_request(
                "invalid_export",
                format!("{reason}. Send an archive made by GET /api/v1/containers/{{id}}/export, unchanged"),
            ),
            Error::TooLarge { limit } => Self::payload_too_large(*limit),
            Error::Storage { step, .. } => Self::internal(&err, step),
            Error::Runtime { step, .. } => Self::internal(&err, step),
            Error::Netlink { step, .. } => Self::internal(&err, step),
            Error::Firewall { step, .. } => Self::internal(&err, step),
            Error::Store(_) => Self::internal(&err, "use its state database"),
            Error::Io { op, .. } => Self::internal(&err, op),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let body = ErrorBody { error: ErrorDetail { code: self.code, message: self.message, details: self.details } };
        let mut response = (self.status, axum::Json(body)).into_response();
        if unauthorized {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if self.status == StatusCode::PAYLOAD_TOO_LARGE {
            // The rest of the body is not read: the connection cannot carry
            // another request, and the client must not reuse it.
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
