//! End-to-end tests of the cubby-demo binary over real sockets: each test
//! starts its own server on a free port with a scratch database, and the
//! server is killed on drop even if the test fails. Every wait is bounded.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tungstenite::Message;

const TIMEOUT: Duration = Duration::from_secs(10);

/// A running cubby-demo plus its scratch directory; both cleaned up on drop.
struct Demo {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Demo {
    fn start(greeting: Option<&str>) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cubby-demo-it-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cubby-demo"));
        cmd.env_clear()
            .env("PORT", port.to_string())
            // A not-yet-existing directory: the demo must create it.
            .env("CUBBY_DEMO_DB", dir.join("data/app.db"))
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Some(g) = greeting {
            cmd.env("GREETING", g);
        }
        let child = cmd.spawn().expect("start cubby-demo");
        let demo = Self { child, port, dir };
        demo.wait_ready();
        demo
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Ok((200, _, _)) = try_get(self.port, "/healthz") {
                return;
            }
            assert!(Instant::now() < deadline, "cubby-demo not ready in {TIMEOUT:?}");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn get(&self, path: &str) -> (u16, String, String) {
        try_get(self.port, path).unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), TIMEOUT)?;
    stream.set_read_timeout(Some(TIMEOUT))?;
    stream.set_write_timeout(Some(TIMEOUT))?;
    Ok(stream)
}

/// Raw HTTP/1.1 GET with `Connection: close`; returns (status, head, body),
/// with chunked bodies decoded.
fn try_get(port: u16, path: &str) -> std::io::Result<(u16, String, String)> {
    let mut s = connect(port)?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8(raw).expect("utf-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("complete head");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let chunked = head.to_ascii_lowercase().contains("transfer-encoding: chunked");
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Ok((status, head.to_owned(), body))
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    loop {
        let (size, after) = rest.split_once("\r\n").expect("chunk size line");
        let size = usize::from_str_radix(size.trim(), 16).expect("hex chunk size");
        if size == 0 {
            return out;
        }
        out.push_str(&after[..size]);
        rest = after[size..].strip_prefix("\r\n").expect("chunk CRLF");
    }
}

fn has_header(head: &str, line: &str) -> bool {
    head.lines().any(|l| l.eq_ignore_ascii_case(line))
}

#[test]
fn index_counts_visits_and_reports_greeting() {
    let demo = Demo::start(Some("hello from tests"));
    for expected in [1, 2] {
        let (status, head, body) = demo.get("/");
        assert_eq!(status, 200, "{body}");
        assert!(has_header(&head, "Content-Type: application/json"), "{head}");
        let json: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json["visits"], expected, "{json}");
        assert_eq!(json["greeting"], "hello from tests");
        assert_eq!(json["port"], demo.port);
        assert_eq!(json["pid"], demo.child.id());
        assert!(json["hostname"].as_str().is_some_and(|h| !h.is_empty()));
    }
    // Health checks do not count as visits; query strings are ignored.
    assert_eq!(demo.get("/healthz").0, 200);
    let (_, _, body) = demo.get("/?x=1");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["visits"], 3);
}

#[test]
fn greeting_defaults_to_empty() {
    let demo = Demo::start(None);
    let (_, _, body) = demo.get("/");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["greeting"], "");
}

#[test]
fn healthz_answers_ok() {
    let demo = Demo::start(None);
    let (status, _, body) = demo.get("/healthz");
    assert_eq!((status, body.as_str()), (200, "ok"));
}

#[test]
fn unknown_paths_are_404_json_and_other_methods_405() {
    let demo = Demo::start(None);
    let (status, head, body) = demo.get("/nope");
    assert_eq!(status, 404);
    assert!(has_header(&head, "Content-Type: application/json"), "{head}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), serde_json::json!({"error": "not found"}));

    let mut s = connect(demo.port).unwrap();
    write!(s, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 405") && has_header(&out, "Allow: GET,HEAD"), "{out}");
}

#[test]
fn headers_echoes_what_the_app_received() {
    let demo = Demo::start(None);
    let mut s = connect(demo.port).unwrap();
    write!(s, "GET /headers?a=1 HTTP/1.1\r\nHost: x\r\nX-Test: yes\r\nConnection: close\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let body: Value = serde_json::from_str(out.split_once("\r\n\r\n").unwrap().1).unwrap();
    assert_eq!(body["query"], "a=1");
    assert!(body["headers"].as_array().unwrap().contains(&serde_json::json!(["x-test", "yes"])), "{body}");
}

#[test]
fn sse_streams_three_events_incrementally() {
    let demo = Demo::start(None);
    let mut s = connect(demo.port).unwrap();
    write!(s, "GET /sse HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    let mut first_event_at = None;
    loop {
        let n = s.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        raw.extend_from_slice(&buf[..n]);
        if first_event_at.is_none() && String::from_utf8_lossy(&raw).contains("data: 1\n\n") {
            first_event_at = Some(Instant::now());
        }
    }
    let streamed_for = first_event_at.expect("first event").elapsed();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(has_header(head, "Content-Type: text/event-stream"), "{head}");
    assert_eq!(dechunk(body), "data: 1\n\ndata: 2\n\ndata: 3\n\n");
    // Events 2 and 3 came ~100 ms apart after event 1: not one buffered body.
    assert!(streamed_for >= Duration::from_millis(150), "{streamed_for:?}");
}

#[test]
fn websocket_echoes_messages() {
    let demo = Demo::start(None);
    let stream = connect(demo.port).unwrap();
    let url = format!("ws://127.0.0.1:{}/ws", demo.port);
    let (mut ws, response) = tungstenite::client(url.as_str(), stream).expect("ws handshake");
    assert_eq!(response.status(), 101);
    ws.send(Message::text("hello cubby")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("hello cubby"));
    ws.send(Message::binary(vec![0u8, 1, 2, 255])).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(vec![0u8, 1, 2, 255]));
    ws.close(None).unwrap();
    while ws.read().is_ok() {}

    // Plain GET /ws without upgrade headers is a client error, not a hang.
    assert_eq!(demo.get("/ws").0, 400);
}

#[test]
fn sigterm_stops_the_server_promptly() {
    let mut demo = Demo::start(None);
    let pid = Pid::from_raw(i32::try_from(demo.child.id()).unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = demo.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "cubby-demo ignored SIGTERM");
        thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(status.signal(), Some(Signal::SIGTERM as i32));
}

#[test]
fn invalid_port_fails_fast_with_message() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_cubby-demo")).env("PORT", "not-a-port").stdin(Stdio::null()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("cubby-demo: invalid PORT"), "{stderr}");
}
