//! Answering one request to `http://{project}.exec.{domain}/{path}`, in two
//! steps so nothing is spent on a request that will not run:
//! - [`ScriptService::admit`], from the request's head alone: find the
//!   project and the file, check `@token` (before any JavaScript context
//!   exists), recognise CORS preflights, and take a run slot: the
//!   project's own (a bounded queue behind it, then busy), the script's if
//!   it is `@concurrent false`, and one of the daemon's;
//! - [`AdmittedScript::run`], with the body (read by the caller under the
//!   cap the admission gives): run the handler with the project's secrets
//!   and a client scoped to the project; [`ScriptRun::finish`] logs the
//!   invocation with the status the caller answered.
//!
//! Nothing here speaks HTTP: refusals and failures are typed
//! ([`ScriptRefusal`], [`ScriptFailure`]); the caller picks statuses,
//! writes the error envelope and the CORS headers.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cubby_model::{Event, EventType, Project, ProjectId, ScriptInvocation, ScriptLogLine};
use cubby_scripts::{Invocation, ScriptError, ScriptHost, ScriptRequest, ScriptResponse};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use super::ScriptService;
use super::{Compiled, LOG_KEEP, routing};
use crate::Caller;

/// Most scripts running at once on this daemon; more wait for a slot.
pub const MAX_RUNNING: usize = 64;
/// Equal secrets, compared in time that does not depend on where they differ.
fn same_secret(a: &str, b: &str) -> bool {
    let (x, y) = (Sha256::digest(a.as_bytes()), Sha256::digest(b.as_bytes()));
    x.iter().zip(y.iter()).fold(0u8, |acc, (p, q)| acc | (p ^ q)) == 0
}

/// The path of a URL (`http://h/a/b?x` → `/a/b`).
fn url_path(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.find('/').map_or("/", |i| &rest[i..]);
    path.split(['?', '#']).next().unwrap_or("/")
}

/// A request to a script, without its body.
#[derive(Debug, Clone)]
pub struct ScriptHead {
    pub method: String,
    /// The full URL as the client asked for it.
    pub url: String,
    pub headers: Vec<(String, String)>,
    /// The token the client presented for `@token` scripts, if any.
    pub token: Option<String>,
}

/// Why a script request does not run. Its `Display` is the message for
/// the client.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptRefusal {
    #[error("no project is named `{project}`: exec URLs are http://<project>.exec.<domain>/<path>")]
    ProjectNotFound { project: String },
    #[error("no script answers `{path}`: each file in the project's scripts/ folder is a route")]
    ScriptNotFound { path: String },
    #[error("`{file}` cannot run: {message}")]
    ScriptInvalid { file: String, message: String },
    #[error("this script wants its token: send `Authorization: Bearer <token>` or `X-Cubby-Token: <token>`")]
    TokenRequired,
    #[error("{0}")]
    Busy(Busy),
    /// The daemon failed to read its own state (logged).
    #[error("the daemon could not read {what}")]
    Unavailable { what: &'static str },
}

/// Why no run slot was free: the client should retry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Busy {
    #[error("this project's scripts are all running and its queue is full: retry shortly")]
    QueueFull,
    #[error("this project's scripts stayed busy: retry shortly")]
    StayedBusy,
    #[error("an earlier request to this script is still running")]
    Serial,
    #[error("the daemon is shutting down")]
    ShuttingDown,
}

/// Why an admitted script gave no answer of its own. Its `Display` is the
/// message for the client (an exception's text is only in the logs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptFailure {
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    OutOfMemory(String),
    #[error("the script threw an exception: its owner can read it in the project's script logs")]
    Exception,
    #[error("{0}")]
    ResponseTooLarge(String),
    #[error("{0}")]
    Invalid(String),
    /// The daemon failed to read its own state (logged).
    #[error("the daemon could not read {what}")]
    Unavailable { what: &'static str },
}

/// What admission decided.
#[derive(Debug)]
pub enum ScriptAdmission {
    /// Read the body (under [`AdmittedScript::max_body`]) and run.
    Run(Box<AdmittedScript>),
    /// A CORS preflight to a script that allows `origin`.
    Preflight { origin: String },
    /// Not run; `cors` is the script's allowed origin when it has one.
    Refused { refusal: ScriptRefusal, cors: Option<String> },
}

/// A finished run, not yet logged.
#[derive(Debug)]
pub struct ScriptRun {
    /// The script's own answer, or why there is none.
    pub result: Result<ScriptResponse, ScriptFailure>,
    service: Arc<ScriptService>,
    project: ProjectId,
    entry: ScriptInvocation,
    /// Started by an event (`@on`): its failure starts no script again.
    on_event: bool,
}

impl ScriptRun {
    /// Logs the invocation with the status the client got.
    pub fn finish(mut self, status: u16) -> Result<ScriptResponse, ScriptFailure> {
        self.entry.status = status;
        if let Err(e) = self.service.store.append_script_log(&self.project, &self.entry, LOG_KEEP) {
            tracing::warn!(project = %self.project, error = %e, "could not record a script invocation");
        }
        tracing::debug!(project = %self.project, script = %self.entry.script, status, ms = self.entry.duration_ms, "script ran");
        if let Err(failure) = &self.result {
            // A run an event started fails as its script: were it to start
            // `@on script.failed` scripts again, a failing one would loop.
            let by = self.on_event.then(|| Caller::project(self.project.clone()).by_script(&self.entry.script, true));
            self.service.events.emit(crate::events::Happened {
                kind: cubby_model::EventType::ScriptFailed,
                project: &self.project,
                container: None,
                trigger: None,
                caller: by.as_ref(),
                data: serde_json::json!({ "path": self.entry.script, "status": status, "reason": failure.to_string() }),
            });
        }
        self.result
    }
}

/// How many scripts of one project run and wait.
#[derive(Debug)]
pub(crate) struct ProjectSlots {
    running: Arc<Semaphore>,
    waiting: AtomicUsize,
}

impl ProjectSlots {
    pub(crate) fn new(concurrency: usize) -> Self {
        Self { running: Arc::new(Semaphore::new(concurrency.max(1))), waiting: AtomicUsize::new(0) }
    }
}

/// Counts a waiter while it waits.
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A request admitted to run: its script, its slots, and what it needs.
#[derive(Debug)]
pub struct AdmittedScript {
    service: Arc<ScriptService>,
    project: Project,
    file: String,
    compiled: Arc<Compiled>,
    params: BTreeMap<String, String>,
    head: ScriptHead,
    timeout: Duration,
    started: Instant,
    /// Started by one of the project's events (`@on`), not a request.
    on_event: bool,
    _project_slot: OwnedSemaphorePermit,
    _serial: Option<OwnedMutexGuard<()>>,
    _daemon_slot: OwnedSemaphorePermit,
}

/// The script a run is for, found but not yet given its slots.
struct Found {
    project: Project,
    file: String,
    full: std::path::PathBuf,
    compiled: Arc<Compiled>,
    params: BTreeMap<String, String>,
    on_event: bool,
}

impl ScriptService {
    /// Finds the script a request goes to and takes its run slots; or why
    /// it does not run (no such project or script, a missing token, a
    /// preflight, too busy). Reads no body.
    pub async fn admit(self: &Arc<Self>, project_name: &str, head: ScriptHead) -> ScriptAdmission {
        let refused = |refusal| ScriptAdmission::Refused { refusal, cors: None };
        let started = Instant::now();
        let project = match self.store.projects() {
            Ok(all) => match all.into_iter().find(|p| p.name == project_name) {
                Some(p) => p,
                None => return refused(ScriptRefusal::ProjectNotFound { project: project_name.to_string() }),
            },
            Err(e) => {
                tracing::error!(error = %e, "reading projects for a script request");
                return refused(ScriptRefusal::Unavailable { what: "its state" });
            }
        };
        let path = url_path(&head.url).to_string();
        let routes = match self.script_routes(&project.id) {
            Ok(routes) => routes,
            Err(e) => {
                tracing::error!(project = %project.id, error = %e, "listing scripts");
                return refused(ScriptRefusal::Unavailable { what: "the project's scripts" });
            }
        };
        let Some((route, params)) = routing::find(&routes, &path) else {
            return refused(ScriptRefusal::ScriptNotFound { path });
        };
        let file = route.file.clone();
        let full = self.scripts_dir(&project.id).join(&file);
        let compiled = match self.compiled(&file, &full) {
            Ok(c) => c,
            Err(e) => {
                let message = match &e {
                    crate::Error::Invalid(v) => v.message.clone(),
                    other => other.to_string(),
                };
                return refused(ScriptRefusal::ScriptInvalid { file, message });
            }
        };
        let cors = compiled.magic.cors.clone();
        let refused = |refusal| ScriptAdmission::Refused { refusal, cors: cors.clone() };
        if let Some(origin) = &cors
            && head.method.eq_ignore_ascii_case("OPTIONS")
        {
            return ScriptAdmission::Preflight { origin: origin.clone() };
        }
        if let Some(token) = &compiled.magic.token
            && !head.token.as_deref().is_some_and(|p| same_secret(p.trim(), token))
        {
            return refused(ScriptRefusal::TokenRequired);
        }
        let found = Found { project, file, full, compiled, params, on_event: false };
        self.take_slots(found, head, started).await
    }

    /// The project's scripts that subscribe (`@on`) to events of `kind`,
    /// by file. A file that does not compile subscribes to nothing.
    pub fn subscribers(&self, project: &ProjectId, kind: EventType) -> Vec<String> {
        let Ok(routes) = self.script_routes(project) else { return Vec::new() };
        let dir = self.scripts_dir(project);
        routes
            .iter()
            .filter(|route| {
                self.compiled(&route.file, &dir.join(&route.file))
                    .is_ok_and(|c| c.magic.on.iter().any(|t| t == kind.as_str()))
            })
            .map(|route| route.file.clone())
            .collect()
    }

    /// Admits a run of the script `file` for `event` (of its project): a
    /// `POST` of the event as JSON to the script's own path, with
    /// `Cubby-Event-Type` and `Cubby-Event-Id` headers. `@token` and
    /// `@cors` do not apply: no client sent it. It waits for run slots like
    /// a request.
    pub async fn admit_event(self: &Arc<Self>, event: &Event, file: &str) -> ScriptAdmission {
        let refused = |refusal| ScriptAdmission::Refused { refusal, cors: None };
        let started = Instant::now();
        let Some(project_id) = &event.project_id else {
            return refused(ScriptRefusal::ScriptNotFound { path: file.to_string() });
        };
        let project = match self.store.project(project_id) {
            Ok(Some(p)) => p,
            Ok(None) => return refused(ScriptRefusal::ProjectNotFound { project: project_id.to_string() }),
            Err(e) => {
                tracing::error!(project = %project_id, error = %e, "reading a project for an event script");
                return refused(ScriptRefusal::Unavailable { what: "its state" });
            }
        };
        let full = self.scripts_dir(&project.id).join(file);
        let compiled = match self.compiled(file, &full) {
            Ok(c) => c,
            Err(e) => return refused(ScriptRefusal::ScriptInvalid { file: file.to_string(), message: e.to_string() }),
        };
        let head = ScriptHead {
            method: "POST".into(),
            url: format!("{}{}", self.exec_base_url(&project.name), routing::Route::of(file).pattern()),
            headers: vec![
                ("content-type".into(), "application/json".into()),
                ("cubby-event-type".into(), event.kind.as_str().into()),
                ("cubby-event-id".into(), event.id.to_string()),
            ],
            token: None,
        };
        let found = Found { project, file: file.to_string(), full, compiled, params: BTreeMap::new(), on_event: true };
        self.take_slots(found, head, started).await
    }

    /// Takes a run's slots: its project's (behind a bounded queue), its
    /// script's if `@concurrent false`, and one of the daemon's.
    async fn take_slots(self: &Arc<Self>, found: Found, head: ScriptHead, started: Instant) -> ScriptAdmission {
        let Found { project, file, full, compiled, params, on_event } = found;
        let cors = compiled.magic.cors.clone();
        let refused = |refusal| ScriptAdmission::Refused { refusal, cors: cors.clone() };
        let timeout = compiled.magic.timeout.unwrap_or(self.defaults.script_timeout);

        // The project's own slot, behind a bounded queue: one project's
        // burst waits for its own runs, never for another project's.
        let slots = self.project_slots(&project.id);
        let project_slot = match Arc::clone(&slots.running).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if slots.waiting.fetch_add(1, Ordering::Relaxed) >= self.defaults.script_queue {
                    slots.waiting.fetch_sub(1, Ordering::Relaxed);
                    return refused(ScriptRefusal::Busy(Busy::QueueFull));
                }
                let _waiting = Waiting(&slots.waiting);
                match tokio::time::timeout(timeout, Arc::clone(&slots.running).acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    _ => return refused(ScriptRefusal::Busy(Busy::StayedBusy)),
                }
            }
        };
        let serial = match (!compiled.magic.concurrent).then(|| self.serial_lock(&full)) {
            Some(lock) => match tokio::time::timeout(timeout, lock.lock_owned()).await {
                Ok(guard) => Some(guard),
                Err(_) => return refused(ScriptRefusal::Busy(Busy::Serial)),
            },
            None => None,
        };
        let Ok(daemon_slot) = Arc::clone(&self.slots).acquire_owned().await else {
            return ScriptAdmission::Refused { refusal: ScriptRefusal::Busy(Busy::ShuttingDown), cors: None };
        };
        ScriptAdmission::Run(Box::new(AdmittedScript {
            service: Arc::clone(self),
            project,
            file,
            compiled,
            params,
            head,
            timeout,
            started,
            on_event,
            _project_slot: project_slot,
            _serial: serial,
            _daemon_slot: daemon_slot,
        }))
    }

    /// The run slots of one project (made at its first request).
    fn project_slots(&self, project: &ProjectId) -> Arc<ProjectSlots> {
        let concurrency = self.defaults.script_concurrency;
        Arc::clone(
            super::lock(&self.state.slots)
                .entry(project.clone())
                .or_insert_with(|| Arc::new(ProjectSlots::new(concurrency))),
        )
    }
}

impl AdmittedScript {
    /// The largest body this request may carry.
    pub fn max_body(&self) -> u64 {
        self.service.defaults.script_max_body.0
    }

    /// The project the script belongs to.
    pub fn project(&self) -> &ProjectId {
        &self.project.id
    }

    /// The script's file in its project's `scripts/`.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// Whether one of the project's events started this run (`@on`).
    pub fn on_event(&self) -> bool {
        self.on_event
    }

    /// The origin the script allows (`@cors`), if any.
    pub fn cors(&self) -> Option<&str> {
        self.compiled.magic.cors.as_deref()
    }

    /// Runs the handler on the request with `body`. `host` gives the
    /// script its `ctx.cubby` (scoped to the project by the caller) and
    /// `fetch`. The caller answers, then [`ScriptRun::finish`]es.
    pub async fn run(self, body: Bytes, host: Arc<dyn ScriptHost>) -> ScriptRun {
        let service = Arc::clone(&self.service);
        let project = self.project.id.clone();
        let on_event = self.on_event;
        let path = url_path(&self.head.url).to_string();
        let method = self.head.method.clone();
        let mut entry = ScriptInvocation {
            at: cubby_model::now(),
            script: self.file.clone(),
            method,
            path,
            status: 0,
            duration_ms: 0,
            error: None,
            logs: Vec::new(),
        };
        let env = match service.open_secrets(&project) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(project = %project, error = %e.chain(), "reading secrets");
                let result = Err(ScriptFailure::Unavailable { what: "the project's secrets" });
                return ScriptRun { result, service, project, entry, on_event };
            }
        };
        let invocation = Invocation {
            module: Arc::clone(&self.compiled.code),
            modules: Arc::new(super::ProjectModules {
                service: Arc::clone(&service),
                dir: service.scripts_dir(&project),
            }),
            request: ScriptRequest { method: self.head.method, url: self.head.url, headers: self.head.headers, body },
            params: self.params,
            env,
            project: project.to_string(),
            limits: cubby_scripts::Limits {
                memory_bytes: usize::try_from(service.defaults.script_memory.0).unwrap_or(usize::MAX),
                timeout: self.timeout,
                ..cubby_scripts::Limits::default()
            },
            host,
        };
        let slots = (self._project_slot, self._serial, self._daemon_slot);
        let outcome = cubby_scripts::run(invocation).await;
        // A streaming script runs on after its head: it keeps its slots
        // (project, serial, daemon) until the script ends (not until a
        // client has read it all).
        if let Ok(ScriptResponse { stream: Some(stream), .. }) = &outcome.result {
            stream.hold(Box::new(slots));
        }
        let result = outcome.result.map_err(|e| {
            entry.error = Some(match &e {
                ScriptError::Exception { message, stack } => {
                    format!("{message}{}", stack.as_deref().map(|s| format!("\n{s}")).unwrap_or_default())
                }
                other => other.to_string(),
            });
            match e {
                ScriptError::Timeout { .. } => ScriptFailure::Timeout(e.to_string()),
                ScriptError::OutOfMemory { .. } => ScriptFailure::OutOfMemory(e.to_string()),
                ScriptError::Exception { .. } => ScriptFailure::Exception,
                ScriptError::ResponseTooLarge { .. } => ScriptFailure::ResponseTooLarge(e.to_string()),
                other => ScriptFailure::Invalid(other.to_string()),
            }
        });
        entry.duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        entry.logs = outcome.logs.into_iter().map(|l| ScriptLogLine { level: l.level, message: l.message }).collect();
        ScriptRun { result, service, project, entry, on_event }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_secrets() {
        assert_eq!(url_path("http://acme.exec.localhost:8080/a/b?x=1"), "/a/b");
        assert_eq!(url_path("http://acme.exec.localhost"), "/");
        assert!(same_secret("abc", "abc") && !same_secret("abc", "abd") && !same_secret("abc", "abcd"));
    }
}
