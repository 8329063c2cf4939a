//! The binary against servers of the test's own on loopback: a body and
//! its status, a refused port, a silent server, and bad usage, each with
//! its exit code.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;
use std::time::{Duration, Instant};

fn fetch(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_cubby-fetch")).args(args).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Serves `answer` to the next `n` connections.
fn serve(answer: &'static str, n: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(n) {
            let mut s = stream.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let _ = s.write_all(answer.as_bytes());
        }
    });
    format!("http://{addr}/x")
}

#[test]
fn bodies_statuses_and_failures_have_their_exit_codes() {
    let ok = serve("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 2);
    assert_eq!(fetch(&["-t", "5", &ok]), (0, "hello".into(), String::new()));
    let (code, out, _) = fetch(&["-i", &ok]);
    assert_eq!(code, 0);
    assert!(out.starts_with("HTTP/1.1 200 OK\r\n") && out.ends_with("\r\n\r\nhello"), "{out}");

    let chunked =
        serve("HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nnot\r\n6\r\n found\r\n0\r\n\r\n", 1);
    let (code, out, err) = fetch(&[&chunked]);
    assert_eq!((code, out.as_str()), (22, "not found"), "{err}");

    // A port nobody listens on: refused at once.
    let closed = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (code, _, err) = fetch(&["-t", "5", &format!("http://{closed}/")]);
    assert_eq!(code, 7, "{err}");

    // A server that accepts and never answers: the timeout, not a hang.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let t0 = Instant::now();
    let (code, _, err) = fetch(&["-t", "0.5", &format!("http://{}/", silent.local_addr().unwrap())]);
    assert_eq!(code, 28, "{err}");
    assert!(t0.elapsed() < Duration::from_secs(5));

    assert_eq!(fetch(&["https://example.com/"]).0, 2);
    assert_eq!(fetch(&[]).0, 2);
    assert_eq!(fetch(&["-t", "nope", &ok]).0, 2);
}
