//! The proxy's listener: accepts connections, serves HTTP/1.1 with
//! keep-alive, and dispatches each request by its `Host`: access check,
//! wake if asleep, forward.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderValue, Request, Response, StatusCode, header};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;

use crate::access::{Decision, check};
use crate::affinity::{Driven, OwnConnections, Upstreams};
use crate::connect::Connector;
use crate::error_page::{Body, ProxyMade, error};
use crate::forward::{Limits, Peer, forward};
use crate::tls::acme::ACME_TLS_ALPN;
use crate::upstream::UpstreamClient;
use crate::{Resolution, Resolver, ScriptRunner, Target, Traffic, WakeError, label_of, script_project_of};

/// A served client connection that can be told to finish its requests
/// and close: hyper's HTTP/1.1 (with upgrades) and HTTP/2 connections.
trait Graceful: Future<Output = Result<(), hyper::Error>> {
    fn finish(self: std::pin::Pin<&mut Self>);
}

impl<I, S> Graceful for hyper::server::conn::http1::UpgradeableConnection<I, S>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::HttpService<Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn finish(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

impl<I, S, E> Graceful for hyper::server::conn::http2::Connection<I, S, E>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    S: hyper::service::HttpService<Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as hyper::body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    E: hyper::rt::bounds::Http2ServerConnExec<S::Future, S::ResBody>,
{
    fn finish(self: std::pin::Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Drives one client connection (and the upstream connection of its own,
/// through `Driven`) until it ends; at shutdown it finishes what it has.
async fn drive<C: Graceful>(
    conn: C,
    own: Arc<Peer>,
    _alive: tokio::sync::mpsc::Sender<()>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    tokio::pin!(conn);
    let result = tokio::select! {
        r = Driven::new(conn.as_mut(), &own.affinity) => r,
        _ = stop.changed() => {
            conn.as_mut().finish();
            Driven::new(conn.as_mut(), &own.affinity).await
        }
    };
    if let Err(e) = result {
        tracing::debug!(error = %e, "proxy connection ended with an error");
    }
}

/// `Strict-Transport-Security` of the proxy's own pages over HTTPS: a
/// year, this host only (tenants' hosts are siblings, not children).
const HSTS: &str = "max-age=31536000";
/// Where ACME's HTTP-01 challenges are asked for: never redirected.
const ACME_CHALLENGE_PATH: &str = "/.well-known/acme-challenge/";

/// How the proxy behaves.
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Container URLs are `{label}.{domain}`.
    pub domain: String,
    /// Whether users reach the proxy over https (through a TLS front): the
    /// claim cookie is then `Secure` and `X-Forwarded-Proto` is `https`.
    pub https: bool,
    /// How long to wait for a client's request headers.
    pub header_timeout: Duration,
    /// How long to wait for an app's response headers.
    pub upstream_timeout: Duration,
    /// Largest request body forwarded.
    pub max_body: u64,
    /// Idle upstream connections kept per container.
    pub pool_idle_per_host: usize,
    /// How long an idle upstream connection is kept.
    pub pool_idle_timeout: Duration,
    /// Client connections with an upstream connection of their own, per
    /// app and proxy thread (0: every request through the pool).
    pub own_connections_per_app: usize,
    /// With HTTPS on: the port it is reached on. Plain-HTTP requests are
    /// then redirected there (`308`), except ACME's HTTP-01 challenges.
    pub redirect_to_https: Option<u16>,
    /// Certificates issued on demand for tenants' hosts and verified
    /// custom domains that no certificate file covers.
    pub acme: Option<Arc<crate::tls::acme::Acme>>,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        Self {
            domain: "localhost".into(),
            https: false,
            header_timeout: Duration::from_secs(30),
            upstream_timeout: Duration::from_secs(60),
            max_body: 64 << 20,
            pool_idle_per_host: 32,
            pool_idle_timeout: Duration::from_secs(60),
            own_connections_per_app: 32,
            redirect_to_https: None,
            acme: None,
        }
    }
}

/// A running proxy's shared state.
pub struct Proxy {
    config: ProxyConfig,
    resolver: Arc<dyn Resolver>,
    scripts: Option<Arc<dyn ScriptRunner>>,
    client: UpstreamClient,
    connector: Connector,
    own: Arc<OwnConnections>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Proxy {
    /// A proxy that asks `resolver` where each label goes, and hands exec
    /// hosts to `scripts` (404 without one).
    pub fn new(config: ProxyConfig, resolver: Arc<dyn Resolver>, scripts: Option<Arc<dyn ScriptRunner>>) -> Arc<Self> {
        let connector = Connector::new(Arc::clone(&resolver), Duration::from_secs(5));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(config.pool_idle_timeout)
            .pool_max_idle_per_host(config.pool_idle_per_host)
            .pool_timer(TokioTimer::new())
            .build(connector.clone());
        let own = OwnConnections::new(config.own_connections_per_app);
        Arc::new(Self { config, resolver, scripts, client, connector, own })
    }

    /// Serves connections from `listener` (TLS first when `tls` is given)
    /// until `shutdown` resolves, then stops accepting and lets open
    /// connections finish.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        tls: Option<tokio_rustls::TlsAcceptor>,
        shutdown: impl Future<Output = ()>,
    ) {
        // Each connection holds a sender; when all are dropped, the last
        // connection has finished.
        let (alive_tx, mut alive_rx) = tokio::sync::mpsc::channel::<()>(1);
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        // A timer that is always due soon. Without one, the runtime's timer
        // wheel is often empty when the thread parks, and every request's
        // timeouts (header read, upstream answer) then wake the thread's
        // own driver through its eventfd: a write(2) per few requests.
        let tick = tokio::spawn(async {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
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
            let alive = alive_tx.clone();
            let stop = stop_rx.clone();
            let proxy = Arc::clone(&self);
            match &tls {
                None => proxy.connection(stream, Peer::new(peer), false, alive, stop),
                Some(acceptor) => {
                    let (acceptor, timeout) = (acceptor.clone(), self.config.header_timeout);
                    tokio::spawn(async move {
                        match tokio::time::timeout(timeout, proxy.handshake(acceptor, stream)).await {
                            Ok(Ok(Some(stream))) => {
                                let mut peer = Peer::new(peer);
                                peer.https = true;
                                let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
                                proxy.connection(stream, peer, h2, alive, stop);
                            }
                            Ok(Ok(None)) => tracing::debug!("TLS-ALPN-01 validation answered"),
                            Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                            Err(_) => tracing::debug!("TLS handshake timed out"),
                        }
                    });
                }
            }
        }
        tick.abort();
        let _ = stop_tx.send(true);
        drop(alive_tx);
        if tokio::time::timeout(Duration::from_secs(10), alive_rx.recv()).await.is_err() {
            tracing::warn!("proxy shutdown timed out with connections still open");
        }
    }

    /// The TLS handshake. With ACME, the client's SNI name is read first
    /// and, when no certificate covers it and it is a tenant's host or a
    /// verified custom domain, a certificate is issued before the
    /// handshake goes on. A CA's TLS-ALPN-01 validation (ALPN
    /// `acme-tls/1`) gets the pending challenge certificate and no HTTP:
    /// `None`.
    async fn handshake(
        &self,
        acceptor: tokio_rustls::TlsAcceptor,
        stream: tokio::net::TcpStream,
    ) -> std::io::Result<Option<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>> {
        let Some(acme) = &self.config.acme else { return acceptor.accept(stream).await.map(Some) };
        let start = tokio_rustls::LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await?;
        let hello = start.client_hello();
        let name = hello.server_name().map(str::to_ascii_lowercase);
        let validation = hello.alpn().is_some_and(|mut offered| offered.any(|p| p == ACME_TLS_ALPN));
        if validation {
            let config = name.as_deref().and_then(|n| acme.challenges().alpn_config(n));
            let Some(config) = config else {
                return Err(std::io::Error::other("a TLS-ALPN-01 validation for a name with no pending challenge"));
            };
            let mut answered = start.into_stream(config).await?;
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut answered).await;
            return Ok(None);
        }
        if let Some(name) = name.filter(|n| self.may_issue(n))
            && let Err(e) = acme.ensure(&name).await
        {
            tracing::warn!(%name, error = %e, "no certificate could be had");
        }
        start.into_stream(Arc::clone(acceptor.config())).await.map(Some)
    }

    /// Whether `name` is one a certificate may be asked for: a tenant's
    /// host or a verified custom domain (never a name nobody serves).
    fn may_issue(&self, name: &str) -> bool {
        let label = label_of(name, &self.config.domain).map(str::to_owned).or_else(|| crate::host::custom_name(name));
        label.is_some_and(|label| !matches!(self.resolver.resolve(&label), Resolution::NotFound))
    }

    /// The service answering one client connection's requests.
    fn service(
        self: Arc<Self>,
        peer: Arc<Peer>,
    ) -> impl hyper::service::Service<
        Request<Incoming>,
        Response = Response<Body>,
        Error = Infallible,
        Future = impl Future<Output = Result<Response<Body>, Infallible>> + Send,
    > + Clone {
        service_fn(move |req| {
            let (proxy, peer) = (Arc::clone(&self), Arc::clone(&peer));
            async move {
                let mut response = proxy.handle(req, &peer).await;
                if peer.https && response.extensions().get::<ProxyMade>().is_some() {
                    response.headers_mut().insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
                }
                Ok::<_, Infallible>(response)
            }
        })
    }

    /// Serves one client connection's requests in a task of its own:
    /// HTTP/1.1 with keep-alive and upgrades, or HTTP/2 (TLS with ALPN
    /// `h2`), whose streams run in tasks of their own. Apps are spoken to
    /// in HTTP/1.1 either way.
    fn connection<S>(
        self: Arc<Self>,
        stream: S,
        peer: Peer,
        h2: bool,
        alive: tokio::sync::mpsc::Sender<()>,
        stop: tokio::sync::watch::Receiver<bool>,
    ) where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let peer = Arc::new(peer);
        let own = Arc::clone(&peer);
        let header_timeout = self.config.header_timeout;
        let (io, service) = (TokioIo::new(stream), self.service(peer));
        if h2 {
            let conn = http2::Builder::new(TokioExecutor::new()).timer(TokioTimer::new()).serve_connection(io, service);
            tokio::spawn(drive(conn, own, alive, stop));
        } else {
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .keep_alive(true)
                .serve_connection(io, service)
                .with_upgrades();
            tokio::spawn(drive(conn, own, alive, stop));
        }
    }

    /// `308` to the same URL over HTTPS on `port`.
    fn to_https(req: &Request<Incoming>, host: &str, port: u16) -> Response<Body> {
        let name =
            host.rsplit_once(':').filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit())).map_or(host, |(h, _)| h);
        let port = if port == 443 { String::new() } else { format!(":{port}") };
        let path = req.uri().path_and_query().map_or("/", http::uri::PathAndQuery::as_str);
        let mut r =
            error(req.headers(), StatusCode::PERMANENT_REDIRECT, "use_https", "this address is served over HTTPS");
        if let Ok(location) = HeaderValue::from_str(&format!("https://{name}{port}{path}")) {
            r.headers_mut().insert(header::LOCATION, location);
        }
        r
    }

    fn unavailable(&self, headers: &http::HeaderMap, code: &str, message: &str, retry_after: u64) -> Response<Body> {
        let mut r = error(headers, StatusCode::SERVICE_UNAVAILABLE, code, message);
        if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }

    async fn handle(&self, mut req: Request<Incoming>, peer: &Peer) -> Response<Body> {
        let host =
            req.headers().get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri().host()).unwrap_or("");
        let https = peer.https || self.config.https;
        let scheme = if https { "https" } else { "http" };
        if let Some(token) = req.uri().path().strip_prefix(ACME_CHALLENGE_PATH)
            && let Some(acme) = &self.config.acme
        {
            return match acme.challenges().answer(token) {
                Some(answer) => {
                    let mut r = Response::new(crate::error_page::full(answer));
                    r.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
                    r
                }
                None => error(
                    req.headers(),
                    StatusCode::NOT_FOUND,
                    "no_challenge",
                    "no ACME challenge is pending for this token",
                ),
            };
        }
        if !peer.https
            && let Some(port) = self.config.redirect_to_https
            && !req.uri().path().starts_with(ACME_CHALLENGE_PATH)
        {
            return Self::to_https(&req, host, port);
        }
        if let (Some(project), Some(scripts)) = (script_project_of(host, &self.config.domain), &self.scripts) {
            let project = project.to_ascii_lowercase();
            return crate::script::handle(&**scripts, &project, req, peer.addr, scheme).await;
        }
        // A host under the domain is looked up by its label; any other by
        // its whole name (a tenant's verified custom domain, or nothing).
        let label = match label_of(host, &self.config.domain).map(str::to_ascii_lowercase) {
            Some(label) => label,
            None => match crate::host::custom_name(host) {
                Some(name) => name,
                None => {
                    return error(
                        req.headers(),
                        StatusCode::NOT_FOUND,
                        "unknown_host",
                        &format!(
                            "no container answers at this host: container URLs look like http://<name>--<project>.{}",
                            self.config.domain
                        ),
                    );
                }
            },
        };
        let (target, upstream) = match self.resolver.resolve(&label) {
            Resolution::NotFound => {
                return error(
                    req.headers(),
                    StatusCode::NOT_FOUND,
                    "unknown_host",
                    &format!("no container answers at `{label}`: check the container and project names in the URL"),
                );
            }
            Resolution::Running { target, upstream } => (target, Some(upstream)),
            Resolution::Stopped { target, autostart } => {
                if !autostart {
                    return self.unavailable(
                        req.headers(),
                        "container_stopped",
                        "this container is stopped and does not start on requests: start it through the API",
                        30,
                    );
                }
                (target, None)
            }
        };
        // Access first: an unauthorised request must not wake anything.
        let (method, uri) = (req.method().clone(), req.uri().clone());
        if let Decision::Respond(r) = check(&*self.resolver, &target, &method, &uri, req.headers_mut(), https) {
            return r;
        }
        let traffic: Arc<dyn Traffic> = Arc::from(self.resolver.track(&target, method.as_str()));
        let response = self.reach(req, &target, upstream, peer, scheme, Arc::clone(&traffic)).await;
        traffic.answered(response.status().as_u16());
        response
    }

    /// Wakes the target if it sleeps, then forwards to it.
    async fn reach(
        &self,
        req: Request<Incoming>,
        target: &Target,
        upstream: Option<SocketAddr>,
        peer: &Peer,
        scheme: &'static str,
        guard: Arc<dyn Traffic>,
    ) -> Response<Body> {
        let upstream = match upstream {
            Some(upstream) => upstream,
            None => match self.resolver.wake(&target.container).await {
                Ok(ip) => SocketAddr::new(ip, target.port),
                Err(WakeError::Busy) => {
                    return self.unavailable(
                        req.headers(),
                        "waking_busy",
                        "too many requests are waiting for this container to start: retry shortly",
                        2,
                    );
                }
                Err(WakeError::Timeout) => {
                    return self.unavailable(
                        req.headers(),
                        "waking_timeout",
                        "the container is still starting: retry shortly",
                        5,
                    );
                }
                Err(WakeError::Disabled) => {
                    return self.unavailable(
                        req.headers(),
                        "container_stopped",
                        "this container is stopped: start it through the API",
                        30,
                    );
                }
                Err(WakeError::Failed(why)) => {
                    return error(
                        req.headers(),
                        StatusCode::BAD_GATEWAY,
                        "start_failed",
                        &format!("the container could not start ({why}); its owner can read its logs through the API"),
                    );
                }
            },
        };
        let limits = Limits { max_body: self.config.max_body, head_timeout: self.config.upstream_timeout };
        let upstreams = Upstreams { pool: &self.client, connector: &self.connector, own: &self.own };
        forward(&upstreams, req, upstream, peer, scheme, &limits, guard).await
    }
}
