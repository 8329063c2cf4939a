//! One HTTP/1.1 exchange over a TCP connection: the request line and
//! headers, `Connection: close`, and the response read to its end (by
//! `Content-Length`, chunked, or until the server closes).

use std::fmt;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Largest response read.
const MAX_RESPONSE: usize = 256 << 20;

/// Why no response came.
#[derive(Debug)]
pub enum Failure {
    Resolve(String),
    Refused(String),
    TimedOut(String),
    Other(String),
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Resolve(m) => write!(f, "could not resolve the host: {m}"),
            Self::Refused(m) => write!(f, "connection refused: {m}"),
            Self::TimedOut(m) => write!(f, "timed out: {m}"),
            Self::Other(m) => write!(f, "{m}"),
        }
    }
}

fn classify(context: &str, e: &std::io::Error) -> Failure {
    use std::io::ErrorKind;
    let message = format!("{context}: {e}");
    match e.kind() {
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset | ErrorKind::HostUnreachable => {
            Failure::Refused(message)
        }
        ErrorKind::TimedOut | ErrorKind::WouldBlock => Failure::TimedOut(message),
        // ENETUNREACH and EHOSTUNREACH from an ICMP answer: a refusal too.
        _ if matches!(e.raw_os_error(), Some(101 | 113)) => Failure::Refused(message),
        _ => Failure::Other(message),
    }
}

/// A request to send.
#[derive(Debug)]
pub struct Request {
    pub url: String,
    host: String,
    port: u16,
    target: String,
    method: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Duration,
}

/// A response read in full.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Status line and headers, as received.
    pub head: Vec<u8>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn new(
        url: &str,
        method: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Self, String> {
        let rest = url.strip_prefix("http://").ok_or_else(|| format!("`{url}`: only http:// URLs are supported"))?;
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) if rest.as_bytes()[i] == b'/' => (&rest[..i], rest[i..].to_string()),
            Some(i) => (&rest[..i], format!("/{}", &rest[i..])),
            None => (rest, "/".to_string()),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => {
                (h, p.parse::<u16>().map_err(|_| format!("`{url}`: bad port `{p}`"))?)
            }
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || method.is_empty() || !method.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(format!("`{url}`: no host, or a bad method"));
        }
        Ok(Self { url: url.to_string(), host: host.to_string(), port, target, method, headers, body, timeout })
    }

    fn connect(&self, deadline: Instant) -> Result<TcpStream, Failure> {
        let addrs: Vec<SocketAddr> = (self.host.as_str(), self.port)
            .to_socket_addrs()
            .map_err(|e| Failure::Resolve(format!("{}: {e}", self.host)))?
            .collect();
        let mut last = Failure::Resolve(format!("{} has no address", self.host));
        for addr in addrs {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(Failure::TimedOut(format!("connecting to {addr}")));
            }
            match TcpStream::connect_timeout(&addr, left) {
                Ok(stream) => return Ok(stream),
                Err(e) => last = classify(&format!("connecting to {addr}"), &e),
            }
        }
        Err(last)
    }

    /// Sends the request and reads the whole response within the timeout.
    pub fn send(&self) -> Result<Response, Failure> {
        let deadline = Instant::now() + self.timeout;
        let mut stream = self.connect(deadline)?;
        let io = |what: &'static str| move |e: std::io::Error| classify(what, &e);
        let left = || deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1));
        stream.set_write_timeout(Some(left())).map_err(io("setting a timeout"))?;
        let host = if self.port == 80 { self.host.clone() } else { format!("{}:{}", self.host, self.port) };
        let mut head = format!(
            "{} {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: cubby-fetch\r\nAccept: */*\r\nConnection: close\r\n",
            self.method, self.target
        );
        if !self.body.is_empty() || !matches!(self.method.as_str(), "GET" | "HEAD") {
            head.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).map_err(io("sending the request"))?;
        stream.write_all(&self.body).map_err(io("sending the body"))?;

        let mut reader = BufReader::new(stream);
        let mut response_head = Vec::new();
        let mut status = None;
        let mut length = None;
        let mut chunked = false;
        loop {
            reader.get_ref().set_read_timeout(Some(left())).map_err(io("setting a timeout"))?;
            let mut line = Vec::new();
            let n = reader.read_until(b'\n', &mut line).map_err(io("reading the answer"))?;
            if n == 0 {
                return Err(Failure::Other("the server closed the connection before answering".into()));
            }
            response_head.extend_from_slice(&line);
            if response_head.len() > 64 << 10 {
                return Err(Failure::Other("the response headers are too long".into()));
            }
            let text = String::from_utf8_lossy(&line);
            let text = text.trim_end();
            if status.is_none() {
                status = text.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok());
                if status.is_none() {
                    return Err(Failure::Other(format!("not an HTTP answer: `{text}`")));
                }
                continue;
            }
            if text.is_empty() {
                break;
            }
            if let Some((name, value)) = text.split_once(':') {
                let (name, value) = (name.trim().to_ascii_lowercase(), value.trim());
                if name == "content-length" {
                    length = value.parse::<usize>().ok();
                } else if name == "transfer-encoding" && value.to_ascii_lowercase().contains("chunked") {
                    chunked = true;
                }
            }
        }
        let status = status.unwrap_or(0);
        let no_body = self.method == "HEAD" || status == 204 || status == 304 || (100..200).contains(&status);
        let mut body = Vec::new();
        reader.get_ref().set_read_timeout(Some(left())).map_err(io("setting a timeout"))?;
        if no_body {
            // Nothing follows the head.
        } else if chunked {
            read_chunked(&mut reader, &mut body, &left)?;
        } else if let Some(n) = length {
            if n > MAX_RESPONSE {
                return Err(Failure::Other(format!("the answer is larger than {MAX_RESPONSE} bytes")));
            }
            body.resize(n, 0);
            reader.read_exact(&mut body).map_err(io("reading the body"))?;
        } else {
            reader.take(MAX_RESPONSE as u64).read_to_end(&mut body).map_err(io("reading the body"))?;
        }
        Ok(Response { status, head: response_head, body })
    }
}

fn read_chunked(
    reader: &mut BufReader<TcpStream>,
    body: &mut Vec<u8>,
    left: &dyn Fn() -> Duration,
) -> Result<(), Failure> {
    let io = |what: &'static str| move |e: std::io::Error| classify(what, &e);
    loop {
        reader.get_ref().set_read_timeout(Some(left())).map_err(io("setting a timeout"))?;
        let mut size_line = String::new();
        reader.read_line(&mut size_line).map_err(io("reading a chunk"))?;
        let size_hex = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| Failure::Other(format!("bad chunk size `{}`", size_line.trim())))?;
        if size == 0 {
            return Ok(());
        }
        if body.len() + size > MAX_RESPONSE {
            return Err(Failure::Other(format!("the answer is larger than {MAX_RESPONSE} bytes")));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..]).map_err(io("reading a chunk"))?;
        let mut crlf = [0u8; 2];
        reader.read_exact(&mut crlf).map_err(io("reading a chunk"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(url: &str) -> Result<Request, String> {
        Request::new(url, "GET".into(), Vec::new(), Vec::new(), Duration::from_secs(1))
    }

    #[test]
    fn urls() {
        let r = req("http://10.0.0.2:8080/a/b?x=1").unwrap();
        assert_eq!((r.host.as_str(), r.port, r.target.as_str()), ("10.0.0.2", 8080, "/a/b?x=1"));
        let r = req("http://example.com").unwrap();
        assert_eq!((r.host.as_str(), r.port, r.target.as_str()), ("example.com", 80, "/"));
        let r = req("http://h?q").unwrap();
        assert_eq!(r.target, "/?q");
        let r = req("http://[::1]:81/").unwrap();
        assert_eq!((r.host.as_str(), r.port), ("::1", 81));
        assert!(req("https://x/").is_err() && req("http://:80/").is_err() && req("http://h:99999/").is_err());
    }
}
