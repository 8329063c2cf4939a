//! `GET /ws`: WebSocket upgrade (RFC 6455 handshake via tiny_http's
//! `Request::upgrade`) and an echo loop on a dedicated thread.

use std::io::{Read, Write};
use std::thread;

use serde_json::json;
use tiny_http::{Request, Response};
use tungstenite::handshake::derive_accept_key;
use tungstenite::protocol::{Role, WebSocket};
use tungstenite::{Error, Message};

use crate::routes::{header, json_response, respond};

/// Validate the upgrade request, answer 101 and start echoing.
pub fn accept(req: Request) {
    let header_value = |name: &str| {
        req.headers()
            .iter()
            .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str().trim().to_owned())
    };
    let wants_websocket = header_value("Upgrade")
        .is_some_and(|v| v.split(',').any(|token| token.trim().eq_ignore_ascii_case("websocket")));
    let key = header_value("Sec-WebSocket-Key").filter(|k| !k.is_empty());
    let version = header_value("Sec-WebSocket-Version");

    let Some(key) = key.filter(|_| wants_websocket) else {
        let body = json!({"error": "expected a websocket upgrade"});
        return respond(req, json_response(400, &body));
    };
    if version.as_deref() != Some("13") {
        let body = json!({"error": "unsupported websocket version"});
        let response = json_response(426, &body).with_header(header("Sec-WebSocket-Version", "13"));
        return respond(req, response);
    }

    let response = Response::empty(101).with_header(header("Sec-WebSocket-Accept", &derive_accept_key(key.as_bytes())));
    let stream = req.upgrade("websocket", response);
    let spawned = thread::Builder::new().name("ws".into()).spawn(move || echo(stream));
    if let Err(err) = spawned {
        eprintln!("cubby-demo: cannot start websocket thread: {err}");
    }
}

/// Echo text and binary messages until the peer closes or the socket fails.
/// Pings are answered and close handshakes completed by tungstenite itself.
fn echo<S: Read + Write>(stream: S) {
    let mut ws = WebSocket::from_raw_socket(stream, Role::Server, None);
    loop {
        match ws.read() {
            Ok(msg @ (Message::Text(_) | Message::Binary(_))) => {
                if let Err(err) = ws.send(msg) {
                    log(&err);
                    return;
                }
            }
            Ok(_) => {}
            Err(err) => {
                log(&err);
                return;
            }
        }
    }
}

fn log(err: &Error) {
    // Closed sockets, resets and misbehaving peers are routine; stay quiet.
    match err {
        Error::ConnectionClosed | Error::AlreadyClosed | Error::Protocol(_) | Error::Io(_) => {}
        other => eprintln!("cubby-demo: websocket: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    #[test]
    fn echoes_text_and_binary_then_closes() {
        let (server, client) = UnixStream::pair().unwrap();
        let handle = thread::spawn(move || echo(server));
        let mut ws = WebSocket::from_raw_socket(client, Role::Client, None);
        ws.send(Message::text("hello")).unwrap();
        assert_eq!(ws.read().unwrap(), Message::text("hello"));
        ws.send(Message::binary(vec![1u8, 2, 3])).unwrap();
        assert_eq!(ws.read().unwrap(), Message::binary(vec![1u8, 2, 3]));
        ws.close(None).unwrap();
        // Drain until the close handshake completes.
        while ws.read().is_ok() {}
        handle.join().unwrap();
    }
}
