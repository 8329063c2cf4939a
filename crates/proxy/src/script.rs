//! Requests to `http://{project}.exec.{domain}/...`: the request's head is
//! handed to the [`ScriptRunner`] first, which routes it and takes a run
//! slot (or refuses at once); only then is the body read, under the cap
//! the runner gives and a read timeout, and the script run. The HTTP of
//! it is here: preflight answers, the error envelope of refusals and
//! failures, `Retry-After`, and the CORS headers of `@cors` scripts.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use crate::error_page::{Body, error, full};
use crate::{Admission, ScriptAnswer, ScriptHead, ScriptOutcome, ScriptRefusal, ScriptRunner};

/// The project of an exec host (`acme.exec.localhost:8080` under
/// `localhost` gives `acme`).
pub fn script_project_of<'a>(host: &'a str, domain: &str) -> Option<&'a str> {
    let host = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let cut = host.len().checked_sub(domain.len() + 1)?;
    let (head, rest) = host.split_at(cut);
    if !rest.starts_with('.') || !rest[1..].eq_ignore_ascii_case(domain) {
        return None;
    }
    let project = head.strip_suffix(".exec").or_else(|| head.strip_suffix(".EXEC"))?;
    (!project.is_empty() && !project.contains('.')).then_some(project)
}

/// How long a client may take to send an admitted request's body.
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn handle(
    runner: &dyn ScriptRunner,
    project: &str,
    req: Request<Incoming>,
    peer: SocketAddr,
    scheme: &str,
) -> Response<Body> {
    let (parts, body) = req.into_parts();
    let host = parts.headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default().to_string();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .filter(|(k, _)| {
            !matches!(k.as_str(), "connection" | "keep-alive" | "te" | "trailer" | "transfer-encoding" | "upgrade")
        })
        .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str().to_string(), v.to_string())))
        .collect();
    headers.retain(|(k, _)| !k.starts_with("x-forwarded-") && k != "forwarded" && k != "x-real-ip");
    headers.push(("x-forwarded-for".into(), peer.ip().to_string()));
    headers.push(("x-forwarded-proto".into(), scheme.to_string()));
    headers.push(("x-forwarded-host".into(), host.clone()));
    let head = ScriptHead {
        method: parts.method.as_str().to_string(),
        url: format!("{scheme}://{host}{path}"),
        headers,
        peer: peer.ip(),
    };
    let admitted = match runner.admit(project, head).await {
        Admission::Run(admitted) => admitted,
        Admission::Preflight { origin } => return preflight(&origin, &parts.headers),
        Admission::Refused { refusal, cors } => return with_cors(refused(&refusal), cors.as_deref()),
    };
    let cors = admitted.cors().map(str::to_string);
    // The route is known and a slot is held: now the body, capped and on
    // a clock (a client that trickles it keeps the slot only so long).
    let max_body = admitted.max_body();
    let declared =
        parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        error(
            &parts.headers,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            &format!("the request body is larger than this script's limit of {max_body} bytes"),
        )
    };
    if declared.is_some_and(|n| n > max_body) {
        return too_large();
    }
    let max = usize::try_from(max_body).unwrap_or(usize::MAX);
    let body: Bytes = match tokio::time::timeout(BODY_READ_TIMEOUT, Limited::new(body, max).collect()).await {
        Ok(Ok(collected)) => collected.to_bytes(),
        Ok(Err(e)) if e.downcast_ref::<http_body_util::LengthLimitError>().is_some() => return too_large(),
        Ok(Err(_)) => {
            return error(&parts.headers, StatusCode::BAD_REQUEST, "bad_request", "the request body could not be read");
        }
        Err(_) => {
            let mut r = error(
                &parts.headers,
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                &format!("the request body did not arrive within {} s", BODY_READ_TIMEOUT.as_secs()),
            );
            r.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    };
    let out = match admitted.run(body).await {
        ScriptOutcome::Answered(answer) => to_response(answer),
        ScriptOutcome::Failed(refusal) => refused(&refusal),
    };
    with_cors(out, cors.as_deref())
}

/// A refusal or failure in the error envelope (always JSON: the client is
/// a program calling a script).
fn refused(refusal: &ScriptRefusal) -> Response<Body> {
    let mut out = Response::new(full(cubby_model::ErrorBody::new(refusal.code, refusal.message.clone()).to_json()));
    *out.status_mut() = StatusCode::from_u16(refusal.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    out.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(seconds) = refusal.retry_after {
        out.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    out
}

/// The answer to a preflight of a script that allows `origin`.
fn preflight(origin: &str, request: &http::HeaderMap) -> Response<Body> {
    let mut out = Response::new(full(Bytes::new()));
    *out.status_mut() = StatusCode::NO_CONTENT;
    let asked = request
        .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("content-type, authorization");
    let h = out.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, PUT, PATCH, DELETE, OPTIONS"));
    if let Ok(asked) = HeaderValue::from_str(asked) {
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked);
    }
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    with_cors(out, Some(origin))
}

/// The script's CORS origin on an answer (replacing the script's own).
fn with_cors(mut out: Response<Body>, origin: Option<&str>) -> Response<Body> {
    let Some(origin) = origin else { return out };
    let Ok(value) = HeaderValue::from_str(origin) else { return out };
    out.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    if origin != "*" {
        out.headers_mut().append(header::VARY, HeaderValue::from_static("Origin"));
    }
    out
}

fn to_response(answer: ScriptAnswer) -> Response<Body> {
    let body = match answer.stream {
        Some(stream) => {
            let frames = futures::StreamExt::map(stream, |chunk| Ok(hyper::body::Frame::data(chunk)));
            BodyExt::boxed(http_body_util::StreamBody::new(frames))
        }
        None => full(answer.body),
    };
    let mut out = Response::new(body);
    *out.status_mut() = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    for (k, v) in answer.headers {
        if let (Ok(name), Ok(value)) = (header::HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(&v)) {
            if matches!(name, header::CONNECTION | header::TRANSFER_ENCODING | header::CONTENT_LENGTH) {
                continue;
            }
            out.headers_mut().append(name, value);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    #[tokio::test]
    async fn refusals_use_the_envelope_and_busy_asks_to_retry() {
        let busy = ScriptRefusal { status: 503, code: "script_busy", message: "retry".into(), retry_after: Some(1) };
        let out = with_cors(refused(&busy), Some("https://app.example"));
        assert_eq!(out.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(out.headers()[header::RETRY_AFTER], "1");
        assert_eq!(out.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "https://app.example");
        assert_eq!(out.headers()[header::VARY], "Origin");
        let body = out.into_body().collect().await.unwrap().to_bytes();
        let parsed: cubby_model::ErrorBody = serde_json::from_slice(&body).unwrap();
        assert_eq!((parsed.error.code.as_str(), parsed.error.message.as_str()), ("script_busy", "retry"));
    }

    #[test]
    fn preflights_echo_the_asked_headers_and_scripts_cannot_override_cors() {
        let mut asked = http::HeaderMap::new();
        asked.insert(header::ACCESS_CONTROL_REQUEST_HEADERS, HeaderValue::from_static("x-sig"));
        let out = preflight("*", &asked);
        assert_eq!(out.status(), StatusCode::NO_CONTENT);
        assert_eq!(out.headers()[header::ACCESS_CONTROL_ALLOW_HEADERS], "x-sig");
        assert_eq!(out.headers()[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
        assert!(out.headers().get(header::VARY).is_none());
        let own = ScriptAnswer {
            status: 200,
            headers: vec![("access-control-allow-origin".into(), "https://evil.example".into())],
            body: Bytes::new(),
            stream: None,
        };
        let out = with_cors(to_response(own), Some("https://app.example"));
        let origins: Vec<_> = out.headers().get_all(header::ACCESS_CONTROL_ALLOW_ORIGIN).iter().collect();
        assert_eq!(origins, ["https://app.example"]);
    }

    #[test]
    fn the_token_comes_from_bearer_or_the_cubby_header() {
        let head = |h: &[(&str, &str)]| ScriptHead {
            method: "POST".into(),
            url: "http://a.exec.localhost/".into(),
            headers: h.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            peer: IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        assert_eq!(head(&[("Authorization", "Bearer s3cret ")]).presented_token(), Some("s3cret"));
        assert_eq!(head(&[("x-cubby-token", "t")]).presented_token(), Some("t"));
        assert_eq!(head(&[("authorization", "Basic abc")]).presented_token(), None);
        assert_eq!(head(&[]).presented_token(), None);
    }

    #[test]
    fn exec_hosts() {
        assert_eq!(script_project_of("acme.exec.localhost:8080", "localhost"), Some("acme"));
        assert_eq!(script_project_of("acme.exec.apps.example.com", "apps.example.com"), Some("acme"));
        assert_eq!(script_project_of("a--acme.localhost", "localhost"), None);
        assert_eq!(script_project_of("x.acme.exec.localhost", "localhost"), None);
        assert_eq!(script_project_of(".exec.localhost", "localhost"), None);
        assert_eq!(script_project_of("acme.exec.evil.com", "localhost"), None);
    }
}
