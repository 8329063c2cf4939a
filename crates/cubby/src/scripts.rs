//! The glue between the proxy's exec hosts and the core's script runner:
//! each request gets a [`ScriptHost`] whose `ctx.cubby` calls go through
//! the API router in process, as the script's project (a request extension
//! the network cannot set), and whose `fetch` goes through the host's
//! [`HttpFetcher`] with the daemon's own addresses blocked.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use cubby_api::auth::InProcessCaller;
use cubby_core::events::EVENT_SCRIPT_ACTOR;
use cubby_core::scripts::run::{AdmittedScript, ScriptAdmission, ScriptFailure};
use cubby_core::{Caller, Platform};
use cubby_model::{Event, ProjectId};
use cubby_proxy::{
    Admission, AdmittedRun, BoxFuture, ScriptAnswer, ScriptHead, ScriptOutcome, ScriptRefusal, ScriptRunner,
};
use cubby_scripts::{AnswerRoom, CubbyCallError, FetchError, FetchRequest, FetchResponse, HttpFetcher, ScriptHost};
use futures::FutureExt;
use tower::ServiceExt;

/// Largest answer of an in-process API call.
const MAX_API_ANSWER: usize = 16 << 20;

/// Runs exec requests for the proxy.
pub struct Scripts {
    pub platform: Arc<Platform>,
    pub api: axum::Router,
    pub fetcher: Arc<HttpFetcher>,
    /// The daemon's runtime: a script runs there, not on the proxy thread
    /// that received its request.
    pub home: tokio::runtime::Handle,
    /// Where runs are timed, for `/metrics`.
    pub metrics: Arc<cubby_api::routes::metrics::ApiMetrics>,
}

impl std::fmt::Debug for Scripts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scripts").finish_non_exhaustive()
    }
}

/// What one script may reach: its project's API, and `fetch`.
struct ProjectHost {
    api: axum::Router,
    project: ProjectId,
    fetcher: Arc<HttpFetcher>,
    /// The script's file, and whether an event started the run: its
    /// `ctx.cubby` calls act as that script (events record it).
    script: String,
    on_event: bool,
}

impl ScriptHost for ProjectHost {
    fn cubby(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        room: AnswerRoom,
    ) -> futures::future::BoxFuture<'static, Result<(u16, String), CubbyCallError>> {
        let api = self.api.clone();
        let caller = Caller::project(self.project.clone()).by_script(&self.script, self.on_event);
        let (method, path) = (method.to_string(), path.to_string());
        async move {
            if !path.starts_with('/') || path.contains("..") {
                return Err(CubbyCallError::NotAnApiPath { path });
            }
            let mut req = axum::http::Request::builder()
                .method(method.as_str())
                .uri(format!("/api/v1{path}"))
                .header("content-type", "application/json")
                .body(Body::from(body.unwrap_or_default()))
                .map_err(|_| CubbyCallError::InvalidRequest { method: method.clone(), path: path.clone() })?;
            req.extensions_mut().insert(InProcessCaller(caller));
            let resp = match api.oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            let status = resp.status().as_u16();
            let limit = room.left().min(MAX_API_ANSWER);
            let no_room = || CubbyCallError::NoRoom { path: path.clone() };
            let bytes = axum::body::to_bytes(resp.into_body(), limit).await.map_err(|_| no_room())?;
            if !room.take(bytes.len()) {
                return Err(no_room());
            }
            Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
        }
        .boxed()
    }

    fn fetch(&self, req: FetchRequest) -> futures::future::BoxFuture<'static, Result<FetchResponse, FetchError>> {
        let fetcher = Arc::clone(&self.fetcher);
        async move { fetcher.fetch(req).await }.boxed()
    }
}

/// An admitted request, run on the daemon's runtime.
struct Admitted {
    inner: Box<AdmittedScript>,
    api: axum::Router,
    fetcher: Arc<HttpFetcher>,
    home: tokio::runtime::Handle,
    metrics: Arc<cubby_api::routes::metrics::ApiMetrics>,
}

/// Seconds a client told "busy" is asked to wait before retrying.
const RETRY_AFTER_SECONDS: u32 = 1;

/// The status and stable code of each refusal: the one place script
/// refusals meet HTTP.
fn refusal(r: &cubby_core::scripts::run::ScriptRefusal) -> ScriptRefusal {
    use cubby_core::scripts::run::ScriptRefusal as R;
    let (status, code, retry_after) = match r {
        R::ProjectNotFound { .. } => (404, "project_not_found", None),
        R::ScriptNotFound { .. } => (404, "script_not_found", None),
        R::ScriptInvalid { .. } => (500, "script_invalid", None),
        R::TokenRequired => (401, "script_token_required", None),
        R::Busy(_) => (503, "script_busy", Some(RETRY_AFTER_SECONDS)),
        R::Unavailable { .. } => (500, "internal", None),
    };
    ScriptRefusal { status, code, message: r.to_string(), retry_after }
}

/// The status and stable code of each failure of an admitted run.
fn failure(f: &ScriptFailure) -> ScriptRefusal {
    let (status, code) = match f {
        ScriptFailure::Timeout(_) => (504, "script_timeout"),
        ScriptFailure::OutOfMemory(_) => (500, "script_out_of_memory"),
        ScriptFailure::Exception => (500, "script_error"),
        ScriptFailure::ResponseTooLarge(_) => (500, "script_response_too_large"),
        ScriptFailure::Invalid(_) => (500, "script_invalid"),
        ScriptFailure::Unavailable { .. } => (500, "internal"),
    };
    ScriptRefusal { status, code, message: f.to_string(), retry_after: None }
}

fn interrupted() -> ScriptRefusal {
    ScriptRefusal {
        status: 500,
        code: "script_interrupted",
        message: "the script's run was interrupted: retry".into(),
        retry_after: None,
    }
}

impl AdmittedRun for Admitted {
    fn max_body(&self) -> u64 {
        self.inner.max_body()
    }

    fn cors(&self) -> Option<&str> {
        self.inner.cors()
    }

    fn run(self: Box<Self>, body: Bytes) -> BoxFuture<ScriptOutcome> {
        let Admitted { inner, api, fetcher, home, metrics } = *self;
        let started = std::time::Instant::now();
        let host = Arc::new(ProjectHost {
            api,
            project: inner.project().clone(),
            fetcher,
            script: inner.file().to_string(),
            on_event: false,
        }) as Arc<dyn ScriptHost>;
        let run = home.spawn(async move {
            let run = inner.run(body, host).await;
            let status = match &run.result {
                Ok(resp) => resp.status,
                Err(f) => failure(f).status,
            };
            metrics.observe_script(status, started.elapsed().as_secs_f64());
            match run.finish(status) {
                Ok(resp) => ScriptOutcome::Answered(ScriptAnswer {
                    status: resp.status,
                    headers: resp.headers,
                    body: resp.body,
                    stream: resp.stream.map(|s| Box::pin(s) as cubby_proxy::ChunkStream),
                }),
                Err(f) => ScriptOutcome::Failed(failure(&f)),
            }
        });
        Box::pin(async move { run.await.unwrap_or_else(|_| ScriptOutcome::Failed(interrupted())) })
    }
}

impl ScriptRunner for Scripts {
    fn admit(&self, project: &str, head: ScriptHead) -> BoxFuture<Admission> {
        let platform = Arc::clone(&self.platform);
        let (api, fetcher, home) = (self.api.clone(), Arc::clone(&self.fetcher), self.home.clone());
        let metrics = Arc::clone(&self.metrics);
        let project = project.to_string();
        // Admission waits for slots on the daemon's runtime, where the
        // core's state lives; the proxy thread only awaits the outcome.
        let admitted = self.home.spawn(async move {
            let token = head.presented_token().map(str::to_string);
            let head = cubby_core::scripts::run::ScriptHead {
                method: head.method,
                url: head.url,
                headers: head.headers,
                token,
            };
            platform.scripts().admit(&project, head).await
        });
        Box::pin(async move {
            match admitted.await {
                Ok(ScriptAdmission::Run(inner)) => {
                    Admission::Run(Box::new(Admitted { inner, api, fetcher, home, metrics }))
                }
                Ok(ScriptAdmission::Preflight { origin }) => Admission::Preflight { origin },
                Ok(ScriptAdmission::Refused { refusal: r, cors }) => Admission::Refused { refusal: refusal(&r), cors },
                Err(_) => Admission::Refused { refusal: interrupted(), cors: None },
            }
        })
    }
}

impl Scripts {
    /// Runs, for each event of a project as it happens, the project's
    /// scripts that subscribe to its type (`// @on container.oom_killed`):
    /// a `POST` of the event as JSON, logged like any invocation. Best
    /// effort and at most once: a failed run is not retried (it shows in
    /// the script's log and as a `script.failed` event), events of a
    /// daemon that was down are not replayed, and what a run started by an
    /// event causes starts no script again, so scripts cannot loop.
    pub fn follow_events(self: Arc<Self>) -> tokio::task::JoinHandle<()> {
        let mut live = self.platform.events().subscribe();
        let home = self.home.clone();
        home.spawn(async move {
            loop {
                match live.recv().await {
                    Ok(event) => self.dispatch(&event),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, "event scripts fell behind: that many events started no script");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        })
    }

    fn dispatch(self: &Arc<Self>, event: &Event) {
        let Some(project) = &event.project_id else { return };
        if event.actor.as_deref().is_some_and(|a| a.starts_with(EVENT_SCRIPT_ACTOR)) {
            return;
        }
        for file in self.platform.scripts().subscribers(project, event.kind) {
            let (this, event) = (Arc::clone(self), event.clone());
            self.home.spawn(async move { this.run_for_event(event, file).await });
        }
    }

    async fn run_for_event(&self, event: Event, file: String) {
        let inner = match self.platform.scripts().admit_event(&event, &file).await {
            ScriptAdmission::Run(inner) => inner,
            ScriptAdmission::Refused { refusal, .. } => {
                tracing::warn!(script = %file, event = event.id, reason = %refusal, "an event script did not run");
                return;
            }
            ScriptAdmission::Preflight { .. } => return,
        };
        let started = std::time::Instant::now();
        let host = Arc::new(ProjectHost {
            api: self.api.clone(),
            project: inner.project().clone(),
            fetcher: Arc::clone(&self.fetcher),
            script: file.clone(),
            on_event: true,
        }) as Arc<dyn ScriptHost>;
        let body = Bytes::from(serde_json::to_vec(&event).unwrap_or_default());
        let run = inner.run(body, host).await;
        let status = match &run.result {
            Ok(resp) => resp.status,
            Err(f) => failure(f).status,
        };
        self.metrics.observe_script(status, started.elapsed().as_secs_f64());
        if let Err(f) = run.finish(status) {
            tracing::info!(script = %file, event = event.id, reason = %f, "an event script failed");
        }
    }
}
