//! Forwarding one request to a container's app: the URI is rewritten to the
//! upstream, hop-by-hop headers are dropped, `X-Forwarded-*` are set.

use std::net::SocketAddr;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::uri::{Authority, Scheme, Uri};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;

use crate::error_page::{Body, error};

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

pub(crate) type UpstreamClient = Client<HttpConnector, Incoming>;

/// Sends `req` to `upstream` and returns its response.
pub(crate) async fn forward(
    client: &UpstreamClient,
    mut req: Request<Incoming>,
    upstream: SocketAddr,
    peer: SocketAddr,
    scheme: &'static str,
) -> Response<Body> {
    let original_host = req.headers().get(header::HOST).cloned();
    let path = req.uri().path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_else(|| "/".into());
    let authority = match Authority::try_from(upstream.to_string()) {
        Ok(a) => a,
        Err(_) => {
            return error(req.headers(), StatusCode::BAD_GATEWAY, "bad_upstream", "the container's address is invalid");
        }
    };
    let uri = Uri::builder().scheme(Scheme::HTTP).authority(authority).path_and_query(path).build();
    let Ok(uri) = uri else {
        return error(req.headers(), StatusCode::BAD_REQUEST, "bad_request", "the request target is invalid");
    };
    *req.uri_mut() = uri;
    let headers = req.headers_mut();
    strip_hop_by_hop(headers);
    let client_ip = peer.ip().to_string();
    let forwarded_for = match headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prior) => format!("{prior}, {client_ip}"),
        None => client_ip,
    };
    if let Ok(v) = HeaderValue::from_str(&forwarded_for) {
        headers.insert("x-forwarded-for", v);
    }
    headers.insert("x-forwarded-proto", HeaderValue::from_static(scheme));
    if let Some(host) = original_host {
        headers.insert("x-forwarded-host", host);
    }
    let request_headers = req.headers().clone();
    match client.request(req).await {
        Ok(response) => {
            let (mut parts, body) = response.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Response::from_parts(parts, body.boxed())
        }
        Err(e) => {
            tracing::debug!(%upstream, error = %e, "upstream request failed");
            error(
                &request_headers,
                StatusCode::BAD_GATEWAY,
                "upstream_unreachable",
                "the container's app did not answer: check that it listens on its port",
            )
        }
    }
}
