//! The seam between a running script and the daemon: [`ScriptHost`], the two
//! calls a script can make to the outside world (`ctx.cubby` and `fetch`),
//! and the plain request/response types of `fetch`.

use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

/// An outgoing HTTP request made by a script's `fetch`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// Upper-case method, e.g. `GET`.
    pub method: String,
    /// Absolute `http` or `https` URL.
    pub url: String,
    /// Header names are lower-case; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// Empty for no body.
    pub body: Bytes,
    /// The whole exchange must end within this time.
    pub timeout: Duration,
}

/// The answer to a [`FetchRequest`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    /// HTTP status code.
    pub status: u16,
    /// Header names are lower-case; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Bytes,
}

/// What a script may call outside itself. The daemon implements it; every
/// future is `Send + 'static` and is polled by the engine while the script
/// waits for it.
pub trait ScriptHost: Send + Sync {
    /// One call to the Cubby API on behalf of the script's project.
    ///
    /// `path` is relative to `/api/v1` (e.g. `/containers/c1/copy`) and
    /// `body` is JSON. Answers the HTTP status and the JSON body (empty for
    /// none); `Err` carries a message for calls that got no answer at all.
    fn cubby(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> BoxFuture<'static, Result<(u16, String), String>>;

    /// An outgoing HTTP request; `Err` carries a message the script sees.
    fn fetch(&self, request: FetchRequest) -> BoxFuture<'static, Result<FetchResponse, String>>;
}
