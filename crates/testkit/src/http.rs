//! HTTP through the daemon's proxy: container URLs use `*.localhost`
//! names, so requests go to the proxy's address with the URL's host in the
//! `Host` header (as a browser resolving `*.localhost` would do).

use std::net::SocketAddr;
use std::time::Duration;

/// A response, as a test sees it.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    /// The body as JSON (`Null` if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// `GET url` through the proxy at `proxy`.
pub fn http_get(proxy: SocketAddr, url: &str) -> HttpResponse {
    http_request(proxy, "GET", url, &[], None)
}

/// Any request to `url` through the proxy at `proxy`.
pub fn http_request(
    proxy: SocketAddr,
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> HttpResponse {
    let rest = url.strip_prefix("http://").expect("an http:// URL");
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let mut req =
        ureq::http::Request::builder().method(method).uri(format!("http://{proxy}{path}")).header("Host", host);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(body.map(<[u8]>::to_vec).unwrap_or_default()).expect("request builds");
    let mut resp = agent.run(req).unwrap_or_else(|e| panic!("{method} {url} through {proxy}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    HttpResponse { status, headers, body }
}
