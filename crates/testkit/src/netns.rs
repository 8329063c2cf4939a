//! Network test helpers: run code inside a network namespace, and an
//! "outside host" (a namespace of the test's own, with an address outside
//! the container subnet) that serves TCP and UDP. Traffic only ever goes
//! to addresses the test made.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Runs `f` on a thread that has joined the network namespace at `netns`.
pub fn in_netns<T: Send + 'static>(netns: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let file = std::fs::File::open(netns).unwrap_or_else(|e| panic!("open {}: {e}", netns.display()));
    std::thread::spawn(move || {
        nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns into the namespace");
        f()
    })
    .join()
    .expect("netns thread")
}

/// How a connection attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Connected, and read this banner.
    Open(String),
    /// Refused at once (RST, or ICMP unreachable).
    Refused,
    /// No answer within the wait.
    TimedOut,
    /// Some other error.
    Other(String),
}

/// Connects over TCP to `to` from inside `netns` (optionally from `from`),
/// waiting at most `wait`, and reads a line.
pub fn tcp_probe(netns: &Path, from: Option<Ipv4Addr>, to: SocketAddr, wait: Duration) -> Outcome {
    in_netns(netns, move || {
        let stream = match from {
            None => TcpStream::connect_timeout(&to, wait),
            Some(src) => socket2_connect(src, to, wait),
        };
        match stream {
            Ok(mut s) => {
                let _ = s.set_read_timeout(Some(wait));
                let mut buf = [0u8; 256];
                let n = s.read(&mut buf).unwrap_or(0);
                Outcome::Open(String::from_utf8_lossy(&buf[..n]).trim().to_string())
            }
            Err(e) => classify(&e),
        }
    })
}

fn socket2_connect(src: Ipv4Addr, to: SocketAddr, wait: Duration) -> std::io::Result<TcpStream> {
    // Bind before connect, to send from a chosen source address.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    socket.bind(&SocketAddr::from((src, 0)).into())?;
    socket.connect_timeout(&to.into(), wait)?;
    Ok(socket.into())
}

fn classify(e: &std::io::Error) -> Outcome {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset => Outcome::Refused,
        std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Outcome::TimedOut,
        // EHOSTUNREACH: an ICMP host-unreachable answer, which is a refusal too.
        _ if e.raw_os_error() == Some(113) => Outcome::Refused,
        _ => Outcome::Other(e.to_string()),
    }
}

/// Sends one UDP datagram to `to` from inside `netns` and waits for the echo.
pub fn udp_probe(netns: &Path, to: SocketAddr, wait: Duration) -> Outcome {
    in_netns(netns, move || {
        let socket = UdpSocket::bind("0.0.0.0:0").expect("bind udp");
        socket.set_read_timeout(Some(wait)).expect("timeout");
        socket.connect(to).expect("connect udp");
        if let Err(e) = socket.send(b"ping") {
            return classify(&e);
        }
        let mut buf = [0u8; 64];
        match socket.recv(&mut buf) {
            Ok(n) => Outcome::Open(String::from_utf8_lossy(&buf[..n]).to_string()),
            Err(e) => classify(&e),
        }
    })
}

/// Sends one UDP datagram to `to` from inside `netns` (from `from` when
/// given), without waiting for anything: for counting what arrives.
pub fn udp_send(netns: &Path, from: Option<Ipv4Addr>, to: SocketAddr, payload: &[u8]) {
    let payload = payload.to_vec();
    in_netns(netns, move || {
        let socket = UdpSocket::bind((from.unwrap_or(Ipv4Addr::UNSPECIFIED), 0)).expect("bind udp");
        let _ = socket.send_to(&payload, to);
    });
}

/// A namespace outside the container subnet, linked to the host by a veth.
#[derive(Debug)]
pub struct OutsideHost {
    pub name: String,
    pub netns: PathBuf,
    /// The outside host's address.
    pub addr: Ipv4Addr,
    /// The host's address on the link.
    pub host_addr: Ipv4Addr,
    host_if: String,
    stop: Arc<AtomicBool>,
    servers: Vec<JoinHandle<()>>,
}

/// A third octet `x` such that no host address is in `a.b.x.0/24`.
fn free_link([a, b]: [u8; 2]) -> u8 {
    let out = Command::new("ip").args(["-4", "-o", "addr", "show"]).output().expect("run ip");
    let text = String::from_utf8_lossy(&out.stdout);
    let stem = format!("{a}.{b}.");
    let used: std::collections::HashSet<u8> = text
        .split_whitespace()
        .filter_map(|w| w.strip_prefix(&stem))
        .filter_map(|rest| rest.split('.').next()?.parse().ok())
        .collect();
    (1..=u8::MAX).find(|x| !used.contains(x)).unwrap_or_else(|| panic!("a free /30 in {a}.{b}.0.0/16"))
}

fn run(cmd: &mut Command) {
    let out = cmd.output().expect("run ip");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
}

impl OutsideHost {
    /// Makes the namespace `o<tag>` and a /30 in 198.18.0.0/16 for it,
    /// one that no link of the host has yet (two tests given the same /30
    /// would route each other's traffic to the wrong namespace).
    /// `container_subnet` is routed back through the host, so the outside
    /// host can also try to reach containers (ingress).
    pub fn new(tag: &str, container_subnet: &str) -> Self {
        Self::in_range(tag, container_subnet, [198, 18])
    }

    /// [`OutsideHost::new`] with its /30 in `a.b.0.0/16` (a private or
    /// guarded range, to test what containers must not reach).
    pub fn in_range(tag: &str, container_subnet: &str, range: [u8; 2]) -> Self {
        let name = format!("o{tag}");
        let host_if = format!("o{tag}h");
        let peer_if = format!("o{tag}n");
        // Leftovers of an earlier run with the same tag, if any.
        let _ = Command::new("ip").args(["netns", "del", &name]).stderr(std::process::Stdio::null()).status();
        let _ = Command::new("ip").args(["link", "del", &host_if]).stderr(std::process::Stdio::null()).status();
        run(Command::new("ip").args(["netns", "add", &name]));
        run(Command::new("ip")
            .args(["link", "add", &host_if, "type", "veth", "peer", "name", &peer_if, "netns", &name]));
        // Choosing and taking the /30 is one step for the tests of this process.
        static LINKS: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let taken = LINKS.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let link = free_link(range);
        let host_addr = Ipv4Addr::new(range[0], range[1], link, 1);
        let addr = Ipv4Addr::new(range[0], range[1], link, 2);
        run(Command::new("ip").args(["addr", "add", &format!("{host_addr}/30"), "dev", &host_if]));
        drop(taken);
        run(Command::new("ip").args(["link", "set", &host_if, "up"]));
        run(Command::new("ip").args(["-n", &name, "addr", "add", &format!("{addr}/30"), "dev", &peer_if]));
        run(Command::new("ip").args(["-n", &name, "link", "set", &peer_if, "up"]));
        run(Command::new("ip").args(["-n", &name, "link", "set", "lo", "up"]));
        run(Command::new("ip").args(["-n", &name, "route", "add", container_subnet, "via", &host_addr.to_string()]));
        Self {
            netns: PathBuf::from(format!("/run/netns/{name}")),
            name,
            addr,
            host_addr,
            host_if,
            stop: Arc::new(AtomicBool::new(false)),
            servers: Vec::new(),
        }
    }

    /// Serves TCP on `port`: each connection gets `banner` and is closed.
    pub fn serve_tcp(&mut self, port: u16, banner: &str) {
        let netns = std::fs::File::open(&self.netns).expect("open netns");
        let stop = Arc::clone(&self.stop);
        let banner = format!("{banner}\n");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        self.servers.push(std::thread::spawn(move || {
            nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let listener = TcpListener::bind(("0.0.0.0", port)).expect("bind tcp");
            listener.set_nonblocking(true).expect("nonblocking");
            ready_tx.send(()).expect("ready");
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.write_all(banner.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }));
        ready_rx.recv_timeout(Duration::from_secs(5)).expect("tcp server ready");
    }

    /// Serves HTTP/1.1 on `port`: every request gets 200 with `body` (and
    /// `x-seen-method` set to its method), and the connection is closed.
    pub fn serve_http(&mut self, port: u16, body: &str) {
        let netns = std::fs::File::open(&self.netns).expect("open netns");
        let stop = Arc::clone(&self.stop);
        let body = body.to_string();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        self.servers.push(std::thread::spawn(move || {
            nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let listener = TcpListener::bind(("0.0.0.0", port)).expect("bind tcp");
            listener.set_nonblocking(true).expect("nonblocking");
            ready_tx.send(()).expect("ready");
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                        let mut head = Vec::new();
                        let mut byte = [0u8; 1];
                        while !head.ends_with(b"\r\n\r\n") && head.len() < 16384 {
                            match std::io::Read::read(&mut s, &mut byte) {
                                Ok(1) => head.push(byte[0]),
                                _ => break,
                            }
                        }
                        let method = String::from_utf8_lossy(&head).split(' ').next().unwrap_or("").to_string();
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\nx-seen-method: {method}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                        let _ = s.write_all(reply.as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }));
        ready_rx.recv_timeout(Duration::from_secs(5)).expect("http server ready");
    }

    /// Answers every UDP datagram on `port` with what `answer` makes of
    /// it (nothing for `None`), on a thread inside the namespace.
    fn serve_udp_with(
        &mut self,
        what: &str,
        port: u16,
        mut answer: impl FnMut(&[u8]) -> Option<Vec<u8>> + Send + 'static,
    ) {
        let netns = std::fs::File::open(&self.netns).expect("open netns");
        let stop = Arc::clone(&self.stop);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        self.servers.push(std::thread::spawn(move || {
            nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let socket = UdpSocket::bind(("0.0.0.0", port)).expect("bind udp");
            socket.set_read_timeout(Some(Duration::from_millis(50))).expect("timeout");
            ready_tx.send(()).expect("ready");
            let mut buf = [0u8; 512];
            while !stop.load(Ordering::Relaxed) {
                if let Ok((n, peer)) = socket.recv_from(&mut buf)
                    && let Some(reply) = answer(&buf[..n])
                {
                    let _ = socket.send_to(&reply, peer);
                }
            }
        }));
        ready_rx.recv_timeout(Duration::from_secs(5)).unwrap_or_else(|_| panic!("{what} ready"));
    }

    /// Echoes UDP datagrams on `port`, prefixed with `echo:`.
    pub fn serve_udp(&mut self, port: u16) {
        self.serve_udp_with("udp echo", port, |datagram| Some([b"echo:", datagram].concat()));
    }

    /// Records the payload of every UDP datagram that reaches `port`:
    /// proof of what crossed the host (sources are masqueraded on the way,
    /// so the payload says who sent it).
    pub fn record_udp(&mut self, port: u16) -> Arc<std::sync::Mutex<Vec<String>>> {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        self.serve_udp_with("udp recorder", port, move |datagram| {
            log.lock().expect("udp log").push(String::from_utf8_lossy(datagram).into_owned());
            None
        });
        seen
    }

    /// Accepts TCP on `port` and reads every connection to its end, on a
    /// thread per connection (a sink for throughput measurements). Returns
    /// the shared count of bytes received.
    pub fn serve_sink(&mut self, port: u16) -> Arc<std::sync::atomic::AtomicU64> {
        let netns = std::fs::File::open(&self.netns).expect("open netns");
        let stop = Arc::clone(&self.stop);
        let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let total = Arc::clone(&received);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        self.servers.push(std::thread::spawn(move || {
            nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
            let listener = TcpListener::bind(("0.0.0.0", port)).expect("bind sink");
            listener.set_nonblocking(true).expect("nonblocking");
            ready_tx.send(()).expect("ready");
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let total = Arc::clone(&total);
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                        std::thread::spawn(move || {
                            let mut buf = vec![0u8; 1 << 16];
                            while let Ok(n) = s.read(&mut buf) {
                                if n == 0 {
                                    break;
                                }
                                total.fetch_add(n as u64, Ordering::Relaxed);
                            }
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_micros(200)),
                }
            }
        }));
        ready_rx.recv_timeout(Duration::from_secs(5)).expect("sink ready");
        received
    }

    /// Answers DNS queries on UDP 53 with an A record of `answer` for any name.
    pub fn serve_dns(&mut self, answer: Ipv4Addr) {
        self.serve_udp_with("dns server", 53, move |query| dns_answer(query, answer));
    }
}

/// A minimal DNS answer: the query echoed with one A record (any AAAA or
/// other type gets an empty answer).
fn dns_answer(query: &[u8], answer: Ipv4Addr) -> Option<Vec<u8>> {
    if query.len() < 12 {
        return None;
    }
    // End of the question: the name's labels, then type and class.
    let mut i = 12;
    while i < query.len() && query[i] != 0 {
        i += 1 + usize::from(query[i]);
    }
    let end = i + 5;
    if end > query.len() {
        return None;
    }
    let qtype = u16::from_be_bytes([query[i + 1], query[i + 2]]);
    let mut reply = query[..end].to_vec();
    reply[2] = 0x81; // response, recursion desired
    reply[3] = 0x80; // recursion available, no error
    let is_a = qtype == 1;
    reply[6] = 0;
    reply[7] = u8::from(is_a); // answer count
    reply[8..12].fill(0);
    if is_a {
        reply.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
        reply.extend_from_slice(&answer.octets());
    }
    Some(reply)
}

impl Drop for OutsideHost {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for s in self.servers.drain(..) {
            let _ = s.join();
        }
        let _ = Command::new("ip").args(["link", "del", &self.host_if]).status();
        let _ = Command::new("ip").args(["netns", "del", &self.name]).status();
    }
}
