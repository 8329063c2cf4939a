//! The seam between a running script and the daemon: [`ScriptHost`], the two
//! calls a script can make to the outside world (`ctx.cubby` and `fetch`),
//! and the plain request/response types of `fetch`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;

use crate::FetchError;

/// Why a `ctx.cubby` call got no answer (an answer with an error status is
/// an answer, not this). The script's exception carries the message.
#[derive(Debug, thiserror::Error)]
pub enum CubbyCallError {
    /// The path is not under the API.
    #[error("`{path}` is not an API path: write it like /containers/<id>")]
    NotAnApiPath {
        /// The path as given.
        path: String,
    },
    /// The method or path cannot make an HTTP request.
    #[error("`{method} {path}` is not a valid request: the method is a word like GET, the path like /containers/<id>")]
    InvalidRequest {
        /// The method as given.
        method: String,
        /// The path as given.
        path: String,
    },
    /// The answer is larger than what the script's memory has left.
    #[error("the answer of {path} does not fit in the script's memory")]
    NoRoom {
        /// The path called.
        path: String,
    },
    /// The API could not be reached.
    #[error("the API is unavailable")]
    Unavailable,
}

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
    /// The room the script has for answers: the body takes from it as it
    /// arrives, and a body that does not fit fails the fetch.
    pub room: AnswerRoom,
}

/// The room a script has for the answers of its host calls, which are
/// buffered outside its JavaScript heap until it receives them: its memory
/// limit, shared by its calls in flight. A host takes bytes as an answer
/// arrives (and gives them back if the call fails); the script gives them
/// back once the answer is in its own heap, where the limit counts it.
#[derive(Debug, Clone, Default)]
pub struct AnswerRoom(Arc<AtomicUsize>);

impl AnswerRoom {
    pub fn new(bytes: usize) -> Self {
        Self(Arc::new(AtomicUsize::new(bytes)))
    }

    /// Takes `n` bytes; false (and nothing taken) if they do not fit.
    pub fn take(&self, n: usize) -> bool {
        self.0.fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| left.checked_sub(n)).is_ok()
    }

    /// Gives back `n` bytes taken earlier.
    pub fn give(&self, n: usize) {
        self.0.fetch_add(n, Ordering::AcqRel);
    }

    /// Bytes left.
    pub fn left(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

impl PartialEq for AnswerRoom {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for AnswerRoom {}

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
    /// none), whose bytes it takes from `room`; `Err` for calls that got
    /// no answer at all, or one that did not fit.
    fn cubby(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        room: AnswerRoom,
    ) -> BoxFuture<'static, Result<(u16, String), CubbyCallError>>;

    /// An outgoing HTTP request; the script sees the message of an `Err`.
    fn fetch(&self, request: FetchRequest) -> BoxFuture<'static, Result<FetchResponse, FetchError>>;
}
