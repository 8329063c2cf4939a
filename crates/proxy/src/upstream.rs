//! What every path to an app shares: the body type of upstream requests,
//! the shared pool's client type, and the request form that client wants.
//! (Own connections and the forwarding itself build on this; this module
//! depends on neither, so they do not depend on each other.)

use bytes::Bytes;
use http::Request;
use http::uri::{Authority, Scheme, Uri};
use http_body_util::combinators::BoxBody;
use hyper_util::client::legacy::Client;

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type UpstreamBody = BoxBody<Bytes, BoxError>;
pub(crate) type UpstreamClient = Client<crate::connect::Connector, UpstreamBody>;

/// `req` with its origin-form target made absolute
/// (`http://10.0.0.2:8080/path`), as hyper-util's pooled client wants it.
pub(crate) fn absolute(mut req: Request<UpstreamBody>, authority: &Authority) -> Request<UpstreamBody> {
    let mut parts = req.uri().clone().into_parts();
    parts.scheme = Some(Scheme::HTTP);
    parts.authority = Some(authority.clone());
    if let Ok(uri) = Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    req
}
