//! `GET /sse`: a short Server-Sent Events stream (3 events, ~100 ms apart).
//!
//! tiny_http's `Response` buffers chunked bodies in 8 KiB chunks, which would
//! deliver all events at once; so the response is written by hand on the raw
//! connection writer, flushing after every event.

use std::io::{self, Write};
use std::thread;
use std::time::Duration;

use tiny_http::{HTTPVersion, Request};

use crate::routes::log_io_error;

/// Number of events per stream.
pub const EVENTS: u32 = 3;
/// Pause between two events.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// Serve the stream on its own thread.
pub fn spawn(req: Request) {
    let spawned = thread::Builder::new().name("sse".into()).spawn(move || stream(req));
    if let Err(err) = spawned {
        eprintln!("cubby-demo: cannot start sse thread: {err}");
    }
}

fn stream(req: Request) {
    let chunked = *req.http_version() >= HTTPVersion(1, 1);
    let mut writer = req.into_writer();
    if let Err(err) = write_stream(&mut writer, chunked, INTERVAL) {
        log_io_error("sse", &err);
    }
}

/// Write the whole response (head + events); chunked for HTTP/1.1 clients,
/// close-delimited for HTTP/1.0 ones.
fn write_stream(w: &mut dyn Write, chunked: bool, interval: Duration) -> io::Result<()> {
    let framing = if chunked { "Transfer-Encoding: chunked\r\n" } else { "Connection: close\r\n" };
    write!(
        w,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
         Cache-Control: no-cache\r\n{framing}\r\n"
    )?;
    w.flush()?;
    for n in 1..=EVENTS {
        if n > 1 {
            thread::sleep(interval);
        }
        let event = format!("data: {n}\n\n");
        if chunked {
            write!(w, "{:X}\r\n{event}\r\n", event.len())?;
        } else {
            w.write_all(event.as_bytes())?;
        }
        w.flush()?;
    }
    if chunked {
        w.write_all(b"0\r\n\r\n")?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(chunked: bool) -> String {
        let mut out = Vec::new();
        write_stream(&mut out, chunked, Duration::ZERO).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn chunked_stream_is_well_formed() {
        let out = render(true);
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(head.contains("Content-Type: text/event-stream"));
        assert!(head.contains("Transfer-Encoding: chunked"));
        assert_eq!(body, "9\r\ndata: 1\n\n\r\n9\r\ndata: 2\n\n\r\n9\r\ndata: 3\n\n\r\n0\r\n\r\n");
    }

    #[test]
    fn http10_stream_is_close_delimited() {
        let out = render(false);
        let (head, body) = out.split_once("\r\n\r\n").unwrap();
        assert!(head.contains("Connection: close"));
        assert_eq!(body, "data: 1\n\ndata: 2\n\ndata: 3\n\n");
    }
}
