//! Request routing and the small plain handlers (`/`, `/healthz`, 404).
//!
//! Streaming (`/sse`) and WebSocket (`/ws`) requests are handed to their own
//! modules, which run them on dedicated threads so workers stay free.

use std::io;

use serde_json::{Value, json};
use tiny_http::{Header, Method, Request, Response};

use crate::db::VisitCounter;
use crate::{sse, ws};

/// Shared state of all request handlers.
#[derive(Debug)]
pub struct App {
    /// Persistent visit counter.
    pub counter: VisitCounter,
    /// Value of `GREETING`.
    pub greeting: String,
    /// Port the server listens on.
    pub port: u16,
}

/// Route one request and answer it.
pub fn handle(app: &App, req: Request) {
    let path = req.url().split(['?', '#']).next().unwrap_or_default();
    let route = if *req.method() == Method::Get { path } else { "" };
    match route {
        "/" => index(app, req),
        "/healthz" => respond(req, text(200, "ok")),
        "/sse" => sse::spawn(req),
        "/ws" => ws::accept(req),
        _ => respond(req, json_response(404, &json!({"error": "not found"}))),
    }
}

fn index(app: &App, req: Request) {
    let response = match app.counter.increment() {
        Ok(visits) => json_response(
            200,
            &json!({
                "hostname": hostname(),
                "greeting": app.greeting,
                "visits": visits,
                "pid": std::process::id(),
                "port": app.port,
            }),
        ),
        Err(err) => {
            eprintln!("cubby-demo: visit counter: {err}");
            json_response(500, &json!({"error": "database error"}))
        }
    };
    respond(req, response);
}

fn hostname() -> String {
    nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Build a header from static, known-valid ASCII parts.
pub fn header(name: &str, value: &str) -> Header {
    Header::from_bytes(name.as_bytes(), value.as_bytes()).expect("header is valid ASCII")
}

/// A JSON response with the given status.
pub fn json_response(status: u16, body: &Value) -> Response<io::Cursor<Vec<u8>>> {
    Response::from_data(body.to_string().into_bytes())
        .with_status_code(status)
        .with_header(header("Content-Type", "application/json"))
}

fn text(status: u16, body: &str) -> Response<io::Cursor<Vec<u8>>> {
    Response::from_data(body.as_bytes().to_vec())
        .with_status_code(status)
        .with_header(header("Content-Type", "text/plain; charset=utf-8"))
}

/// Send `response`, logging failures other than the client going away.
pub fn respond<R: io::Read>(req: Request, response: Response<R>) {
    if let Err(err) = req.respond(response) {
        log_io_error("response", &err);
    }
}

/// Log an I/O error unless it just means the client disconnected.
pub fn log_io_error(what: &str, err: &io::Error) {
    use io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, UnexpectedEof};
    if !matches!(err.kind(), BrokenPipe | ConnectionAborted | ConnectionReset | UnexpectedEof) {
        eprintln!("cubby-demo: {what}: {err}");
    }
}
