//! The proxy's own answers (404, 502, 503): JSON in the API's error shape,
//! or a small HTML page when a browser asks.

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};

pub(crate) type Body = BoxBody<Bytes, hyper::Error>;

pub(crate) fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).map_err(|never| match never {}).boxed()
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// An error answer with a stable `code` and a `message` that says what to do.
/// Marks a response the proxy wrote itself (not an app's), which gets the
/// proxy's security headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProxyMade;

pub(crate) fn error(request_headers: &HeaderMap, status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let wants_html =
        request_headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"));
    let (content_type, body) = if wants_html {
        (
            "text/html; charset=utf-8",
            format!(
                "<!doctype html><title>{status}</title><h1>{}</h1><p>{}</p><p><small>{code}</small></p>\n",
                escape(status.canonical_reason().unwrap_or("Error")),
                escape(message)
            ),
        )
    } else {
        ("application/json", cubby_model::ErrorBody::new(code, message).to_json())
    };
    let mut response = Response::new(full(body));
    *response.status_mut() = status;
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response.extensions_mut().insert(ProxyMade);
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        // The body was not read to its end: this connection is done.
        response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}
