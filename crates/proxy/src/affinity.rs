//! Each client connection's own upstream connection, driven by the client
//! connection's task.
//!
//! A client connection's requests nearly always go to one app. Sending them
//! over one upstream HTTP/1 connection that the client connection's task
//! polls itself, instead of one checked out of the shared pool (whose
//! connections each run in a task of their own), saves the pool's
//! bookkeeping and a task switch for each message in each direction.
//!
//! A client connection's first request goes through the shared pool, so a
//! client that sends one request per connection (a webhook, `curl`) reuses
//! pooled connections as before; from its second request on, it gets its
//! own, up to a number per app and proxy thread (`--proxy-own-connections`,
//! 32 by default, as many as the pool keeps idle; past it, the pool serves).
//! The costs: an idle kept-alive client connection keeps its upstream
//! connection open until either side closes (at most that many per app);
//! and a client connection that ends closes it, where the pool would have
//! kept it for the next client. Upgrades (WebSockets)
//! and a request whose connection the app closed before it was sent go
//! through the shared pool too, which handles both.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use http::uri::Authority;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};

use crate::connect::Connector;
use crate::upstream::{BoxError, UpstreamBody, UpstreamClient, absolute};

/// Where a forward's connections come from.
pub(crate) struct Upstreams<'a> {
    /// The shared pool: first requests, upgrades, retries.
    pub pool: &'a UpstreamClient,
    /// New connections of client connections' own.
    pub connector: &'a Connector,
    /// How many of those there may be.
    pub own: &'a Arc<OwnConnections>,
}

type Driver = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The upstream connection of one client connection, if it has one.
#[derive(Default)]
pub(crate) struct Affinity {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Whether the client connection has sent a request before.
    started: bool,
    /// Where it goes, and how to send on it while it is not in use.
    sender: Option<(SocketAddr, SendRequest<UpstreamBody>)>,
    /// The connection itself, polled by the client connection's task.
    driver: Option<Driver>,
}

impl Affinity {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes progress on the upstream connection; forgets it once closed.
    fn poll_driver(&self, cx: &mut Context<'_>) {
        let mut inner = self.lock();
        if let Some(driver) = inner.driver.as_mut()
            && driver.as_mut().poll(cx).is_ready()
        {
            inner.sender = None;
            inner.driver = None;
        }
    }

    /// Sends `req` (its target in origin form) to `upstream` over this
    /// client connection's upstream connection: the open one when it goes
    /// there, a new one otherwise, or the pool's (on the first request, and
    /// past the own-connection limit), which wants it at `authority`.
    pub(crate) async fn send(
        &self,
        upstreams: &Upstreams<'_>,
        upstream: SocketAddr,
        authority: &Authority,
        req: Request<UpstreamBody>,
    ) -> Result<Response<Incoming>, BoxError> {
        let (first, kept) = {
            let mut inner = self.lock();
            let first = !std::mem::replace(&mut inner.started, true);
            match inner.sender.take() {
                Some((to, sender)) if to == upstream => (first, Some(sender)),
                _ => (first, None),
            }
        };
        if first {
            return Ok(upstreams.pool.request(absolute(req, authority)).await?);
        }
        let reusable = match kept {
            // Ready once the previous response has been read to its end.
            Some(mut sender) => sender.ready().await.is_ok().then_some(sender),
            None => None,
        };
        let mut sender = match reusable {
            Some(sender) => sender,
            None => {
                let Some(permit) = upstreams.own.take(upstream) else {
                    return Ok(upstreams.pool.request(absolute(req, authority)).await?);
                };
                let io = upstreams.connector.connect(upstream).await?;
                let (sender, connection) = http1::handshake(io).await?;
                let driver: Driver = Box::pin(async move {
                    let _permit = permit;
                    if let Err(e) = connection.await {
                        tracing::debug!(%upstream, error = %e, "upstream connection ended with an error");
                    }
                });
                // Replaces (closes) a connection to another app.
                self.lock().driver = Some(driver);
                sender
            }
        };
        match sender.try_send_request(req).await {
            Ok(response) => {
                self.lock().sender = Some((upstream, sender));
                Ok(response)
            }
            Err(mut e) => match e.take_message() {
                // Not sent: the app closed the idle connection meanwhile.
                Some(req) => Ok(upstreams.pool.request(absolute(req, authority)).await?),
                None => Err(e.into_error().into()),
            },
        }
    }
}

/// How many client connections have an upstream connection of their own,
/// per app, on one proxy thread; at most `max` (past it, the pool serves).
/// Bounds the app connections idle clients can hold, as the pool's idle
/// limit does for its own.
#[derive(Debug)]
pub(crate) struct OwnConnections {
    max: usize,
    open: Mutex<HashMap<SocketAddr, usize>>,
}

impl OwnConnections {
    pub(crate) fn new(max: usize) -> Arc<Self> {
        Arc::new(Self { max, open: Mutex::new(HashMap::new()) })
    }

    fn take(self: &Arc<Self>, upstream: SocketAddr) -> Option<Permit> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(upstream).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Permit { own: Arc::clone(self), upstream })
    }
}

/// One own connection, counted until it closes.
struct Permit {
    own: Arc<OwnConnections>,
    upstream: SocketAddr,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = self.own.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.upstream) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.upstream);
            }
        }
    }
}

/// A client connection's future that also drives its upstream connection,
/// in the same task.
pub(crate) struct Driven<'a, F> {
    conn: Pin<&'a mut F>,
    affinity: &'a Affinity,
}

impl<'a, F: Future> Driven<'a, F> {
    pub(crate) fn new(conn: Pin<&'a mut F>, affinity: &'a Affinity) -> Self {
        Self { conn, affinity }
    }
}

impl<F: Future> Future for Driven<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let done = self.conn.as_mut().poll(cx);
        // After the client side: a request it just sent is written now.
        self.affinity.poll_driver(cx);
        done
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::net::IpAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use bytes::Bytes;
    use http_body_util::{BodyExt, Empty, Full};
    use hyper::service::service_fn;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use tokio::net::TcpListener;

    use super::*;
    use crate::{BoxFuture, Resolution, Resolver, WakeError};

    /// Connections from the host only; nothing else is asked.
    struct HostOnly;

    impl Resolver for HostOnly {
        fn resolve(&self, _: &str) -> Resolution {
            Resolution::NotFound
        }
        fn check_claim(&self, _: &str, _: u16, _: &str) -> Result<u64, crate::ClaimRefusal> {
            Err("no claims here".into())
        }
        fn check_bearer(&self, _: &str, _: u16, _: &str) -> bool {
            false
        }
        fn is_credential(&self, _: &str) -> bool {
            false
        }
        fn wake(&self, _: &str) -> BoxFuture<Result<IpAddr, WakeError>> {
            Box::pin(async { Err(WakeError::Disabled) })
        }
        fn track(&self, _: &crate::Target, _: &str) -> Box<dyn crate::Traffic> {
            Box::new(())
        }
    }

    /// Connections an app accepted, and how many of them have closed.
    #[derive(Default)]
    struct Seen {
        accepted: AtomicUsize,
        closed: AtomicUsize,
    }

    /// An app that answers its name.
    async fn app(name: &'static str) -> (SocketAddr, Arc<Seen>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Seen::default());
        let counts = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                counts.accepted.fetch_add(1, Ordering::SeqCst);
                // Its name, the request target as it came, and the Host.
                let service = service_fn(move |req: Request<Incoming>| async move {
                    let host = req.headers().get(http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("-");
                    let text = format!("{name} {} {host}", req.uri());
                    Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(text))))
                });
                let counts = Arc::clone(&counts);
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                    counts.closed.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        (addr, seen)
    }

    /// Waits (a bounded while) until `f` holds.
    async fn eventually(f: impl Fn() -> bool) -> bool {
        for _ in 0..200 {
            if f() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        false
    }

    /// A request as `forward` makes it: origin form, with `Host`.
    fn get(to: SocketAddr) -> Request<UpstreamBody> {
        let body: UpstreamBody = Empty::new().map_err(|e| -> BoxError { match e {} }).boxed();
        Request::get("/").header(http::header::HOST, to.to_string()).body(body).unwrap()
    }

    fn authority(to: SocketAddr) -> Authority {
        Authority::try_from(to.to_string()).unwrap()
    }

    struct Setup {
        connector: Connector,
        pool: UpstreamClient,
        own: Arc<OwnConnections>,
    }

    impl Setup {
        fn new(own: usize) -> Self {
            let resolver: Arc<dyn Resolver> = Arc::new(HostOnly);
            let connector = Connector::new(resolver, Duration::from_secs(5));
            let pool: UpstreamClient = Client::builder(TokioExecutor::new()).build(connector.clone());
            Self { connector, pool, own: OwnConnections::new(own) }
        }

        fn upstreams(&self) -> Upstreams<'_> {
            Upstreams { pool: &self.pool, connector: &self.connector, own: &self.own }
        }

        /// Sends to each of `to` in turn, on one client connection.
        async fn send_all(&self, affinity: &Affinity, to: &[SocketAddr]) -> Vec<String> {
            let requests = async {
                let mut seen = Vec::new();
                for to in to {
                    let response = affinity.send(&self.upstreams(), *to, &authority(*to), get(*to)).await.unwrap();
                    let body = response.into_body().collect().await.unwrap().to_bytes();
                    seen.push(String::from_utf8_lossy(&body).into_owned());
                }
                seen
            };
            Driven::new(std::pin::pin!(requests), affinity).await
        }
    }

    #[tokio::test]
    async fn a_client_connection_keeps_its_own_upstream_connection_per_app() {
        let setup = Setup::new(32);
        let (a, a_seen) = app("a").await;
        let (b, b_seen) = app("b").await;
        let affinity = Affinity::default();
        let seen = setup.send_all(&affinity, &[a, a, a, a, b, b, a]).await;
        let names: Vec<&str> = seen.iter().map(|s| s.split(' ').next().unwrap_or_default()).collect();
        assert_eq!(names, ["a", "a", "a", "a", "b", "b", "a"]);
        // Every request reaches the app in origin form, with its Host, on
        // the pool's connection (made absolute for the pool) and on its own.
        for (answer, to) in seen.iter().zip([a, a, a, a, b, b, a]) {
            assert!(answer.ends_with(&format!(" / {to}")), "{answer}");
        }
        // A: the first request through the pool, then one connection of its
        // own; B replaced it (closing it), and the last one opened anew.
        assert_eq!(a_seen.accepted.load(Ordering::SeqCst), 3, "connections to A");
        assert_eq!(b_seen.accepted.load(Ordering::SeqCst), 1, "connections to B");
        assert!(eventually(|| b_seen.closed.load(Ordering::SeqCst) == 1).await, "B's closed when A's replaced it");
        // Its own connections close with the client connection; the pooled
        // one stays for the next client.
        drop(affinity);
        assert!(eventually(|| a_seen.closed.load(Ordering::SeqCst) == 2).await, "A's own connections closed");
        let response = setup.pool.request(absolute(get(a), &authority(a))).await.unwrap();
        assert!(response.into_body().collect().await.unwrap().to_bytes().starts_with(b"a "));
        assert_eq!(a_seen.accepted.load(Ordering::SeqCst), 3, "the pooled connection served it");
    }

    #[tokio::test]
    async fn past_the_limit_client_connections_share_the_pool() {
        let setup = Setup::new(1);
        let (a, a_seen) = app("a").await;
        let (first, second) = (Affinity::default(), Affinity::default());
        // The first client connection takes the one own connection allowed.
        setup.send_all(&first, &[a, a, a]).await;
        assert_eq!(a_seen.accepted.load(Ordering::SeqCst), 2, "the pool's and the first client's own");
        // The second is served by the pool's (idle again) connection.
        setup.send_all(&second, &[a, a, a]).await;
        assert_eq!(a_seen.accepted.load(Ordering::SeqCst), 2, "no connection past the limit");
        assert!(second.lock().driver.is_none());
        // Once the first client connection ends, its slot is free again.
        drop(first);
        let third = Affinity::default();
        setup.send_all(&third, &[a, a]).await;
        assert_eq!(a_seen.accepted.load(Ordering::SeqCst), 3);
        assert!(third.lock().driver.is_some());
    }
}
