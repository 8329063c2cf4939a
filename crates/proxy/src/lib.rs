//! Cubby's reverse proxy: the front door of every container URL.
//!
//! A request's `Host` names a container (`{label}.{domain}`); the
//! [`Resolver`] says where that container's app listens, who may open it,
//! and starts it when it sleeps. The proxy enforces the access mode (signed
//! claims with a cookie, bearer tokens, or public), forwards over keep-alive
//! connections (each client connection's own upstream connection, driven
//! in its task; a shared pool for upgrades) with `X-Forwarded-*` headers, passes WebSocket
//! upgrades and streamed responses through, and never forwards a claim,
//! its cookie or a daemon credential to the app. It knows nothing about
//! containers beyond the [`Resolver`] seam. Hosts `{project}.exec.{domain}`
//! go to the [`ScriptRunner`] instead (a project's exec scripts).

mod access;
mod affinity;
mod body;
mod connect;
mod error_page;
mod forward;
mod host;
mod script;
mod server;
pub mod tls;
mod upstream;
mod workers;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::OwnedFd;

use bytes::Bytes;
use std::pin::Pin;

pub use access::{CLAIM_COOKIE, CLAIM_PARAM};
pub use host::label_of;
pub use script::script_project_of;
pub use server::{Proxy, ProxyConfig};
pub use workers::{Listeners, StartError, Workers};

/// Who may open a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    /// A signed claim: in the link's query, then a cookie, or as a bearer.
    Claim,
    /// `Authorization: Bearer` with a claim or an API token.
    Token,
}

/// The container a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The container's id, passed back to the resolver.
    pub container: String,
    /// Its project's id (whose access log the request goes to).
    pub project: String,
    pub access: Access,
    /// The port the request goes to.
    pub port: u16,
}

/// Where a request for a label should go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The container runs: forward to `upstream`.
    Running { target: Target, upstream: SocketAddr },
    /// The container sleeps; it may be woken when `autostart`.
    Stopped { target: Target, autostart: bool },
    /// No container answers at this label.
    NotFound,
}

/// Why a sleeping container could not be woken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WakeError {
    /// Too many requests wait for it already.
    Busy,
    /// Its start took longer than the wait allows.
    Timeout,
    /// It does not start on requests.
    Disabled,
    /// Its start failed, for this reason.
    Failed(String),
}

/// A future the resolver hands back.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// What the proxy needs to know and do about containers.
pub trait Resolver: Send + Sync + 'static {
    /// Looks up the target of a URL label (the host without the domain).
    fn resolve(&self, label: &str) -> Resolution;
    /// Whether `claim` opens port `port` of `container` now; the seconds it
    /// stays valid, or why not.
    fn check_claim(&self, container: &str, port: u16, claim: &str) -> Result<u64, ClaimRefusal>;
    /// Whether a bearer token (a claim or an API token) opens port `port`
    /// of `container`.
    fn check_bearer(&self, container: &str, port: u16, token: &str) -> bool;
    /// Whether a bearer token is a credential of the daemon (any claim it
    /// signed, any API token): those are never forwarded to an app.
    fn is_credential(&self, token: &str) -> bool;
    /// Starts a sleeping container and returns its address.
    fn wake(&self, container: &str) -> BoxFuture<Result<IpAddr, WakeError>>;
    /// Counts a request (or an upgraded connection) with `method` to
    /// `container` and marks its traffic open until the guard is dropped;
    /// the guard is told the status and counts the bytes sent back.
    fn track(&self, target: &Target, method: &str) -> Box<dyn Traffic>;
    /// A socket, not yet connected, for a new connection to `upstream`
    /// when the connection should start somewhere else than the host's
    /// network namespace (the container's own); `None` connects from the
    /// host. Asked once per new upstream connection.
    fn upstream_socket(&self, upstream: SocketAddr) -> BoxFuture<Option<OwnedFd>> {
        let _ = upstream;
        Box::pin(async { None })
    }
}

/// The traffic of one proxied request or upgraded connection, as the
/// resolver counts it (for usage and idle stops). Dropped when it ends.
pub trait Traffic: Send + Sync {
    /// `bytes` of the response went to the client.
    fn sent(&self, bytes: u64);
    /// The client was answered with `status`.
    fn answered(&self, status: u16) {
        let _ = status;
    }
}

/// Counts nothing.
impl Traffic for () {
    fn sent(&self, _: u64) {}
}

/// Why a claim does not open a container (the resolver's own error; the
/// proxy shows its message).
pub type ClaimRefusal = Box<dyn std::error::Error + Send + Sync>;

/// A request to a project's exec scripts, without its body.
#[derive(Debug, Clone)]
pub struct ScriptHead {
    pub method: String,
    /// The full URL as the client asked for it.
    pub url: String,
    /// With `X-Forwarded-*` set by the proxy.
    pub headers: Vec<(String, String)>,
    pub peer: IpAddr,
}

impl ScriptHead {
    /// The token presented for a script that wants one:
    /// `Authorization: Bearer <token>`, else `X-Cubby-Token: <token>`.
    pub fn presented_token(&self) -> Option<&str> {
        let header =
            |name: &str| self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
        header("authorization")
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .or_else(|| header("x-cubby-token"))
            .map(str::trim)
    }
}

/// What a script answered.
pub struct ScriptAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    /// The whole body, or empty when `stream` carries it.
    pub body: Bytes,
    /// The body's chunks as the script makes them (a `ReadableStream`
    /// answer, e.g. server-sent events), sent as they come.
    pub stream: Option<ChunkStream>,
}

/// A streamed body's chunks.
pub type ChunkStream = std::pin::Pin<Box<dyn futures::Stream<Item = Bytes> + Send + Sync>>;

impl std::fmt::Debug for ScriptAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptAnswer")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body_len", &self.body.len())
            .field("streamed", &self.stream.is_some())
            .finish()
    }
}

/// A script request refused or failed, answered by the proxy in the
/// error envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptRefusal {
    pub status: u16,
    /// Stable, as in the API's errors (`script_busy`, ...).
    pub code: &'static str,
    pub message: String,
    /// Seconds to wait before retrying (a `Retry-After`), when busy.
    pub retry_after: Option<u32>,
}

/// How a script request ended.
#[derive(Debug)]
pub enum ScriptOutcome {
    /// The script's own answer.
    Answered(ScriptAnswer),
    /// No answer of the script's.
    Failed(ScriptRefusal),
}

/// A request a [`ScriptRunner`] admitted: it runs once its body is read.
pub trait AdmittedRun: Send {
    /// The largest body it may carry.
    fn max_body(&self) -> u64;
    /// The origin the script allows (`@cors`), if any: the proxy adds the
    /// CORS headers to whatever the request ends with.
    fn cors(&self) -> Option<&str>;
    /// Runs the script on the body.
    fn run(self: Box<Self>, body: Bytes) -> BoxFuture<ScriptOutcome>;
}

/// What a runner decided from a request's head.
pub enum Admission {
    /// Read the body (under its cap) and run.
    Run(Box<dyn AdmittedRun>),
    /// A CORS preflight the script allows from `origin`: the proxy answers.
    Preflight { origin: String },
    /// Not run; `cors` is the script's allowed origin when it has one.
    Refused { refusal: ScriptRefusal, cors: Option<String> },
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Run(_) => f.write_str("Admission::Run"),
            Self::Preflight { origin } => f.debug_struct("Admission::Preflight").field("origin", origin).finish(),
            Self::Refused { refusal, .. } => f.debug_tuple("Admission::Refused").field(&refusal.code).finish(),
        }
    }
}

/// Runs requests to `http://{project}.exec.{domain}/...`: admitted from
/// their head first (route, token, a run slot), so a request that will
/// not run costs no body read.
pub trait ScriptRunner: Send + Sync + 'static {
    fn admit(&self, project: &str, head: ScriptHead) -> BoxFuture<Admission>;
}
