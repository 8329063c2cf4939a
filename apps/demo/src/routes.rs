//! The demo's HTTP routes: `/` (visit counter), `/healthz`, `/headers`
//! (what the app received), `/echo` (the length of the body it read), `/sse` (a short event stream) and `/ws`
//! (WebSocket echo). Anything else answers 404 in JSON.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use futures::Stream;
use serde_json::{Value, json};

use crate::db::VisitCounter;

/// Number of events per `/sse` stream.
pub const SSE_EVENTS: u32 = 3;
/// Pause between two events.
pub const SSE_INTERVAL: Duration = Duration::from_millis(100);

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

/// Every route of the demo.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/healthz", get(|| async { "ok" }))
        .route("/headers", get(headers))
        .route("/echo", axum::routing::any(echo_body))
        .route("/sse", get(sse))
        .route("/ws", get(ws))
        .fallback(|| async { (StatusCode::NOT_FOUND, Json(json!({"error": "not found"}))) })
        .with_state(app)
}

async fn index(State(app): State<Arc<App>>) -> Response {
    let counted = Arc::clone(&app);
    match tokio::task::spawn_blocking(move || counted.counter.increment()).await {
        Ok(Ok(visits)) => Json(json!({
            "hostname": hostname(),
            "greeting": app.greeting,
            "visits": visits,
            "pid": std::process::id(),
            "port": app.port,
        }))
        .into_response(),
        Ok(Err(err)) => {
            eprintln!("cubby-demo: visit counter: {err}");
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "database error"}))).into_response()
        }
        Err(err) => {
            eprintln!("cubby-demo: visit counter task: {err}");
            (StatusCode::INTERNAL_SERVER_ERROR, Json(json!({"error": "internal error"}))).into_response()
        }
    }
}

/// Echoes what the app received: its request headers and query string.
async fn headers(headers: HeaderMap, RawQuery(query): RawQuery) -> Json<Value> {
    let headers: Vec<Value> =
        headers.iter().map(|(k, v)| json!([k.as_str(), String::from_utf8_lossy(v.as_bytes())])).collect();
    Json(json!({"headers": headers, "query": query.unwrap_or_default()}))
}

/// Reads the whole request body and says how long it was.
async fn echo_body(body: axum::body::Bytes) -> Json<Value> {
    Json(json!({"bytes": body.len()}))
}

async fn sse() -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let events = futures::stream::unfold(1, |n| async move {
        if n > SSE_EVENTS {
            return None;
        }
        if n > 1 {
            tokio::time::sleep(SSE_INTERVAL).await;
        }
        Some((Ok(Event::default().data(n.to_string())), n + 1))
    });
    Sse::new(events)
}

async fn ws(upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(echo)
}

/// Echoes text and binary messages until the peer closes.
async fn echo(mut socket: WebSocket) {
    while let Some(Ok(msg)) = socket.recv().await {
        let reply = match msg {
            Message::Text(_) | Message::Binary(_) => msg,
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if socket.send(reply).await.is_err() {
            break;
        }
    }
}

fn hostname() -> String {
    nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default()
}
