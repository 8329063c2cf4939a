//! Answering one request to `http://{project}.exec.{domain}/{path}`: find
//! the file, check `@token` (before any JavaScript context exists), answer
//! CORS preflights, serialise `@concurrent false` scripts, run the handler
//! with the project's secrets and a client scoped to the project, and log
//! the invocation.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use cubby_model::{ScriptInvocation, ScriptLogLine};
use cubby_scripts::{Invocation, ScriptError, ScriptHost, ScriptRequest, ScriptResponse};
use sha2::{Digest, Sha256};

use super::{LOG_KEEP, routing};
use crate::Platform;

/// Most scripts running at once on this daemon; more wait for a slot.
pub const MAX_RUNNING: usize = 64;

fn json_error(status: u16, code: &str, message: &str) -> ScriptResponse {
    ScriptResponse {
        status,
        headers: vec![("content-type".into(), "application/json".into())],
        body: Bytes::from(serde_json::json!({"error": {"code": code, "message": message}}).to_string()),
    }
}

fn header<'a>(req: &'a ScriptRequest, name: &str) -> Option<&'a str> {
    req.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
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

impl Platform {
    /// Runs the request through the project's script for its path.
    /// `host` gives the script its `ctx.cubby` (scoped to the project by
    /// the caller) and `fetch`.
    pub async fn run_script(
        self: &Arc<Self>,
        project_name: &str,
        request: ScriptRequest,
        host: impl FnOnce(&cubby_model::ProjectId) -> Arc<dyn ScriptHost>,
    ) -> ScriptResponse {
        let t0 = Instant::now();
        let project = match self.store.projects() {
            Ok(all) => match all.into_iter().find(|p| p.name == project_name) {
                Some(p) => p,
                None => {
                    return json_error(
                        404,
                        "project_not_found",
                        &format!(
                            "no project is named `{project_name}`: exec URLs are http://<project>.exec.<domain>/<path>"
                        ),
                    );
                }
            },
            Err(e) => {
                tracing::error!(error = %e, "reading projects for a script request");
                return json_error(500, "internal", "the daemon could not read its state");
            }
        };
        let path = url_path(&request.url).to_string();
        let routes = match self.script_routes(&project.id) {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(project = %project.id, error = %e, "listing scripts");
                return json_error(500, "internal", "the daemon could not read the project's scripts");
            }
        };
        let Some((route, params)) = routing::find(&routes, &path) else {
            return json_error(
                404,
                "script_not_found",
                &format!("no script answers `{path}`: each file in the project's scripts/ folder is a route"),
            );
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
                return json_error(500, "script_invalid", &format!("`{file}` cannot run: {message}"));
            }
        };
        let magic = &compiled.magic;
        if let Some(origin) = &magic.cors
            && request.method.eq_ignore_ascii_case("OPTIONS")
        {
            let mut resp = ScriptResponse { status: 204, headers: Vec::new(), body: Bytes::new() };
            cors_headers(origin, &mut resp);
            resp.headers.push(("access-control-allow-methods".into(), "GET, POST, PUT, PATCH, DELETE, OPTIONS".into()));
            let asked = header(&request, "access-control-request-headers").unwrap_or("content-type, authorization");
            resp.headers.push(("access-control-allow-headers".into(), asked.to_string()));
            resp.headers.push(("access-control-max-age".into(), "600".into()));
            return resp;
        }
        if let Some(token) = &magic.token {
            let presented = header(&request, "authorization")
                .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                .or_else(|| header(&request, "x-cubby-token"));
            if !presented.is_some_and(|p| same_secret(p.trim(), token)) {
                let mut resp = json_error(
                    401,
                    "script_token_required",
                    "this script wants its token: send `Authorization: Bearer <token>` or `X-Cubby-Token: <token>`",
                );
                if let Some(origin) = &magic.cors {
                    cors_headers(origin, &mut resp);
                }
                return resp;
            }
        }
        let env = match self.store.secrets(&project.id) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(project = %project.id, error = %e, "reading secrets");
                return json_error(500, "internal", "the daemon could not read the project's secrets");
            }
        };
        let timeout = magic.timeout.unwrap_or(self.config.defaults.script_timeout);
        let serial = (!magic.concurrent).then(|| self.serial_lock(&full));
        let _serial_guard = match &serial {
            Some(lock) => match tokio::time::timeout(timeout, lock.lock()).await {
                Ok(g) => Some(g),
                Err(_) => return json_error(503, "script_busy", "an earlier request to this script is still running"),
            },
            None => None,
        };
        let Ok(_slot) = self.script_slots.acquire().await else {
            return json_error(503, "script_busy", "the daemon is shutting down");
        };
        let method = request.method.clone();
        let invocation = Invocation {
            module_name: file.clone(),
            source: compiled.js.clone(),
            request,
            params,
            env,
            project: project.id.to_string(),
            limits: cubby_scripts::Limits {
                memory_bytes: usize::try_from(self.config.defaults.script_memory.0).unwrap_or(usize::MAX),
                timeout,
                ..cubby_scripts::Limits::default()
            },
            host: host(&project.id),
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
        if let Some(origin) = &magic.cors {
            cors_headers(origin, &mut resp);
        }
        let entry = ScriptInvocation {
            at: cubby_model::now(),
            script: file,
            method,
            path,
            status: resp.status,
            duration_ms: u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX),
            error,
            logs: outcome.logs.into_iter().map(|l| ScriptLogLine { level: l.level, message: l.message }).collect(),
        };
        if let Err(e) = self.store.append_script_log(&project.id, &entry, LOG_KEEP) {
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
