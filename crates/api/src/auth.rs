//! Bearer-token authentication. Handlers that take [`Auth`] run only for a
//! valid token; anything else answers 401 before the handler runs.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use cubby_core::Caller;

use crate::{ApiError, AppState};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Auth(pub Caller);

/// A caller set by the daemon itself on a request it makes in process (an
/// exec script's `ctx.cubby`). Request extensions cannot come from the
/// network, so only the daemon can set it.
#[derive(Debug, Clone)]
pub struct InProcessCaller(pub Caller);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if let Some(InProcessCaller(caller)) = parts.extensions.get::<InProcessCaller>() {
            return Ok(Self(caller.clone()));
        }
        let secret = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .ok_or_else(ApiError::unauthorized)?;
        match state.platform.access().authenticate(secret)? {
            Some(caller) => Ok(Self(caller)),
            None => Err(ApiError::unauthorized()),
        }
    }
}
