//! Running one HTTP request through a script: the public types
//! ([`Invocation`], [`Outcome`], [`ScriptError`], ...) and [`run`], which
//! hands the JavaScript to a thread of its own so that no script ever runs
//! on a tokio worker.
//!
//! Submodules: `invoke` (one fresh QuickJS runtime per call, limits, error
//! mapping), `memory` (the counting allocator behind the memory limit),
//! `prelude` (the JavaScript in `js/`, compiled once to bytecode),
//! `natives` (the Rust functions under the prelude), `builtins` (their pure
//! Rust) and `console` (the capped log).

mod builtins;
mod console;
mod invoke;
mod keys;
mod memory;
mod natives;
mod prelude;
mod thrown;
mod webcrypto;

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::host::ScriptHost;
use crate::modules::{ModuleCode, ModuleSource};

/// Stack of each script thread. QuickJS is held to [`JS_STACK_BYTES`] of it,
/// well inside, so deep recursion is a catchable error and never a crash.
const THREAD_STACK_BYTES: usize = 4 * 1024 * 1024;
/// QuickJS's own stack limit on the script thread.
const JS_STACK_BYTES: usize = 1024 * 1024;

/// The incoming HTTP request, as the handler's `request` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptRequest {
    /// Upper-case method.
    pub method: String,
    /// Full URL, e.g. `http://acme.exec.localhost:8080/hello?x=1`.
    pub url: String,
    /// Header pairs; names may repeat. Pairs that HTTP could not carry are dropped.
    pub headers: Vec<(String, String)>,
    /// The whole body (empty for none).
    pub body: Bytes,
}

/// What the handler answered.
#[derive(Debug, PartialEq, Eq)]
pub struct ScriptResponse {
    /// 200..=599 for a `Response`; 200 for a JSON value, 204 for `undefined`.
    pub status: u16,
    /// Lower-case header names; a name may repeat (e.g. `set-cookie`).
    pub headers: Vec<(String, String)>,
    /// The whole body (empty when it is streamed).
    pub body: Bytes,
    /// The body's chunks, when the handler answered with a `ReadableStream`
    /// (the script is still running while they come).
    pub stream: Option<BodyStream>,
}

/// The chunks of a streamed response, as the script enqueues them. The
/// script runs until the stream ends, its time limit passes, or this is
/// dropped (the client went away), which stops it.
pub struct BodyStream {
    chunks: tokio::sync::mpsc::Receiver<Bytes>,
    /// The run's final outcome: held so that the run goes on while the
    /// stream is read, and stops when it is dropped.
    run: Option<tokio::sync::oneshot::Receiver<Outcome>>,
    /// Stops the script's JavaScript at once when the stream is dropped.
    cancel: Option<CancelOnDrop>,
    /// What the caller keeps for as long as the script runs (its run
    /// slots: a streaming script still counts as running).
    held: Arc<Held>,
}

/// Values kept until a streaming run's script has ended (by the script
/// thread, whatever the client does; dropping the stream ends the script).
#[derive(Default)]
pub(crate) struct Held(std::sync::Mutex<(bool, Vec<Box<dyn std::any::Any + Send + Sync>>)>);

impl Held {
    /// The script has ended: what is held goes now, and what comes later
    /// goes at once.
    pub(crate) fn release(&self) {
        let taken = {
            let mut held = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            held.0 = true;
            std::mem::take(&mut held.1)
        };
        drop(taken);
    }
}

impl BodyStream {
    pub(crate) fn new(chunks: tokio::sync::mpsc::Receiver<Bytes>, held: Arc<Held>) -> Self {
        Self { chunks, run: None, cancel: None, held }
    }

    /// Keeps `value` until the script has ended (not until the client has
    /// read the stream: a client that stops reading holds nothing).
    pub fn hold(&self, value: Box<dyn std::any::Any + Send + Sync>) {
        let mut held = self.held.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if !held.0 {
            held.1.push(value);
        }
    }
}

impl BodyStream {
    /// The next chunk; `None` once the stream is over (ended by the script,
    /// cut by a failure or its time limit).
    pub async fn next(&mut self) -> Option<Bytes> {
        self.chunks.recv().await
    }
}

impl futures::Stream for BodyStream {
    type Item = Bytes;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Bytes>> {
        self.chunks.poll_recv(cx)
    }
}

impl fmt::Debug for BodyStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BodyStream").finish_non_exhaustive()
    }
}

impl PartialEq for BodyStream {
    /// Two streams are never the same stream's contents.
    fn eq(&self, _: &Self) -> bool {
        false
    }
}

impl Eq for BodyStream {}

/// Per-invocation limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// QuickJS heap limit (default 64 MiB).
    pub memory_bytes: usize,
    /// Wall-clock limit of the whole invocation (default 30 s).
    pub timeout: Duration,
    /// Largest response body (default 10 MiB).
    pub max_response_bytes: usize,
    /// Bytes of `console` output kept (default 64 KiB).
    pub max_log_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 * 1024 * 1024,
            timeout: Duration::from_secs(30),
            max_response_bytes: 10 * 1024 * 1024,
            max_log_bytes: 64 * 1024,
        }
    }
}

/// Everything one run needs.
#[derive(Clone)]
pub struct Invocation {
    /// The script: its path in its project (e.g. `webhooks/signup.ts`,
    /// the module's name in stack traces and errors) and its JavaScript
    /// (TypeScript already stripped by [`crate::strip_types`]).
    pub module: Arc<ModuleCode>,
    /// The files its imports may load.
    pub modules: Arc<dyn ModuleSource>,
    /// The request to handle.
    pub request: ScriptRequest,
    /// Route parameters, as `ctx.params`.
    pub params: BTreeMap<String, String>,
    /// Secrets, as the frozen `ctx.env`.
    pub env: BTreeMap<String, String>,
    /// Project id; `ctx.cubby` paths are built with it.
    pub project: String,
    /// Limits of this run.
    pub limits: Limits,
    /// The daemon's side of `ctx.cubby` and `fetch`.
    pub host: Arc<dyn ScriptHost>,
}

impl fmt::Debug for Invocation {
    // Leaves out the source and the secrets' values.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Invocation")
            .field("module", &self.module)
            .field("request", &self.request)
            .field("params", &self.params)
            .field("env_keys", &self.env.keys().collect::<Vec<_>>())
            .field("project", &self.project)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// One `console` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `log`, `info`, `warn`, `error` or `debug`.
    pub level: String,
    /// The arguments formatted and joined by spaces.
    pub message: String,
}

/// The result of one run, with its log whatever happened (a streamed run:
/// what it printed until its head was sent).
#[derive(Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The response, or why there is none.
    pub result: Result<ScriptResponse, ScriptError>,
    /// `console` output, capped at [`Limits::max_log_bytes`].
    pub logs: Vec<LogLine>,
    /// Wall-clock time of the run, thread hand-off included.
    pub duration: Duration,
}

/// Why a run produced no response. `Display` tells the script's author
/// what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// Past the time limit (a busy loop, a promise that never settles, a slow fetch).
    #[error("the script ran past its time limit of {} ms; make it faster or raise `// @timeout`", .limit.as_millis())]
    Timeout {
        /// The limit that was hit.
        limit: Duration,
    },
    /// Past the memory limit.
    #[error("the script used more than its memory limit of {}; keep less data in memory", size(*.limit))]
    OutOfMemory {
        /// The limit that was hit, in bytes.
        limit: usize,
    },
    /// The script threw (or its promise rejected) and nothing caught it.
    #[error("the script threw an uncaught exception: {message}")]
    Exception {
        /// `Name: message` of the error, or the thrown value.
        message: String,
        /// The JavaScript stack, when there is one.
        stack: Option<String>,
    },
    /// The module does not parse.
    #[error("the script does not compile: {message}")]
    Syntax {
        /// The parser's message and place.
        message: String,
    },
    /// The module has no default export function.
    #[error("the script has no default export function; add `export default async function (request, ctx) {{ ... }}`")]
    NoHandler,
    /// The handler returned something that cannot be sent.
    #[error("the handler's return value cannot be sent: {message}")]
    BadReturn {
        /// What was wrong with it.
        message: String,
    },
    /// The response body is over [`Limits::max_response_bytes`].
    #[error("the response body is larger than the limit of {}; send less", size(*.limit))]
    ResponseTooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The engine itself failed (no thread, no runtime); not the script's fault.
    #[error("the script engine failed: {message}")]
    Internal {
        /// What failed.
        message: String,
    },
}

/// A byte count for messages: whole MiB or KiB when it is one, else bytes.
fn size(bytes: usize) -> String {
    const KIB: usize = 1024;
    const MIB: usize = 1024 * 1024;
    match bytes {
        0 => "0 bytes".to_owned(),
        b if b.is_multiple_of(MIB) => format!("{} MiB", b / MIB),
        b if b.is_multiple_of(KIB) => format!("{} KiB", b / KIB),
        b => format!("{b} bytes"),
    }
}

/// Sets a flag when dropped: tells the script thread its caller is gone.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs one request through a script, in a fresh QuickJS runtime on a
/// thread of its own, within `inv.limits`.
///
/// Must be called within a tokio runtime (its timers and I/O serve the
/// script's sleeps and host calls). Dropping the future stops the script
/// at its next interrupt check.
pub async fn run(inv: Invocation) -> Outcome {
    let started = Instant::now();
    let failed = |message: String| Outcome {
        result: Err(ScriptError::Internal { message }),
        logs: Vec::new(),
        duration: started.elapsed(),
    };
    let handle = match tokio::runtime::Handle::try_current() {
        Ok(handle) => handle,
        Err(e) => return failed(format!("run needs a tokio runtime: {e}")),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    let cancel_on_drop = CancelOnDrop(cancel.clone());
    let (tx, mut rx) = tokio::sync::oneshot::channel();
    let (head_tx, mut head_rx) = tokio::sync::oneshot::channel::<Outcome>();
    let spawned = std::thread::Builder::new()
        .name("cubby-script".to_owned())
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || handle.block_on(invoke::execute(inv, cancel, started, tx, head_tx)));
    if let Err(e) = spawned {
        return failed(format!("could not start a script thread: {e}"));
    }
    tokio::select! {
        // A streamed head is always sent before the final outcome: look at
        // it first, so a stream that already ended still gives its head.
        biased;
        head = &mut head_rx => match head {
            // A streamed answer: the run goes on while its stream is held.
            Ok(mut outcome) => {
                if let Ok(ScriptResponse { stream: Some(stream), .. }) = &mut outcome.result {
                    stream.run = Some(rx);
                    stream.cancel = Some(cancel_on_drop);
                }
                outcome
            }
            Err(_) => match rx.await {
                Ok(outcome) => outcome,
                Err(_) => failed("the script thread stopped without an answer".to_owned()),
            },
        },
        outcome = &mut rx => match (head_rx.try_recv(), outcome) {
            // The head came too, in the same poll: it is the answer (the
            // run is over; its stream ends with what it holds).
            (Ok(head), _) => head,
            (Err(_), Ok(outcome)) => outcome,
            (Err(_), Err(_)) => failed("the script thread stopped without an answer".to_owned()),
        },
    }
}

#[cfg(test)]
mod tests;
