//! The proxy's listener: accepts connections, serves HTTP/1.1 with
//! keep-alive, and dispatches each request by its `Host`.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::error_page::{Body, error};
use crate::forward::{UpstreamClient, forward};
use crate::{Resolution, Resolver, label_of};

/// How the proxy behaves.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Container URLs are `{label}.{domain}`.
    pub domain: String,
    /// How long to wait for a client's request headers.
    pub header_timeout: Duration,
    /// Idle upstream connections kept per container.
    pub pool_idle_per_host: usize,
    /// How long an idle upstream connection is kept.
    pub pool_idle_timeout: Duration,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            domain: "localhost".into(),
            header_timeout: Duration::from_secs(30),
            pool_idle_per_host: 32,
            pool_idle_timeout: Duration::from_secs(60),
        }
    }
}

/// A running proxy's shared state.
pub struct Proxy {
    config: ProxyConfig,
    resolver: Arc<dyn Resolver>,
    client: UpstreamClient,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Proxy {
    /// A proxy that asks `resolver` where each label goes.
    pub fn new(config: ProxyConfig, resolver: Arc<dyn Resolver>) -> Arc<Self> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_idle_per_host)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Arc::new(Self { config, resolver, client })
    }

    /// Serves connections from `listener` until `shutdown` resolves, then
    /// stops accepting and lets open connections finish.
    pub async fn serve(self: Arc<Self>, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        // Each connection holds a sender; when all are dropped, the last
        // connection has finished.
        let (alive_tx, mut alive_rx) = tokio::sync::mpsc::channel::<()>(1);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        tokio::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        tracing::warn!(error = %e, "proxy accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let proxy = Arc::clone(&self);
            let service = service_fn(move |req| {
                let proxy = Arc::clone(&proxy);
                async move { Ok::<_, Infallible>(proxy.handle(req, peer).await) }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(self.config.header_timeout)
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades();
            let alive = alive_tx.clone();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let _alive = alive;
                tokio::pin!(conn);
                let result = tokio::select! {
                    r = conn.as_mut() => r,
                    _ = stop.changed() => {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(error = %e, "proxy connection ended with an error");
                }
            });
        }
        let _ = stop_tx.send(true);
        drop(alive_tx);
        if tokio::time::timeout(Duration::from_secs(10), alive_rx.recv()).await.is_err() {
            tracing::warn!("proxy shutdown timed out with connections still open");
        }
    }

    async fn handle(&self, req: Request<Incoming>, peer: std::net::SocketAddr) -> Response<Body> {
        let host =
            req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri().host()).unwrap_or("");
        let Some(label) = label_of(host, &self.config.domain) else {
            return error(
                req.headers(),
                StatusCode::NOT_FOUND,
                "unknown_host",
                &format!(
                    "no container answers at this host: container URLs look like http://<name>--<project>.{}",
                    self.config.domain
                ),
            );
        };
        let label = label.to_ascii_lowercase();
        match self.resolver.resolve(&label) {
            Resolution::Forward(upstream) => forward(&self.client, req, upstream, peer, "http").await,
            Resolution::Stopped { name } => {
                let mut response = error(
                    req.headers(),
                    StatusCode::SERVICE_UNAVAILABLE,
                    "container_stopped",
                    &format!("container `{name}` is stopped: start it through the API and try again"),
                );
                response.headers_mut().insert(header::RETRY_AFTER, http::HeaderValue::from_static("5"));
                response
            }
            Resolution::NotFound => error(
                req.headers(),
                StatusCode::NOT_FOUND,
                "unknown_host",
                &format!("no container answers at `{label}`: check the container and project names in the URL"),
            ),
        }
    }
}
