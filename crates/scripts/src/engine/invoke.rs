//! One invocation, on its script thread: a fresh QuickJS runtime and context
//! with the memory limit, the interrupt handler (deadline and cancellation)
//! and the loader of the project's modules; the prelude; the module; the handler call
//! under an overall timeout; and the mapping of every failure to a
//! [`ScriptError`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use rquickjs::loader::{ImportAttributes, Loader, Resolver};
use rquickjs::module::{Declared, WriteOptions};
use rquickjs::{Array, AsyncContext, AsyncRuntime, Coerced, Ctx, Function, Module, Object, Promise, TypedArray, Value};
use tokio::sync::oneshot;

use super::console::LogBuffer;
use super::memory::LimitedAllocator;
use super::natives::{self, NativeState, pairs, with_bytes};
use super::prelude::{self, PreludeError};
use crate::modules::{ModuleCode, ModuleSource};

use super::{Invocation, JS_STACK_BYTES, Limits, Outcome, ScriptError, ScriptRequest, ScriptResponse};

/// Why the JavaScript side produced no response, before the limits that
/// explain it are known.
#[derive(Debug)]
enum Failure {
    /// A thrown value: error name (empty for non-errors), message, stack.
    Js {
        name: String,
        message: String,
        stack: Option<String>,
    },
    Syntax(String),
    OutOfMemory,
    NoHandler,
    BadReturn(String),
    TooLarge,
    Internal(String),
}

impl Failure {
    /// A failure while declaring the module is a syntax error.
    fn into_syntax(self) -> Self {
        match self {
            Failure::Js { name, message, stack } => {
                let place = stack
                    .as_deref()
                    .and_then(|s| s.lines().map(str::trim).find(|l| l.starts_with("at ")))
                    .map(|l| format!(" ({l})"))
                    .unwrap_or_default();
                Failure::Syntax(format!("{}{place}", joined(&name, &message)))
            }
            other => other,
        }
    }

    /// What QuickJS throws when an allocation fails: an `InternalError: out
    /// of memory`, or `null` when even that error could not be made. Only an
    /// out-of-memory failure if the allocator really refused something.
    fn looks_like_oom(&self) -> bool {
        match self {
            Failure::Js { name, message, .. } => {
                (name == "InternalError" && message == "out of memory") || (name.is_empty() && message == "null")
            }
            Failure::OutOfMemory => true,
            _ => false,
        }
    }

    fn into_error(self, limits: &Limits) -> ScriptError {
        match self {
            Failure::Js { name, message, stack } => ScriptError::Exception { message: joined(&name, &message), stack },
            Failure::OutOfMemory => ScriptError::OutOfMemory { limit: limits.memory_bytes },
            Failure::NoHandler => ScriptError::NoHandler,
            Failure::BadReturn(message) => ScriptError::BadReturn { message },
            Failure::TooLarge => ScriptError::ResponseTooLarge { limit: limits.max_response_bytes },
            Failure::Syntax(message) => ScriptError::Syntax { message },
            Failure::Internal(message) => ScriptError::Internal { message },
        }
    }
}

/// `Name: message`, or the message alone for thrown non-errors.
fn joined(name: &str, message: &str) -> String {
    if name.is_empty() { message.to_owned() } else { format!("{name}: {message}") }
}

/// Turns a QuickJS error into a [`Failure`], taking the pending exception.
fn caught(ctx: &Ctx<'_>, err: rquickjs::Error) -> Failure {
    match err {
        rquickjs::Error::Exception => thrown(ctx, ctx.catch()),
        rquickjs::Error::Allocation => Failure::OutOfMemory,
        other => Failure::Internal(other.to_string()),
    }
}

fn thrown<'js>(ctx: &Ctx<'js>, value: Value<'js>) -> Failure {
    if let Some(exception) = value.as_exception() {
        let name = exception.get::<_, Option<Coerced<String>>>("name").ok().flatten().map(|c| c.0).unwrap_or_default();
        let message = exception.message().unwrap_or_default();
        let stack = exception.stack().filter(|s| !s.trim().is_empty());
        return Failure::Js { name, message, stack };
    }
    let message = match value.as_string() {
        _ if value.is_null() => "null".to_owned(),
        Some(s) => s.to_string().unwrap_or_default(),
        None => ctx
            .json_stringify(value.clone())
            .ok()
            .flatten()
            .and_then(|s| s.to_string().ok())
            .or_else(|| value.get::<Coerced<String>>().ok().map(|c| c.0))
            .unwrap_or_else(|| "a value that cannot be shown".to_owned()),
    };
    Failure::Js { name: String::new(), message, stack: None }
}

/// Most modules one run may load (its own included).
const MAX_MODULES: usize = 512;

/// The modules of one run, found by the resolver and kept until the runtime
/// is gone (QuickJS may point into their bytecode: see [`declare`]).
type Found = Arc<Mutex<HashMap<String, Arc<ModuleCode>>>>;

/// Resolves and loads imports from the project's `scripts/`
/// ([`ModuleSource`]), each module from its bytecode once one run made it.
struct Imports {
    source: Arc<dyn ModuleSource>,
    found: Found,
}

fn found(found: &Found) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ModuleCode>>> {
    found.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Resolver for Imports {
    fn resolve<'js>(
        &mut self,
        _ctx: &Ctx<'js>,
        base: &str,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<String> {
        let refuse = |why: String| rquickjs::Error::new_resolving_message(base, name, why);
        let candidates = crate::modules::candidates(base, name).map_err(refuse)?;
        for path in &candidates {
            if found(&self.found).contains_key(path) {
                return Ok(path.clone());
            }
            match self.source.module(path) {
                Ok(Some(code)) => {
                    let mut all = found(&self.found);
                    if all.len() >= MAX_MODULES {
                        return Err(refuse(format!("a script may load at most {MAX_MODULES} modules")));
                    }
                    all.insert(path.clone(), code);
                    return Ok(path.clone());
                }
                Ok(None) => {}
                Err(why) => return Err(refuse(format!("{path}: {why}"))),
            }
        }
        Err(refuse(format!(
            "no such file in the project's scripts/ (tried {}); imported by {base}",
            candidates.join(", ")
        )))
    }
}

impl Loader for Imports {
    fn load<'js>(
        &mut self,
        ctx: &Ctx<'js>,
        name: &str,
        _attributes: Option<ImportAttributes<'js>>,
    ) -> rquickjs::Result<Module<'js, Declared>> {
        let code = found(&self.found).get(name).cloned();
        let Some(code) = code else {
            return Err(rquickjs::Error::new_loading_message(name, "it was not resolved first"));
        };
        declare(ctx, &code)
    }
}

/// Declares module `code` in `ctx`: from its bytecode when a run made it,
/// else compiled from its JavaScript (and its bytecode kept for the next
/// run). The caller keeps `code` alive until the runtime is dropped.
fn declare<'js>(ctx: &Ctx<'js>, code: &Arc<ModuleCode>) -> rquickjs::Result<Module<'js, Declared>> {
    if let Some(bytes) = code.bytecode() {
        // SAFETY: the bytes were written by `Module::write` of this same
        // QuickJS build, in this process, from this module's own source
        // (below), never read from outside. QuickJS-ng copies what it reads
        // (its ROM_DATA flag is obsolete), and the bytes live in `code`,
        // which the run holds until its runtime is dropped (`Found`,
        // `run_script`) in any case; kept bytecode is never changed.
        return unsafe { Module::load(ctx.clone(), bytes) };
    }
    let module = Module::declare(ctx.clone(), code.name(), code.js())?;
    if let Ok(bytes) = module.write(WriteOptions::default()) {
        code.keep_bytecode(bytes);
    }
    Ok(module)
}

/// Runs `inv` and sends its [`Outcome`] on `tx`, unless the caller goes away
/// first (then the run is abandoned and everything is freed).
pub(super) async fn execute(
    inv: Invocation,
    cancel: Arc<AtomicBool>,
    started: Instant,
    mut tx: oneshot::Sender<Outcome>,
    head: oneshot::Sender<Outcome>,
) {
    let logs = Rc::new(RefCell::new(LogBuffer::new(inv.limits.max_log_bytes)));
    let head = Head { sender: RefCell::new(Some(head)), started, held: Arc::default() };
    let result = tokio::select! {
        biased;
        result = run_script(&inv, &cancel, started, &logs, &head) => result,
        () = tx.closed() => {
            head.held.release();
            return;
        }
    };
    head.held.release();
    let logs = logs.borrow_mut().take();
    let outcome = Outcome { result, logs, duration: started.elapsed() };
    // The caller may have gone in the meantime; nothing to do then.
    let _ = tx.send(outcome);
}

/// Where a streamed answer's head goes, as soon as the handler returned it
/// (the caller then reads the chunks while the run goes on).
struct Head {
    sender: RefCell<Option<oneshot::Sender<Outcome>>>,
    started: Instant,
    /// What the caller holds while the script runs, let go when it ends.
    held: Arc<super::Held>,
}

/// Chunks of a streamed body waiting for the client, at most.
const STREAM_CHUNKS_IN_FLIGHT: usize = 4;

async fn run_script(
    inv: &Invocation,
    cancel: &Arc<AtomicBool>,
    started: Instant,
    logs: &Rc<RefCell<LogBuffer>>,
    head: &Head,
) -> Result<ScriptResponse, ScriptError> {
    let limits = inv.limits;
    // A timeout too large to add is as good as none (a year).
    let deadline = started
        .checked_add(limits.timeout)
        .or_else(|| started.checked_add(std::time::Duration::from_secs(365 * 86_400)))
        .unwrap_or(started);
    let setup = |e: rquickjs::Error| match e {
        rquickjs::Error::Allocation => ScriptError::OutOfMemory { limit: limits.memory_bytes },
        e => ScriptError::Internal { message: format!("could not set up QuickJS: {e}") },
    };

    // The allocator enforces the memory limit (not `set_memory_limit`), so
    // that it knows when it refused.
    let refused = Arc::new(AtomicBool::new(false));
    let allocator = LimitedAllocator::new(limits.memory_bytes, refused.clone());
    let rt = AsyncRuntime::new_with_alloc(allocator).map_err(setup)?;
    rt.set_max_stack_size(JS_STACK_BYTES).await;
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let cancelled = cancel.clone();
    rt.set_interrupt_handler(Some(Box::new(move || {
        let stop = cancelled.load(Ordering::Relaxed) || Instant::now() >= deadline;
        if stop {
            flag.store(true, Ordering::Relaxed);
        }
        stop
    })))
    .await;
    let modules: Found = Arc::default();
    found(&modules).insert(inv.module.name().to_owned(), Arc::clone(&inv.module));
    let imports = || Imports { source: Arc::clone(&inv.modules), found: Arc::clone(&modules) };
    rt.set_loader(imports(), imports()).await;
    let ctx = AsyncContext::full(&rt).await.map_err(setup)?;

    let state = Rc::new(NativeState {
        host: inv.host.clone(),
        logs: logs.clone(),
        deadline,
        room: crate::host::AnswerRoom::new(limits.memory_bytes),
        in_flight: Rc::default(),
    });
    let work = ctx.async_with(async |ctx| handle(ctx, inv, &state, head).await);
    let result = match tokio::time::timeout_at(deadline.into(), work).await {
        Err(_elapsed) => Err(ScriptError::Timeout { limit: limits.timeout }),
        Ok(Ok(response)) => Ok(response),
        Ok(Err(_)) if interrupted.load(Ordering::Relaxed) => Err(ScriptError::Timeout { limit: limits.timeout }),
        Ok(Err(failure)) if failure.looks_like_oom() && refused.load(Ordering::Relaxed) => {
            Err(ScriptError::OutOfMemory { limit: limits.memory_bytes })
        }
        Ok(Err(failure)) => Err(failure.into_error(&limits)),
    };
    // Every JavaScript value is gone with `work`; the context goes before
    // its runtime.
    drop(ctx);
    drop(rt);
    // Only now may the modules' bytecode go.
    drop(modules);
    result
}

/// Inside the context: prelude, module, handler, response.
async fn handle<'js>(
    ctx: Ctx<'js>,
    inv: &Invocation,
    state: &Rc<NativeState>,
    head: &Head,
) -> Result<ScriptResponse, Failure> {
    let fail = |e| caught(&ctx, e);
    let native = natives::install(&ctx, state).map_err(fail)?;
    let internals = prelude::load(&ctx, &native).map_err(|e| match e {
        PreludeError::Compile(message) => Failure::Internal(message),
        PreludeError::Js(e) => caught(&ctx, e),
    })?;

    let declared = declare(&ctx, &inv.module).map_err(|e| caught(&ctx, e).into_syntax())?;
    let (module, evaluated) = declared.eval().map_err(fail)?;
    evaluated.into_future::<Value>().await.map_err(fail)?;
    let handler: Value = module.namespace().and_then(|ns| ns.get("default")).map_err(fail)?;
    if !handler.is_function() {
        return Err(Failure::NoHandler);
    }

    let request = make_request(&ctx, &internals, &inv.request).map_err(fail)?;
    let context = make_context(&ctx, &internals, inv).map_err(fail)?;
    let invoke: Function = internals.get("invoke").map_err(fail)?;
    let promise: Promise = invoke.call((handler, request, context)).map_err(fail)?;
    let answer: Array = promise.into_future().await.map_err(fail)?;
    if answer.len() == 4 {
        return stream(&ctx, &answer, inv.limits.max_response_bytes, state, head).await;
    }
    to_response(&ctx, &answer, inv.limits.max_response_bytes)
}

/// A streamed answer `[status, flatHeaders, null, next]`: the head goes to
/// the caller at once, then each chunk `next()` gives, until it answers
/// `null`, the client goes away, or the body passes `max_body` bytes.
async fn stream<'js>(
    ctx: &Ctx<'js>,
    answer: &Array<'js>,
    max_body: usize,
    state: &Rc<NativeState>,
    head: &Head,
) -> Result<ScriptResponse, Failure> {
    let fail = |e| caught(ctx, e);
    let status: i32 = answer.get(0).map_err(fail)?;
    let status = u16::try_from(status)
        .ok()
        .filter(|s| (200..=999).contains(s))
        .ok_or_else(|| Failure::BadReturn(format!("status {status} is not a response status (200 to 999)")))?;
    let flat: Vec<String> = answer.get(1).map_err(fail)?;
    let next: Function = answer.get(3).map_err(fail)?;
    let (chunks, receiver) = tokio::sync::mpsc::channel(STREAM_CHUNKS_IN_FLIGHT);
    let response = ScriptResponse {
        status,
        headers: pairs(flat),
        body: Bytes::new(),
        stream: Some(super::BodyStream::new(receiver, Arc::clone(&head.held))),
    };
    let Some(sender) = head.sender.borrow_mut().take() else {
        return Err(Failure::Internal("a second streamed answer".into()));
    };
    let logs = state.logs.borrow_mut().take();
    if sender.send(Outcome { result: Ok(response), logs, duration: head.started.elapsed() }).is_err() {
        return Err(Failure::Internal("the caller went away".into()));
    }
    let mut sent = 0usize;
    loop {
        let promise: Promise = next.call(()).map_err(fail)?;
        let chunk: Value = promise.into_future().await.map_err(fail)?;
        if chunk.is_null() || chunk.is_undefined() {
            break;
        }
        let bytes = TypedArray::<u8>::from_value(chunk).map_err(fail)?;
        let bytes = with_bytes(&bytes, Bytes::copy_from_slice);
        sent += bytes.len();
        if sent > max_body {
            return Err(Failure::TooLarge);
        }
        if chunks.send(bytes).await.is_err() {
            // The client is gone: nothing more to do.
            break;
        }
    }
    Ok(ScriptResponse { status, headers: Vec::new(), body: Bytes::new(), stream: None })
}

fn make_request<'js>(ctx: &Ctx<'js>, internals: &Object<'js>, request: &ScriptRequest) -> rquickjs::Result<Value<'js>> {
    let make: Function = internals.get("makeRequest")?;
    let flat: Vec<&str> = request.headers.iter().flat_map(|(name, value)| [name.as_str(), value.as_str()]).collect();
    let body = TypedArray::<u8>::new(ctx.clone(), request.body.to_vec())?;
    make.call((request.method.as_str(), request.url.as_str(), flat, body))
}

fn make_context<'js>(ctx: &Ctx<'js>, internals: &Object<'js>, inv: &Invocation) -> rquickjs::Result<Value<'js>> {
    let object = |map: &std::collections::BTreeMap<String, String>| {
        let out = Object::new(ctx.clone())?;
        for (key, value) in map {
            out.set(key.as_str(), value.as_str())?;
        }
        rquickjs::Result::Ok(out)
    };
    let make: Function = internals.get("makeContext")?;
    make.call((object(&inv.params)?, object(&inv.env)?, inv.project.as_str()))
}

/// `[status, flatHeaders, body]` (or `[0, message]`) from `internals.invoke`.
///
/// The prelude builds it, but from objects the script can tamper with (a
/// `Response` subclass, a patched built-in), so anything unexpected is the
/// script's bad return, not an engine failure.
fn to_response(ctx: &Ctx<'_>, answer: &Array<'_>, max_body: usize) -> Result<ScriptResponse, Failure> {
    let unreadable = |e: rquickjs::Error| match caught(ctx, e) {
        Failure::Internal(message) => Failure::BadReturn(format!("the response could not be read: {message}")),
        other => other,
    };
    let status: i32 = answer.get(0).map_err(unreadable)?;
    if status == 0 {
        let message: String = answer.get(1).map_err(unreadable)?;
        return Err(Failure::BadReturn(message));
    }
    let status = u16::try_from(status)
        .ok()
        .filter(|s| (200..=999).contains(s))
        .ok_or_else(|| Failure::BadReturn(format!("status {status} is not a response status (200 to 999)")))?;
    let flat: Vec<String> = answer.get(1).map_err(unreadable)?;
    let body: TypedArray<u8> = answer.get(2).map_err(unreadable)?;
    if body.len() > max_body {
        return Err(Failure::TooLarge);
    }
    Ok(ScriptResponse { status, headers: pairs(flat), body: with_bytes(&body, Bytes::copy_from_slice), stream: None })
}
