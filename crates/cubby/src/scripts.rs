//! The glue between the proxy's exec hosts and the core's script runner:
//! each request gets a [`ScriptHost`] whose `ctx.cubby` calls go through
//! the API router in process, as the script's project (a request extension
//! the network cannot set), and whose `fetch` goes through the host's
//! [`HttpFetcher`] with the daemon's own addresses blocked.

use std::sync::Arc;

use axum::body::Body;
use bytes::Bytes;
use cubby_api::auth::InProcessCaller;
use cubby_core::{Caller, Platform};
use cubby_model::ProjectId;
use cubby_proxy::{Admission, AdmittedRun, BoxFuture, ScriptAnswer, ScriptHead, ScriptRunner};
use cubby_scripts::{AnswerRoom, FetchRequest, FetchResponse, HttpFetcher, ScriptHost};
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
}

impl ScriptHost for ProjectHost {
    fn cubby(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
        room: AnswerRoom,
    ) -> futures::future::BoxFuture<'static, Result<(u16, String), String>> {
        let api = self.api.clone();
        let caller = Caller::Project(self.project.clone());
        let (method, path) = (method.to_string(), path.to_string());
        async move {
            if !path.starts_with('/') || path.contains("..") {
                return Err(format!("`{path}` is not an API path: write it like /containers/<id>"));
            }
            let mut req = axum::http::Request::builder()
                .method(method.as_str())
                .uri(format!("/api/v1{path}"))
                .header("content-type", "application/json")
                .body(Body::from(body.unwrap_or_default()))
                .map_err(|e| format!("bad request to {path}: {e}"))?;
            req.extensions_mut().insert(InProcessCaller(caller));
            let resp = match api.oneshot(req).await {
                Ok(resp) => resp,
                Err(never) => match never {},
            };
            let status = resp.status().as_u16();
            let limit = room.left().min(MAX_API_ANSWER);
            let no_room = || format!("the answer of {path} does not fit in the script's memory");
            let bytes = axum::body::to_bytes(resp.into_body(), limit).await.map_err(|_| no_room())?;
            if !room.take(bytes.len()) {
                return Err(no_room());
            }
            Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
        }
        .boxed()
    }

    fn fetch(&self, req: FetchRequest) -> futures::future::BoxFuture<'static, Result<FetchResponse, String>> {
        let fetcher = Arc::clone(&self.fetcher);
        async move { fetcher.fetch(req).await }.boxed()
    }
}

/// An admitted request, run on the daemon's runtime.
struct Admitted {
    inner: cubby_core::scripts::run::AdmittedScript,
    api: axum::Router,
    fetcher: Arc<HttpFetcher>,
    home: tokio::runtime::Handle,
}

fn answer(resp: cubby_scripts::ScriptResponse) -> ScriptAnswer {
    ScriptAnswer { status: resp.status, headers: resp.headers, body: resp.body }
}

fn interrupted() -> ScriptAnswer {
    ScriptAnswer {
        status: 500,
        headers: vec![("content-type".into(), "application/json".into())],
        body: br#"{"error":{"code":"script_interrupted","message":"the script's run was interrupted: retry"}}"#
            .as_slice()
            .into(),
    }
}

impl AdmittedRun for Admitted {
    fn max_body(&self) -> u64 {
        self.inner.max_body()
    }

    fn run(self: Box<Self>, body: Bytes) -> BoxFuture<ScriptAnswer> {
        let Admitted { inner, api, fetcher, home } = *self;
        let host = Arc::new(ProjectHost { api, project: inner.project().clone(), fetcher }) as Arc<dyn ScriptHost>;
        let run = home.spawn(async move { answer(inner.run(body, host).await) });
        Box::pin(async move { run.await.unwrap_or_else(|_| interrupted()) })
    }
}

impl ScriptRunner for Scripts {
    fn admit(&self, project: &str, head: ScriptHead) -> BoxFuture<Admission> {
        let platform = Arc::clone(&self.platform);
        let (api, fetcher, home) = (self.api.clone(), Arc::clone(&self.fetcher), self.home.clone());
        let project = project.to_string();
        // Admission waits for slots on the daemon's runtime, where the
        // core's state lives; the proxy thread only awaits the outcome.
        let admitted = self.home.spawn(async move {
            let head =
                cubby_core::scripts::run::ScriptHead { method: head.method, url: head.url, headers: head.headers };
            platform.admit_script(&project, head).await
        });
        Box::pin(async move {
            match admitted.await {
                Ok(Ok(inner)) => Admission::Run(Box::new(Admitted { inner, api, fetcher, home })),
                Ok(Err(resp)) => Admission::Answer(answer(resp)),
                Err(_) => Admission::Answer(interrupted()),
            }
        })
    }
}
