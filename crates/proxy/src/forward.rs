//! Forwarding one request to a container's app: the URI is rewritten to the
//! upstream, hop-by-hop headers are dropped, `X-Forwarded-*` and
//! `X-Real-IP` are set to what the proxy saw (the client's own are
//! dropped, as is `Forwarded`), the body is capped, the wait for the
//! response head is bounded, and the app's cookies stay on its host.
//! WebSocket (and any HTTP/1.1 upgrade) requests keep their upgrade headers
//! and, once the app answers 101, become a tunnel between client and app.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::Duration;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, PathAndQuery, Uri};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;

use crate::affinity::{Affinity, Upstreams};
use crate::body::Guarded;
use crate::error_page::{Body, error};
use crate::upstream::{UpstreamBody, absolute};

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");

/// The client of one downstream connection, and what its requests reuse.
pub(crate) struct Peer {
    pub addr: SocketAddr,
    /// Its address as a header value, made once per connection.
    pub ip: HeaderValue,
    /// The upstream its last request went to, as a URI authority: a
    /// connection's requests nearly always go to one app.
    last_upstream: Mutex<Option<(SocketAddr, Authority)>>,
    /// Its own upstream connection.
    pub affinity: Affinity,
    /// Whether it came over the proxy's TLS listener.
    pub https: bool,
}

impl Peer {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        let ip = HeaderValue::from_str(&addr.ip().to_string()).unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Self { addr, ip, last_upstream: Mutex::new(None), affinity: Affinity::default(), https: false }
    }

    fn authority(&self, upstream: SocketAddr) -> Option<Authority> {
        let mut last = self.last_upstream.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((addr, authority)) = &*last
            && *addr == upstream
        {
            return Some(authority.clone());
        }
        let authority = Authority::try_from(upstream.to_string()).ok()?;
        *last = Some((upstream, authority.clone()));
        Some(authority)
    }
}

/// Headers that describe one hop, not the message (RFC 9110 §7.6.1).
const HOP_BY_HOP: [HeaderName; 7] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
];

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    // Headers named in Connection are hop-by-hop too.
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(HOP_BY_HOP.iter()) {
        headers.remove(name);
    }
    headers.remove(header::UPGRADE);
}

/// Whether the request asks to switch protocols (a WebSocket).
fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("upgrade")))
}

/// Limits of one forward.
pub(crate) struct Limits {
    pub max_body: u64,
    pub head_timeout: Duration,
}

/// Sends `req` to `upstream` and returns its response. `guard` marks the
/// container busy until the response (or the tunnel) ends.
pub(crate) async fn forward(
    upstreams: &Upstreams<'_>,
    mut req: Request<Incoming>,
    upstream: SocketAddr,
    peer: &Peer,
    scheme: &'static str,
    limits: &Limits,
    guard: std::sync::Arc<dyn crate::Traffic>,
) -> Response<Body> {
    // Only `Accept` matters to an error answer (JSON or HTML): keep that,
    // not a copy of every header of every request.
    let mut request_headers = HeaderMap::new();
    if let Some(accept) = req.headers().get(header::ACCEPT) {
        request_headers.insert(header::ACCEPT, accept.clone());
    }
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_body) {
        return error(
            &request_headers,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("the request body is larger than the proxy's limit of {} bytes", limits.max_body),
        );
    }
    let upgrade = is_upgrade(req.headers());
    let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));

    // HTTP/2 carries the host in the `:authority` pseudo-header.
    let original_host = req
        .headers()
        .get(header::HOST)
        .cloned()
        .or_else(|| req.uri().authority().and_then(|a| HeaderValue::from_str(a.as_str()).ok()));
    let Some(authority) = peer.authority(upstream) else {
        return error(&request_headers, StatusCode::BAD_GATEWAY, "bad_upstream", "the container's address is invalid");
    };
    // Origin form (`GET /path`), as apps expect it; only the pool's client
    // wants the absolute form, made for it by `absolute`.
    let target = req.uri().path_and_query().cloned().unwrap_or_else(|| PathAndQuery::from_static("/"));
    let (mut parts, body) = req.into_parts();
    parts.uri = Uri::from(target);
    // Apps are spoken to in HTTP/1.1, whatever the client spoke.
    parts.version = http::Version::HTTP_11;
    let headers = &mut parts.headers;
    match (&original_host, headers.contains_key(header::HOST)) {
        (Some(host), false) => {
            headers.insert(header::HOST, host.clone());
        }
        (None, false) => {
            if let Ok(host) = HeaderValue::from_str(authority.as_str()) {
                headers.insert(header::HOST, host);
            }
        }
        (_, true) => {}
    }
    if upgrade {
        // Keep exactly the upgrade handshake; drop the other hop-by-hop headers.
        let upgrade_value = headers.get(header::UPGRADE).cloned();
        strip_hop_by_hop(headers);
        if let Some(v) = upgrade_value {
            headers.insert(header::UPGRADE, v);
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
        }
    } else {
        strip_hop_by_hop(headers);
    }
    // The client's address as the proxy saw it, never what the client
    // claims: an app that trusts these headers must not be lied to.
    headers.insert(X_FORWARDED_FOR, peer.ip.clone());
    headers.insert(X_REAL_IP, peer.ip.clone());
    headers.remove(header::FORWARDED);
    headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static(scheme));
    if let Some(host) = original_host {
        headers.insert(X_FORWARDED_HOST, host);
    }
    let max = usize::try_from(limits.max_body).unwrap_or(usize::MAX);
    let body: UpstreamBody = Limited::new(body, max).boxed();
    let req = Request::from_parts(parts, body);

    let sent = async {
        if upgrade {
            Ok(upstreams.pool.request(absolute(req, &authority)).await?)
        } else {
            peer.affinity.send(upstreams, upstream, &authority, req).await
        }
    };
    let response = match tokio::time::timeout(limits.head_timeout, sent).await {
        Ok(Ok(response)) => response,
        Ok(Err(e)) => {
            tracing::debug!(%upstream, error = %e, "upstream request failed");
            let too_large = std::iter::successors(Some(&*e as &(dyn std::error::Error + 'static)), |s| s.source())
                .any(|s| s.downcast_ref::<http_body_util::LengthLimitError>().is_some());
            if too_large {
                return error(
                    &request_headers,
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    "the request body is larger than the proxy's limit",
                );
            }
            return error(
                &request_headers,
                StatusCode::BAD_GATEWAY,
                "upstream_unreachable",
                &format!(
                    "nothing answered on port {} of the container: check that the app listens there and that the container's ingress firewall lets the proxy in",
                    upstream.port()
                ),
            );
        }
        Err(_) => {
            return error(
                &request_headers,
                StatusCode::GATEWAY_TIMEOUT,
                "upstream_timeout",
                &format!("the container's app did not answer within {} s", limits.head_timeout.as_secs()),
            );
        }
    };

    if response.status() == StatusCode::SWITCHING_PROTOCOLS
        && let Some(client_upgrade) = client_upgrade
    {
        let mut upstream_response = response;
        let headers = upstream_response.headers().clone();
        let upstream_upgrade = hyper::upgrade::on(&mut upstream_response);
        tokio::spawn(async move {
            match (client_upgrade.await, upstream_upgrade.await) {
                (Ok(client_io), Ok(upstream_io)) => {
                    let (mut a, mut b) = (TokioIo::new(client_io), TokioIo::new(upstream_io));
                    if let Ok((_, to_client)) = tokio::io::copy_bidirectional(&mut a, &mut b).await {
                        guard.sent(to_client);
                    }
                }
                (c, u) => tracing::debug!(client = c.is_ok(), upstream = u.is_ok(), "upgrade failed"),
            }
        });
        let mut out = Response::new(crate::error_page::full(""));
        *out.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
        *out.headers_mut() = headers;
        return out;
    }
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    confine_cookies(&mut parts.headers);
    Response::from_parts(parts, Guarded::new(body.boxed(), guard).boxed())
}

/// Keeps an app's cookies on its own host: every tenant shares the
/// domain, so a `Domain=` attribute would reach (and could shadow) other
/// tenants' cookies. The daemon's claim cookies are not the app's to set.
fn confine_cookies(headers: &mut HeaderMap) {
    if !headers.contains_key(header::SET_COOKIE) {
        return;
    }
    let cookies: Vec<HeaderValue> = headers.get_all(header::SET_COOKIE).iter().cloned().collect();
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        let Ok(text) = cookie.to_str() else { continue };
        let name = text.split(['=', ';']).next().unwrap_or("").trim();
        if crate::access::is_claim_cookie(name) {
            continue;
        }
        let kept: Vec<&str> = text
            .split(';')
            .filter(|attr| !attr.split('=').next().is_some_and(|key| key.trim().eq_ignore_ascii_case("domain")))
            .collect();
        if let Ok(value) = HeaderValue::from_str(kept.join(";").trim()) {
            headers.append(header::SET_COOKIE, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_cookies_stay_on_their_host_and_claim_cookies_are_not_theirs() {
        let mut h = HeaderMap::new();
        for c in [
            "session=abc; Path=/; Domain=localhost; HttpOnly",
            "theme=dark; domain=.localhost",
            "__cubby_claim=decoy; Domain=localhost; Path=/",
            "__Host-cubby_claim=decoy; Path=/; Secure",
            "plain=1",
        ] {
            h.append(header::SET_COOKIE, HeaderValue::from_static(c));
        }
        confine_cookies(&mut h);
        let kept: Vec<&str> = h.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
        assert_eq!(kept, ["session=abc; Path=/; HttpOnly", "theme=dark", "plain=1"]);
    }
}
