//! The real backend of scripts' `fetch`: [`HttpFetcher`], a reqwest client
//! that refuses destinations in a block list (the daemon's host, its
//! containers) for IP literals, for every address a name resolves to (a
//! filtering DNS resolver, so the checked address is the one connected to),
//! and on every redirect hop. Its fake is [`crate::FakeHost`].

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderName, HeaderValue};
use reqwest::redirect::{Attempt, Policy};
use reqwest::{Method, Url};

use crate::host::{FetchRequest, FetchResponse};

/// Redirects followed before a fetch fails.
pub const MAX_REDIRECTS: usize = 5;
/// The largest response body a fetch reads: 10 MiB.
pub const MAX_FETCH_BODY: usize = 10 * 1024 * 1024;

/// Why a fetch was refused or failed, before it is flattened to the message
/// a script sees.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The HTTP client could not be built (e.g. TLS roots could not load).
    #[error("could not build the HTTP client for scripts' fetch")]
    Client(#[source] reqwest::Error),
    /// The destination is in the block list.
    #[error(
        "fetch to {addr} is not allowed: scripts cannot reach the daemon's host or its containers directly; \
         use ctx.cubby or the container's URL"
    )]
    Blocked {
        /// The refused address.
        addr: IpAddr,
    },
    /// Not an `http` or `https` URL.
    #[error("fetch supports only http and https URLs, not `{scheme}:`")]
    Scheme {
        /// The refused scheme.
        scheme: String,
    },
    /// The URL does not parse.
    #[error("fetch: invalid URL `{url}`")]
    Url {
        /// The URL as given.
        url: String,
    },
    /// The URL has no host to connect to.
    #[error("fetch: URL `{url}` has no host")]
    NoHost {
        /// The URL as given.
        url: String,
    },
    /// The name resolves to no address.
    #[error("fetch: `{name}` resolves to no address")]
    NoAddress {
        /// The host name.
        name: String,
    },
    /// More than [`MAX_REDIRECTS`] redirects.
    #[error("fetch: more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    /// The method is not a valid HTTP token.
    #[error("fetch: invalid method `{method}`")]
    Method {
        /// The method as given.
        method: String,
    },
    /// A header name or value is invalid.
    #[error("fetch: invalid header `{name}`")]
    Header {
        /// The header name as given.
        name: String,
    },
    /// The response body is larger than the cap.
    #[error("fetch: the response body is larger than {limit} bytes")]
    BodyTooLarge {
        /// The cap in bytes.
        limit: usize,
    },
    /// The body does not fit in what the script's memory has left.
    #[error("fetch: the answer of {url} does not fit in the script's memory (answers still in flight take it)")]
    NoRoom {
        /// The URL fetched.
        url: String,
    },
    /// The exchange failed (connection, TLS, protocol): the message names
    /// the cause (the transport's errors are not kept: they are not
    /// `Send` across the script's boundary as they are).
    #[error("{message}")]
    Transport {
        /// The cause, from the transport's error chain.
        message: String,
    },
    /// No complete answer within the request's timeout.
    #[error("fetch to {url} timed out after {} ms", .timeout.as_millis())]
    Timeout {
        /// The URL fetched.
        url: String,
        /// The time allowed.
        timeout: Duration,
    },
}

/// The addresses no script may reach whatever the daemon's configuration:
/// loopback, unspecified ("this host") and link-local, for IPv4 and IPv6,
/// IPv6 unique-local space (`fc00::/7`) and the NAT64 prefix
/// (`64:ff9b::/96`, which reaches IPv4 addresses through a translator).
/// The daemon adds its container subnet and its egress guard.
pub fn default_blocked() -> Vec<IpNet> {
    ["127.0.0.0/8", "0.0.0.0/8", "169.254.0.0/16", "::1/128", "::/128", "fe80::/10", "fc00::/7", "64:ff9b::/96"]
        .iter()
        .filter_map(|net| net.parse().ok())
        .collect()
}

/// Where scripts' `fetch` may not go.
#[derive(Debug, Clone, Default)]
pub struct Destinations {
    /// Never reached (see [`default_blocked`]; the daemon adds its
    /// container subnet).
    pub blocked: Vec<IpNet>,
    /// Not reached unless also in `allowed`: the platform's egress guard
    /// (cloud metadata, carrier-grade NAT, the operator's `--egress-deny`).
    pub guarded: Vec<IpNet>,
    /// The operator's exceptions to `guarded` (`--egress-allow`).
    pub allowed: Vec<IpNet>,
    /// Whether every address of the daemon's host is refused too, as the
    /// interfaces have it at the time of the check.
    pub host_addresses: bool,
}

impl From<Vec<IpNet>> for Destinations {
    fn from(blocked: Vec<IpNet>) -> Self {
        Self { blocked, ..Self::default() }
    }
}

/// How long the host's own addresses are trusted before they are read again.
const HOST_ADDRESSES_TTL: Duration = Duration::from_secs(1);

/// The host's own addresses, read from its interfaces at most once per
/// [`HOST_ADDRESSES_TTL`], so an address that appears (DHCP, a new link)
/// is refused within a second.
#[derive(Debug, Default)]
struct HostAddresses(std::sync::Mutex<Option<(std::time::Instant, Arc<Vec<IpAddr>>)>>);

impl HostAddresses {
    fn current(&self) -> Arc<Vec<IpAddr>> {
        let mut cached = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((at, addrs)) = &*cached
            && at.elapsed() < HOST_ADDRESSES_TTL
        {
            return Arc::clone(addrs);
        }
        let addrs: Arc<Vec<IpAddr>> = Arc::new(
            nix::ifaddrs::getifaddrs()
                .map(|all| {
                    all.filter_map(|ifa| {
                        let addr = ifa.address?;
                        addr.as_sockaddr_in()
                            .map(|v4| IpAddr::V4(v4.ip()))
                            .or_else(|| addr.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())))
                    })
                    .collect()
                })
                .unwrap_or_default(),
        );
        *cached = Some((std::time::Instant::now(), Arc::clone(&addrs)));
        addrs
    }
}

/// The block list, shared by the resolver, the redirect policy and the
/// pre-flight check.
#[derive(Debug, Clone)]
struct BlockList(Arc<(Destinations, HostAddresses)>);

fn covers(nets: &[IpNet], addr: IpAddr) -> bool {
    let mapped = match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
        IpAddr::V4(_) => None,
    };
    nets.iter().any(|net| net.contains(&addr) || mapped.is_some_and(|v4| net.contains(&v4)))
}

impl BlockList {
    fn new(destinations: Destinations) -> Self {
        Self(Arc::new((destinations, HostAddresses::default())))
    }

    /// Whether `addr` (or the IPv4 address inside an IPv4-mapped IPv6 one) is blocked.
    fn blocks(&self, addr: IpAddr) -> bool {
        let (d, host) = &*self.0;
        let v4 = match addr {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
            IpAddr::V4(_) => addr,
        };
        covers(&d.blocked, addr)
            || (covers(&d.guarded, addr) && !covers(&d.allowed, addr))
            || (d.host_addresses && host.current().iter().any(|own| *own == addr || *own == v4))
    }

    /// Checks a URL before it is requested (the first one and each redirect):
    /// its scheme, and its host when it is an IP literal. Names are checked by
    /// the resolver when they are looked up.
    fn check_url(&self, url: &Url) -> Result<(), FetchError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(FetchError::Scheme { scheme: url.scheme().to_owned() });
        }
        let addr = match url.host() {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => {
                return Err(FetchError::NoHost { url: url.to_string() });
            }
        };
        if self.blocks(addr) {
            return Err(FetchError::Blocked { addr });
        }
        Ok(())
    }
}

/// Resolves names with the system resolver and drops blocked addresses; a
/// name with only blocked addresses fails with [`FetchError::Blocked`].
#[derive(Debug)]
struct FilteringResolver {
    blocked: BlockList,
}

impl Resolve for FilteringResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let blocked = self.blocked.clone();
        let name = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            let Some(first) = found.first() else {
                return Err(FetchError::NoAddress { name }.into());
            };
            let first = first.ip();
            let allowed: Vec<SocketAddr> = found.into_iter().filter(|addr| !blocked.blocks(addr.ip())).collect();
            if allowed.is_empty() {
                return Err(FetchError::Blocked { addr: first }.into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The real `fetch` of scripts: HTTP/1.1 and HTTPS (rustls, platform
/// roots), no proxy, [`MAX_REDIRECTS`] redirects, bodies up to
/// [`MAX_FETCH_BODY`], and no destination in the block list.
#[derive(Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
    blocked: BlockList,
    max_body: usize,
}

impl fmt::Debug for HttpFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpFetcher")
            .field("blocked", &self.blocked.0.0)
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

impl HttpFetcher {
    /// A fetcher that refuses the `destinations` (a plain list: those
    /// addresses; the daemon passes [`default_blocked`] plus its container
    /// subnet, its egress guard and the host's own addresses).
    ///
    /// # Errors
    ///
    /// [`FetchError::Client`] when the HTTP client cannot be built.
    pub fn new(destinations: impl Into<Destinations>) -> Result<Self, FetchError> {
        let blocked = BlockList::new(destinations.into());
        let policy_blocked = blocked.clone();
        let policy = Policy::custom(move |attempt: Attempt<'_>| {
            if attempt.previous().len() > MAX_REDIRECTS {
                return attempt.error(FetchError::TooManyRedirects);
            }
            match policy_blocked.check_url(attempt.url()) {
                Ok(()) => attempt.follow(),
                Err(err) => attempt.error(err),
            }
        });
        let client = reqwest::Client::builder()
            .no_proxy()
            .redirect(policy)
            .dns_resolver(Arc::new(FilteringResolver { blocked: blocked.clone() }))
            .user_agent(concat!("cubby-scripts/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .map_err(FetchError::Client)?;
        Ok(Self { client, blocked, max_body: MAX_FETCH_BODY })
    }

    /// Lowers the body cap (tests use it to reach the cap cheaply).
    #[must_use]
    pub fn with_max_body(mut self, max_body: usize) -> Self {
        self.max_body = max_body;
        self
    }

    /// Performs one request.
    ///
    /// # Errors
    ///
    /// A message for the script: a refused destination, a bad URL, method or
    /// header, a connection or TLS failure, too many redirects, a body over
    /// the cap, or the timeout.
    pub async fn fetch(&self, request: FetchRequest) -> Result<FetchResponse, FetchError> {
        let url = request.url.clone();
        let timeout = request.timeout;
        match tokio::time::timeout(timeout, self.exchange(request)).await {
            Ok(result) => result,
            Err(_) => Err(FetchError::Timeout { url, timeout }),
        }
    }

    async fn exchange(&self, request: FetchRequest) -> Result<FetchResponse, FetchError> {
        let room = request.room.clone();
        let url = Url::parse(&request.url).map_err(|_| FetchError::Url { url: request.url.clone() })?;
        self.blocked.check_url(&url)?;
        let method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| FetchError::Method { method: request.method.clone() })?;
        let mut builder = self.client.request(method, url).timeout(request.timeout);
        for (name, value) in &request.headers {
            let header = || FetchError::Header { name: name.clone() };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| header())?;
            let value = HeaderValue::from_str(value).map_err(|_| header())?;
            builder = builder.header(name, value);
        }
        if !request.body.is_empty() {
            builder = builder.body(request.body);
        }
        let mut response = builder.send().await.map_err(|e| describe(&e))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
            .collect();
        let too_large = || FetchError::BodyTooLarge { limit: self.max_body };
        if response.content_length().is_some_and(|len| len > u64::try_from(self.max_body).unwrap_or(u64::MAX)) {
            return Err(too_large());
        }
        // Each chunk takes its bytes from the script's room as it arrives.
        let mut body = Vec::new();
        let read = async {
            while let Some(chunk) = response.chunk().await.map_err(|e| describe(&e))? {
                if body.len() + chunk.len() > self.max_body {
                    return Err(too_large());
                }
                if !room.take(chunk.len()) {
                    return Err(FetchError::NoRoom { url: request.url.clone() });
                }
                body.extend_from_slice(&chunk);
            }
            Ok(())
        };
        if let Err(e) = read.await {
            room.give(body.len());
            return Err(e);
        }
        Ok(FetchResponse { status, headers, body: Bytes::from(body) })
    }
}

/// A failed request as a [`FetchError::Transport`]: the message of our own
/// refusal if one is in the error's chain (blocked address, too many
/// redirects), else the chain joined with `: `.
fn describe(err: &reqwest::Error) -> FetchError {
    FetchError::Transport { message: transport_message(err) }
}

fn transport_message(err: &reqwest::Error) -> String {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(current) = source {
        if let Some(ours) = current.downcast_ref::<FetchError>() {
            return ours.to_string();
        }
        source = current.source();
    }
    let url = err.url().map(|u| format!(" {u}")).unwrap_or_default();
    let mut message = format!("fetch{url} failed");
    let mut source = std::error::Error::source(err);
    while let Some(current) = source {
        let text = current.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = current.source();
    }
    if err.is_timeout() && !message.contains("timed out") {
        message.push_str(": timed out");
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;

    /// A tiny HTTP/1.1 server on 127.0.0.1 that answers each connection with
    /// the response `answer` picks for the request line. Runs on a thread for
    /// `count` connections.
    fn serve(count: usize, answer: impl Fn(&str) -> String + Send + 'static) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(count) {
                let Ok(mut stream) = stream else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&buf).into_owned();
                let first = text.lines().next().unwrap_or("").to_owned();
                let _ = stream.write_all(answer(&first).as_bytes());
            }
        });
        addr
    }

    fn get(url: &str) -> FetchRequest {
        FetchRequest {
            method: "GET".into(),
            url: url.into(),
            headers: vec![("x-test".into(), "1".into())],
            body: Bytes::new(),
            timeout: Duration::from_secs(5),
            room: crate::AnswerRoom::new(usize::MAX),
        }
    }

    fn ok(body: &str) -> String {
        format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn fetches_from_a_local_server_when_nothing_is_blocked() {
        let addr = serve(1, |line| ok(&format!("you sent {line}")));
        let fetcher = HttpFetcher::new(Vec::new()).unwrap();
        let response = fetcher.fetch(get(&format!("http://{addr}/hello?x=1"))).await.unwrap();
        assert_eq!(response.status, 200);
        assert_eq!(&response.body[..], b"you sent GET /hello?x=1 HTTP/1.1");
        assert!(response.headers.contains(&("content-type".into(), "text/plain".into())));
    }

    #[tokio::test]
    async fn refuses_blocked_literals_and_names() {
        let fetcher = HttpFetcher::new(default_blocked()).unwrap();
        for url in [
            "http://127.0.0.1:9/",
            "http://127.8.9.10/",
            "http://0.0.0.0:80/",
            "http://[::1]:80/",
            "http://[::ffff:127.0.0.1]/",
            "http://169.254.169.254/latest/meta-data",
            "http://0x7f.1/",
        ] {
            let err = fetcher.fetch(get(url)).await.unwrap_err().to_string();
            assert!(err.contains("is not allowed"), "{url}: {err}");
            assert!(err.contains("use ctx.cubby"), "{url}: {err}");
        }
        let err = fetcher.fetch(get("http://localhost:9/")).await.unwrap_err().to_string();
        assert!(
            err.starts_with("fetch to 127.0.0.1 is not allowed") || err.starts_with("fetch to ::1 is not allowed"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn refuses_a_blocked_cidr() {
        let fetcher = HttpFetcher::new(vec!["10.213.0.0/16".parse().unwrap()]).unwrap();
        let err = fetcher.fetch(get("http://10.213.4.5:8080/")).await.unwrap_err().to_string();
        assert!(err.starts_with("fetch to 10.213.4.5 is not allowed"), "{err}");
    }

    #[tokio::test]
    async fn refuses_other_schemes() {
        let fetcher = HttpFetcher::new(Vec::new()).unwrap();
        let err = fetcher.fetch(get("file:///etc/passwd")).await.unwrap_err().to_string();
        assert!(err.contains("only http and https"), "{err}");
    }

    #[tokio::test]
    async fn checks_every_redirect_hop() {
        // The server is reached by its literal address, which only this
        // fetcher's block list allows; the redirect goes to a blocked one.
        let addr = serve(1, |_| {
            "HTTP/1.1 302 Found\r\nlocation: http://10.213.0.9/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
                .into()
        });
        let fetcher = HttpFetcher::new(vec!["10.213.0.0/16".parse().unwrap()]).unwrap();
        let err = fetcher.fetch(get(&format!("http://{addr}/"))).await.unwrap_err().to_string();
        assert!(err.starts_with("fetch to 10.213.0.9 is not allowed"), "{err}");
    }

    #[tokio::test]
    async fn follows_redirects_up_to_the_limit() {
        let addr = serve(MAX_REDIRECTS + 2, |line| {
            let n: usize =
                line.split_whitespace().nth(1).and_then(|p| p.trim_start_matches('/').parse().ok()).unwrap_or(0);
            format!("HTTP/1.1 302 Found\r\nlocation: /{}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n", n + 1)
        });
        let fetcher = HttpFetcher::new(Vec::new()).unwrap();
        let err = fetcher.fetch(get(&format!("http://{addr}/0"))).await.unwrap_err().to_string();
        assert!(err.contains("more than 5 redirects"), "{err}");
    }

    #[tokio::test]
    async fn caps_the_body_and_times_out() {
        let addr = serve(1, |_| ok(&"x".repeat(2000)));
        let fetcher = HttpFetcher::new(Vec::new()).unwrap().with_max_body(1000);
        let err = fetcher.fetch(get(&format!("http://{addr}/"))).await.unwrap_err().to_string();
        assert!(err.contains("larger than 1000 bytes"), "{err}");

        // A server that accepts and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let mut request = get(&format!("http://{addr}/"));
        request.timeout = Duration::from_millis(200);
        let err = fetcher.fetch(request).await.unwrap_err().to_string();
        assert!(err.contains("timed out"), "{err}");
        drop(listener);
    }

    #[test]
    fn guarded_ranges_are_refused_but_for_the_operators_exceptions_and_host_addresses_always() {
        let list = BlockList::new(Destinations {
            blocked: vec!["10.213.0.0/16".parse().unwrap()],
            guarded: vec!["10.0.0.0/8".parse().unwrap(), "169.254.0.0/16".parse().unwrap()],
            allowed: vec!["10.0.0.0/8".parse().unwrap()],
            host_addresses: true,
        });
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(list.blocks(ip("169.254.169.254")) && list.blocks(ip("::ffff:169.254.169.254")));
        assert!(!list.blocks(ip("10.1.2.3")), "the operator's exception");
        assert!(list.blocks(ip("10.213.0.5")), "an exception never opens an always-blocked range");
        assert!(list.blocks(ip("127.0.0.1")), "loopback is a host address");
        // Every address of this host, whatever its range.
        let own: Vec<IpAddr> = nix::ifaddrs::getifaddrs()
            .unwrap()
            .filter_map(|ifa| ifa.address.and_then(|a| a.as_sockaddr_in().map(|v4| IpAddr::V4(v4.ip()))))
            .collect();
        assert!(!own.is_empty());
        for addr in own {
            assert!(list.blocks(addr), "{addr} is this host's");
        }
        assert!(!list.blocks(ip("93.184.216.34")), "the world stays open");
        // The IPv6 private and NAT64 ranges are in the defaults.
        let defaults = BlockList::new(default_blocked().into());
        assert!(defaults.blocks(ip("fd00::1")) && defaults.blocks(ip("64:ff9b::a9fe:a9fe")));
    }

    #[test]
    fn mapped_addresses_are_blocked_like_their_ipv4() {
        let list = BlockList::new(default_blocked().into());
        assert!(list.blocks("::ffff:127.0.0.1".parse().unwrap()));
        assert!(list.blocks("::".parse().unwrap()));
        assert!(list.blocks("fe80::1".parse().unwrap()));
        assert!(!list.blocks("93.184.216.34".parse().unwrap()));
        assert!(!list.blocks("2606:2800::1".parse().unwrap()));
    }
}
