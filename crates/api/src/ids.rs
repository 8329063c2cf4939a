//! Typed ids from URL paths. A handler names the id it wants
//! (`PathId<ContainerId>`), and text that cannot be such an id answers
//! 404 `<kind>_not_found`, exactly as an id that names nothing: a
//! malformed id never reaches the core or the store.

use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use cubby_core::Error;
use cubby_model::{ContainerId, IdError, ProjectId, RolloutId, RuleId, TokenId, WebhookId};

use crate::ApiError;

/// An id kind that appears in paths, and the name of its parameter.
pub trait PathParam: Sized {
    /// The route parameter that holds it (`{id}`, `{rule_id}`, ...).
    const PARAM: &'static str;
    /// The kind, as in `<kind>_not_found`.
    const KIND: &'static str;
    fn parse(text: &str) -> Result<Self, IdError>;
}

macro_rules! path_param {
    ($ty:ty, $param:literal, $kind:literal) => {
        impl PathParam for $ty {
            const PARAM: &'static str = $param;
            const KIND: &'static str = $kind;
            fn parse(text: &str) -> Result<Self, IdError> {
                <$ty>::parse(text)
            }
        }
    };
}

path_param!(ProjectId, "id", "project");
path_param!(ContainerId, "id", "container");
path_param!(TokenId, "token_id", "token");
path_param!(RuleId, "rule_id", "firewall_rule");
path_param!(WebhookId, "webhook_id", "webhook");
path_param!(RolloutId, "rollout_id", "rollout");

/// The id in the path parameter `T::PARAM`, checked.
#[derive(Debug)]
pub struct PathId<T>(pub T);

impl<T: PathParam, S: Send + Sync> FromRequestParts<S> for PathId<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let params = RawPathParams::from_request_parts(parts, state).await.map_err(|e| {
            ApiError::bad_request("invalid_request", format!("the path cannot be read: {}", e.body_text()))
        })?;
        let Some((_, text)) = params.iter().find(|(name, _)| *name == T::PARAM) else {
            // A route written without the parameter: a bug of the daemon.
            tracing::error!(param = T::PARAM, "a route lacks the id parameter its handler reads");
            return Err(ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "the server failed to read the id in the path. The daemon's log has the cause",
            ));
        };
        T::parse(text)
            .map(PathId)
            .map_err(|_| Error::NotFound { kind: T::KIND, id: text.chars().take(64).collect() }.into())
    }
}
