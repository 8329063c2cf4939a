//! Answering one request to `http://{project}.exec.{domain}/{path}`, in two
//! steps so nothing is spent on a request that will not run:
//! - [`Platform::admit_script`], from the request's head alone: find the
//!   project and the file, check `@token` (before any JavaScript context
//!   exists), answer CORS preflights, and take a run slot: the project's
//!   own (a bounded queue behind it, then 503), the script's if it is
//!   `@concurrent false`, and one of the daemon's;
//! - [`AdmittedScript::run`], with the body (read by the caller under the
//!   cap the admission gives): run the handler with the project's secrets
//!   and a client scoped to the project, and log the invocation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cubby_model::{Project, ProjectId, ScriptInvocation, ScriptLogLine};
use cubby_scripts::{Invocation, ScriptError, ScriptHost, ScriptRequest, ScriptResponse};
use sha2::{Digest, Sha256};
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

use super::{Compiled, LOG_KEEP, routing};
use crate::Platform;

/// Most scripts running at once on this daemon; more wait for a slot.
pub const MAX_RUNNING: usize = 64;
/// Seconds a client told "busy" is asked to wait before retrying.
const RETRY_AFTER_SECONDS: u32 = 1;

fn json_error(status: u16, code: &str, message: &str) -> ScriptResponse {
    ScriptResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: Bytes::from(serde_json::json!({"error": {"code": code, "message": message}}).to_string()),
    }
}

fn busy(message: &str) -> ScriptResponse {
    let mut resp = json_error(503, "script_busy", message);
    resp.headers.push(("retry-after".into(), RETRY_AFTER_SECONDS.to_string()));
    resp
}

fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

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

fn cors_headers(origin: &str, resp: &mut ScriptResponse) {
    resp.headers.retain(|(k, _)| !k.eq_ignore_ascii_case("access-control-allow-origin"));
    resp.headers.push(("access-control-allow-origin".into(), origin.to_string()));
    if origin != "*" {
        resp.headers.push(("vary".into(), "Origin".into()));
    }
}

/// A request to a script, without its body.
#[derive(Debug, Clone)]
pub struct ScriptHead {
    pub method: String,
    /// The full URL as the client asked for it.
    pub url: String,
    pub headers: Vec<(String, String)>,
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
    platform: Arc<Platform>,
    project: Project,
    file: String,
    compiled: Arc<Compiled>,
    params: BTreeMap<String, String>,
    head: ScriptHead,
    timeout: Duration,
    started: Instant,
    _project_slot: OwnedSemaphorePermit,
    _serial: Option<OwnedMutexGuard<()>>,
    _daemon_slot: OwnedSemaphorePermit,
}

impl Platform {
    /// Finds the script a request goes to and takes its run slots; or the
    /// answer to give instead (no such project or script, a missing token,
    /// a preflight, too busy). Reads no body.
    pub async fn admit_script(
        self: &Arc<Self>,
        project_name: &str,
        head: ScriptHead,
    ) -> Result<AdmittedScript, ScriptResponse> {
        let started = Instant::now();
        let project = match self.store.projects() {
            Ok(all) => all.into_iter().find(|p| p.name == project_name).ok_or_else(|| {
                json_error(
                    404,
                    "project_not_found",
                    &format!(
                        "no project is named `{project_name}`: exec URLs are http://<project>.exec.<domain>/<path>"
                    ),
                )
            })?,
            Err(e) => {
                tracing::error!(error = %e, "reading projects for a script request");
                return Err(json_error(500, "internal", "the daemon could not read its state"));
            }
        };
        let path = url_path(&head.url).to_string();
        let routes = self.script_routes(&project.id).map_err(|e| {
            tracing::error!(project = %project.id, error = %e, "listing scripts");
            json_error(500, "internal", "the daemon could not read the project's scripts")
        })?;
        let Some((route, params)) = routing::find(&routes, &path) else {
            return Err(json_error(
                404,
                "script_not_found",
                &format!("no script answers `{path}`: each file in the project's scripts/ folder is a route"),
            ));
        };
        let file = route.file.clone();
        let full = self.scripts_dir(&project.id).join(&file);
        let compiled = self.compiled(&file, &full).map_err(|e| {
            let message = match &e {
                crate::Error::Invalid(v) => v.message.clone(),
                other => other.to_string(),
            };
            json_error(500, "script_invalid", &format!("`{file}` cannot run: {message}"))
        })?;
        let magic = &compiled.magic;
        let with_cors = |mut resp: ScriptResponse| {
            if let Some(origin) = &magic.cors {
                cors_headers(origin, &mut resp);
            }
            resp
        };
        if let Some(origin) = &magic.cors
            && head.method.eq_ignore_ascii_case("OPTIONS")
        {
            let mut resp = ScriptResponse { status: 204, headers: Vec::new(), body: Bytes::new() };
            cors_headers(origin, &mut resp);
            resp.headers.push(("access-control-allow-methods".into(), "GET, POST, PUT, PATCH, DELETE, OPTIONS".into()));
            let asked =
                header(&head.headers, "access-control-request-headers").unwrap_or("content-type, authorization");
            resp.headers.push(("access-control-allow-headers".into(), asked.to_string()));
            resp.headers.push(("access-control-max-age".into(), "600".into()));
            return Err(resp);
        }
        if let Some(token) = &magic.token {
            let presented = header(&head.headers, "authorization")
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .or_else(|| header(&head.headers, "x-cubby-token"));
            if !presented.is_some_and(|p| same_secret(p.trim(), token)) {
                return Err(with_cors(json_error(
                    401,
                    "script_token_required",
                    "this script wants its token: send `Authorization: Bearer <token>` or `X-Cubby-Token: <token>`",
                )));
            }
        }
        let timeout = magic.timeout.unwrap_or(self.config.defaults.script_timeout);

        // The project's own slot, behind a bounded queue: one project's
        // burst waits for its own runs, never for another project's.
        let slots = self.project_slots(&project.id);
        let project_slot = match Arc::clone(&slots.running).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                if slots.waiting.fetch_add(1, Ordering::Relaxed) >= self.config.defaults.script_queue {
                    slots.waiting.fetch_sub(1, Ordering::Relaxed);
                    return Err(with_cors(busy(
                        "this project's scripts are all running and its queue is full: retry shortly",
                    )));
                }
                let _waiting = Waiting(&slots.waiting);
                match tokio::time::timeout(timeout, Arc::clone(&slots.running).acquire_owned()).await {
                    Ok(Ok(permit)) => permit,
                    _ => return Err(with_cors(busy("this project's scripts stayed busy: retry shortly"))),
                }
            }
        };
        let serial = match (!magic.concurrent).then(|| self.serial_lock(&full)) {
            Some(lock) => match tokio::time::timeout(timeout, lock.lock_owned()).await {
                Ok(guard) => Some(guard),
                Err(_) => return Err(with_cors(busy("an earlier request to this script is still running"))),
            },
            None => None,
        };
        let Ok(daemon_slot) = Arc::clone(&self.script_slots).acquire_owned().await else {
            return Err(busy("the daemon is shutting down"));
        };
        Ok(AdmittedScript {
            platform: Arc::clone(self),
            project,
            file,
            compiled,
            params,
            head,
            timeout,
            started,
            _project_slot: project_slot,
            _serial: serial,
            _daemon_slot: daemon_slot,
        })
    }

    /// The run slots of one project (made at its first request).
    fn project_slots(&self, project: &ProjectId) -> Arc<ProjectSlots> {
        let concurrency = self.config.defaults.script_concurrency;
        Arc::clone(
            super::lock(&self.scripts.slots)
                .entry(project.clone())
                .or_insert_with(|| Arc::new(ProjectSlots::new(concurrency))),
        )
    }
}

impl AdmittedScript {
    /// The largest body this request may carry.
    pub fn max_body(&self) -> u64 {
        self.platform.config.defaults.script_max_body.0
    }

    /// The project the script belongs to.
    pub fn project(&self) -> &ProjectId {
        &self.project.id
    }

    /// Runs the handler on the request with `body`. `host` gives the
    /// script its `ctx.cubby` (scoped to the project by the caller) and
    /// `fetch`.
    pub async fn run(self, body: Bytes, host: Arc<dyn ScriptHost>) -> ScriptResponse {
        let platform = &self.platform;
        let project = &self.project;
        let path = url_path(&self.head.url).to_string();
        let env = match platform.open_secrets(&project.id) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(project = %project.id, error = %e.chain(), "reading secrets");
                return json_error(500, "internal", "the daemon could not read the project's secrets");
            }
        };
        let method = self.head.method.clone();
        let invocation = Invocation {
            module_name: self.file.clone(),
            source: self.compiled.js.clone(),
            request: ScriptRequest { method: self.head.method, url: self.head.url, headers: self.head.headers, body },
            params: self.params,
            env,
            project: project.id.to_string(),
            limits: cubby_scripts::Limits {
                memory_bytes: usize::try_from(platform.config.defaults.script_memory.0).unwrap_or(usize::MAX),
                timeout: self.timeout,
                ..cubby_scripts::Limits::default()
            },
            host,
        };
        let outcome = cubby_scripts::run(invocation).await;
        let (mut resp, error) = match outcome.result {
            Ok(resp) => (resp, None),
            Err(e) => {
                let (status, code, public) = match &e {
                    ScriptError::Timeout { .. } => (504, "script_timeout", e.to_string()),
                    ScriptError::OutOfMemory { .. } => (500, "script_out_of_memory", e.to_string()),
                    ScriptError::Exception { .. } => (
                        500,
                        "script_error",
                        "the script threw an exception: its owner can read it in the project's script logs".into(),
                    ),
                    ScriptError::ResponseTooLarge { .. } => (500, "script_response_too_large", e.to_string()),
                    _ => (500, "script_invalid", e.to_string()),
                };
                let detail = match &e {
                    ScriptError::Exception { message, stack } => {
                        format!("{message}{}", stack.as_deref().map(|s| format!("\n{s}")).unwrap_or_default())
                    }
                    other => other.to_string(),
                };
                (json_error(status, code, &public), Some(detail))
            }
        };
        if let Some(origin) = &self.compiled.magic.cors {
            cors_headers(origin, &mut resp);
        }
        let entry = ScriptInvocation {
            at: cubby_model::now(),
            script: self.file,
            method,
            path,
            status: resp.status,
            duration_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            error,
            logs: outcome.logs.into_iter().map(|l| ScriptLogLine { level: l.level, message: l.message }).collect(),
        };
        if let Err(e) = platform.store.append_script_log(&project.id, &entry, LOG_KEEP) {
            tracing::warn!(project = %project.id, error = %e, "could not record a script invocation");
        }
        tracing::debug!(project = %project.id, script = %entry.script, status = entry.status, ms = entry.duration_ms, "script ran");
        resp
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
