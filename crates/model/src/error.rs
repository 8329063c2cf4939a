//! The error envelope every Cubby answer uses, whoever makes it (the API,
//! the proxy's own pages, exec scripts refused or failed):
//! `{"error": {"code", "message", "details"?}}`. One type, so clients
//! parse one shape.

use serde::{Deserialize, Serialize};

/// The body of every error answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorDetail {
    /// Stable, machine-readable: `container_not_found`, `invalid_request`, ...
    pub code: String,
    /// For people: what is wrong and what to do.
    pub message: String,
    /// Extra facts, such as the refused `field`, or the app's last output.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ErrorBody {
    /// An envelope with no details.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self { error: ErrorDetail { code: code.into(), message: message.into(), details: None } }
    }

    /// The envelope as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an error envelope serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_envelope_has_one_shape() {
        let text = ErrorBody::new("script_busy", "retry").to_json();
        assert_eq!(text, r#"{"error":{"code":"script_busy","message":"retry"}}"#);
        let back: ErrorBody = serde_json::from_str(&text).unwrap();
        assert_eq!(back.error.code, "script_busy");
    }
}
