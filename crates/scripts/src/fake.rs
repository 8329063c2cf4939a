//! [`FakeHost`]: a [`ScriptHost`] for tests (this crate's and the daemon's)
//! that records every call and answers from canned responses, with no
//! network and no daemon.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::FetchError;
use crate::host::{AnswerRoom, CubbyCallError, FetchRequest, FetchResponse, ScriptHost};

/// One `ctx.cubby` call as the host received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CubbyCall {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path relative to `/api/v1`, query string included.
    pub path: String,
    /// JSON body, if any.
    pub body: Option<String>,
}

type CubbyAnswer = Box<dyn Fn(&CubbyCall) -> Result<(u16, String), CubbyCallError> + Send + Sync>;

#[derive(Default)]
struct State {
    cubby_calls: Vec<CubbyCall>,
    cubby_answers: HashMap<(String, String), (u16, String)>,
    cubby_fallback: Option<CubbyAnswer>,
    fetch_requests: Vec<FetchRequest>,
    fetch_answers: HashMap<String, Result<FetchResponse, String>>,
}

/// A [`ScriptHost`] that records calls and answers canned responses.
///
/// Cubby calls are answered by an exact `(method, path)` match first, then by
/// the closure given to [`FakeHost::answer_cubby_with`], else with a 404
/// API error. Fetches are answered by exact URL, else fail.
#[derive(Default)]
pub struct FakeHost {
    state: Mutex<State>,
}

impl fmt::Debug for FakeHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("FakeHost")
            .field("cubby_calls", &state.cubby_calls)
            .field("fetch_requests", &state.fetch_requests)
            .finish_non_exhaustive()
    }
}

impl FakeHost {
    /// A host with no canned answers.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Answers `method path` (path exactly as the script sends it, query
    /// included) with `status` and the JSON `body`.
    pub fn answer_cubby(&self, method: &str, path: &str, status: u16, body: impl Into<String>) -> &Self {
        self.lock().cubby_answers.insert((method.to_owned(), path.to_owned()), (status, body.into()));
        self
    }

    /// Answers every cubby call without an exact answer with `answer`.
    pub fn answer_cubby_with(
        &self,
        answer: impl Fn(&CubbyCall) -> Result<(u16, String), CubbyCallError> + Send + Sync + 'static,
    ) -> &Self {
        self.lock().cubby_fallback = Some(Box::new(answer));
        self
    }

    /// Answers a fetch of exactly `url` with `response`.
    pub fn answer_fetch(&self, url: &str, response: FetchResponse) -> &Self {
        self.lock().fetch_answers.insert(url.to_owned(), Ok(response));
        self
    }

    /// Fails a fetch of exactly `url` with `message`.
    pub fn fail_fetch(&self, url: &str, message: &str) -> &Self {
        self.lock().fetch_answers.insert(url.to_owned(), Err(message.to_owned()));
        self
    }

    /// Every cubby call so far, in order.
    pub fn cubby_calls(&self) -> Vec<CubbyCall> {
        self.lock().cubby_calls.clone()
    }

    /// Every fetch so far, in order.
    pub fn fetch_requests(&self) -> Vec<FetchRequest> {
        self.lock().fetch_requests.clone()
    }
}

impl ScriptHost for FakeHost {
    fn cubby(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        room: AnswerRoom,
    ) -> BoxFuture<'static, Result<(u16, String), CubbyCallError>> {
        let call = CubbyCall { method: method.to_owned(), path: path.to_owned(), body };
        let mut state = self.lock();
        let key = (call.method.clone(), call.path.clone());
        let answer = match (state.cubby_answers.get(&key), &state.cubby_fallback) {
            (Some(canned), _) => Ok(canned.clone()),
            (None, Some(fallback)) => fallback(&call),
            (None, None) => Ok((
                404,
                format!(
                    r#"{{"error":{{"code":"not_found","message":"FakeHost has no answer for {} {}"}}}}"#,
                    call.method,
                    call.path.replace('"', "'")
                ),
            )),
        };
        state.cubby_calls.push(call);
        // As a real host would: the answer takes its room, or fails.
        let answer = answer.and_then(|(status, body)| {
            if room.take(body.len()) {
                Ok((status, body))
            } else {
                Err(CubbyCallError::NoRoom { path: path.to_owned() })
            }
        });
        futures::future::ready(answer).boxed()
    }

    fn fetch(&self, request: FetchRequest) -> BoxFuture<'static, Result<FetchResponse, FetchError>> {
        let mut state = self.lock();
        let answer = state
            .fetch_answers
            .get(&request.url)
            .cloned()
            .unwrap_or_else(|| Err(format!("FakeHost has no answer for fetch {} {}", request.method, request.url)))
            .map_err(|message| FetchError::Transport { message })
            .and_then(|response| {
                if request.room.take(response.body.len()) {
                    Ok(response)
                } else {
                    Err(FetchError::NoRoom { url: request.url.clone() })
                }
            });
        state.fetch_requests.push(request);
        futures::future::ready(answer).boxed()
    }
}
