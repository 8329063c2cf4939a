//! The glue between the proxy's exec hosts and the core's script runner:
//! each request gets a [`ScriptHost`] whose `ctx.cubby` calls go through
//! the API router in process, as the script's project (a request extension
//! the network cannot set), and whose `fetch` goes through the host's
//! [`HttpFetcher`] with the daemon's own addresses blocked.

use std::sync::Arc;

use axum::body::Body;
use cubby_api::auth::InProcessCaller;
use cubby_core::{Caller, Platform};
use cubby_model::ProjectId;
use cubby_proxy::{BoxFuture, ExecRequest, ExecResponse, ScriptRunner};
use cubby_scripts::{FetchRequest, FetchResponse, HttpFetcher, ScriptHost, ScriptRequest};
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
            let bytes = axum::body::to_bytes(resp.into_body(), MAX_API_ANSWER)
                .await
                .map_err(|e| format!("reading the answer of {path}: {e}"))?;
            Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
        }
        .boxed()
    }

    fn fetch(&self, req: FetchRequest) -> futures::future::BoxFuture<'static, Result<FetchResponse, String>> {
        let fetcher = Arc::clone(&self.fetcher);
        async move { fetcher.fetch(req).await }.boxed()
    }
}

impl ScriptRunner for Scripts {
    fn run(&self, project: &str, request: ExecRequest) -> BoxFuture<ExecResponse> {
        let platform = Arc::clone(&self.platform);
        let (api, fetcher) = (self.api.clone(), Arc::clone(&self.fetcher));
        let project = project.to_string();
        let run = self.home.spawn(async move {
            let req = ScriptRequest {
                method: request.method,
                url: request.url,
                headers: request.headers,
                body: request.body,
            };
            let resp = platform
                .run_script(&project, req, |id| {
                    Arc::new(ProjectHost { api, project: id.clone(), fetcher }) as Arc<dyn ScriptHost>
                })
                .await;
            ExecResponse { status: resp.status, headers: resp.headers, body: resp.body }
        });
        Box::pin(async move {
            run.await.unwrap_or_else(|_| ExecResponse {
                status: 500,
                headers: vec![("content-type".into(), "application/json".into())],
                body: br#"{"error":{"code":"script_interrupted","message":"the script's run was interrupted: retry"}}"#
                    .as_slice()
                    .into(),
            })
        })
    }
}
