//! URLs: wake latency (stopped → first byte through the proxy) and proxy
//! throughput with `wrk`, side by side in one run: through Cubby, through
//! nginx as a reverse proxy to the same app, and direct to the app.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cubby_model::{AccessMode, CreateContainer, CreateProject};
use cubby_testkit::{Daemon, DaemonOptions, own_session};

use super::{Report, machine, ms};
use crate::stats::summarize;

/// One raw GET; the time to the response's first byte.
pub fn first_byte(proxy: SocketAddr, host: &str, path: &str) -> anyhow::Result<Duration> {
    let t0 = Instant::now();
    let mut s = TcpStream::connect(proxy)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")?;
    let mut byte = [0u8; 1];
    s.read_exact(&mut byte)?;
    let at = t0.elapsed();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest)?;
    if !(byte[0] == b'H' && rest.starts_with(b"TTP/1.1 200")) {
        bail!("{host}{path} did not answer 200: {}", String::from_utf8_lossy(&rest));
    }
    Ok(at)
}

/// What one `wrk` run measured.
pub struct Wrk {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// `wrk` latencies look like `1.23ms`, `845.00us` or `1.02s`.
pub fn parse_latency(text: &str) -> Option<f64> {
    let (num, unit) = text.find(|c: char| c.is_ascii_alphabetic()).map(|i| text.split_at(i))?;
    let v: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => v / 1000.0,
        "ms" => v,
        "s" => v * 1000.0,
        "m" => v * 60_000.0,
        _ => return None,
    })
}

pub fn wrk(url: &str, host: Option<&str>, seconds: u32, connections: u32) -> anyhow::Result<Wrk> {
    wrk_with(url, host, &[], seconds, connections)
}

/// [`wrk`] with more request headers (`Connection: close` makes every
/// request a new connection).
pub fn wrk_with(
    url: &str,
    host: Option<&str>,
    headers: &[&str],
    seconds: u32,
    connections: u32,
) -> anyhow::Result<Wrk> {
    let mut cmd = Command::new("wrk");
    cmd.args(["-t2", &format!("-c{connections}"), &format!("-d{seconds}s"), "--latency"]);
    if let Some(h) = host {
        cmd.args(["-H", &format!("Host: {h}")]);
    }
    for h in headers {
        cmd.args(["-H", h]);
    }
    let out = cmd.arg(url).output().context("running wrk (install it with scripts/setup.sh --bench)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk {url} failed: {text}{}", String::from_utf8_lossy(&out.stderr));
    }
    if text.contains("Non-2xx") || text.contains("Socket errors") {
        bail!("wrk {url} saw errors:\n{text}");
    }
    let field = |prefix: &str| {
        text.lines().find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_string())).unwrap_or_default()
    };
    Ok(Wrk {
        rps: field("Requests/sec:").parse().context("wrk's Requests/sec")?,
        p50_ms: parse_latency(&field("50%")).context("wrk's 50% latency")?,
        p99_ms: parse_latency(&field("99%")).context("wrk's 99% latency")?,
    })
}

/// nginx as a reverse proxy to `upstream`, with pooled keep-alive
/// connections (the fair comparison), on a free loopback port. Its
/// workers run as root: the host's firewall lets only root's sockets reach
/// containers (other local users get no gateway trust), and Cubby's proxy
/// runs as root too.
pub(super) struct Nginx {
    child: Child,
    pub(super) port: u16,
    _dir: tempfile::TempDir,
}

/// A certificate and key (PEM files) for nginx's TLS listener.
pub(super) struct TlsFiles<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
}

impl Nginx {
    /// Plain HTTP, or HTTPS with `tls` (TLS 1.3 only, HTTP/1.1, session
    /// cache and tickets on: what Cubby's proxy does).
    pub(super) fn start(upstream: SocketAddr, tls: Option<TlsFiles<'_>>) -> anyhow::Result<Self> {
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let dir = tempfile::tempdir()?;
        let d = dir.path().display();
        let listen = match tls {
            None => format!("listen 127.0.0.1:{port};"),
            Some(TlsFiles { cert, key }) => format!(
                "listen 127.0.0.1:{port} ssl;\n    ssl_certificate {};\n    ssl_certificate_key {};\n    \
                 ssl_protocols TLSv1.3;\n    ssl_session_cache shared:SSL:10m;\n    ssl_session_tickets on;",
                cert.display(),
                key.display()
            ),
        };
        let conf = format!(
            "user root;\nworker_processes auto;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               upstream app {{ server {upstream}; keepalive 64; }}\n\
               server {{\n    {listen}\n    location / {{\n      proxy_pass http://app;\n\
                   proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n      proxy_set_header Host $host;\n\
                   proxy_set_header X-Forwarded-For $remote_addr;\n    }}\n  }}\n}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf)?;
        let child = own_session(&mut Command::new("nginx"))
            .args(["-e", &format!("{d}/error.log"), "-c"])
            .arg(&path)
            .args(["-g", "daemon off;"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nginx (install it with scripts/setup.sh --bench)")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("nginx did not listen on {port}: {}", read(&dir.path().join("error.log")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Self { child, port, _dir: dir })
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Drop for Nginx {
    /// SIGTERM, so the master stops its workers (SIGKILL to the master
    /// alone leaves them running); SIGKILL only if it does not end in 5 s.
    fn drop(&mut self) {
        let pid = i32::try_from(self.child.id()).map(nix::unistd::Pid::from_raw);
        if let Ok(pid) = pid {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A public project `bench` with one running container `app`.
pub(super) fn public_app(d: &Daemon) -> anyhow::Result<cubby_model::Container> {
    let api = d.admin();
    let project = api.create_project(&CreateProject {
        name: "bench".into(),
        default_access: Some(AccessMode::Public),
        ..Default::default()
    })?;
    Ok(api.create_container(project.id.as_str(), &CreateContainer { name: "app".into(), ..Default::default() })?)
}

pub fn run(bin: &str, wakes: usize, seconds: u32) -> anyhow::Result<Report> {
    let d = super::daemon(bin, DaemonOptions::default());
    let api = d.admin();
    let c = public_app(&d)?;
    let host = c.url.strip_prefix("http://").context("an http URL")?.to_string();
    first_byte(d.proxy_addr, &host, "/healthz")?;

    // Wake: stop through the API, then time one request to first byte.
    let mut wake = Vec::new();
    for _ in 0..wakes {
        api.stop(c.id.as_str())?;
        wake.push(ms(first_byte(d.proxy_addr, &host, "/healthz")?));
    }
    let mut warm = Vec::new();
    for _ in 0..wakes {
        warm.push(ms(first_byte(d.proxy_addr, &host, "/healthz")?));
    }

    let mut figures = proxy_figures(&d, &c, seconds)?;
    api.delete_container(c.id.as_str())?;
    drop(d);
    // The same, with the access log off: what a line per request costs.
    let quiet = super::daemon(bin, DaemonOptions { extra_args: vec!["--no-access-log".into()], ..Default::default() });
    let api = quiet.admin();
    let c = public_app(&quiet)?;
    for (key, value) in proxy_figures(&quiet, &c, seconds)? {
        if key.contains("3 Cubby proxy") || key.contains("Cubby / nginx") {
            figures.push((format!("{key} (access log off)"), value));
        }
    }
    api.delete_container(c.id.as_str())?;
    drop(quiet);
    // And with metrics off: what timing each request for Prometheus costs.
    let unmeasured =
        super::daemon(bin, DaemonOptions { extra_args: vec!["--no-metrics".into()], ..Default::default() });
    let api = unmeasured.admin();
    let c = public_app(&unmeasured)?;
    for (key, value) in proxy_figures(&unmeasured, &c, seconds)? {
        if key.contains("3 Cubby proxy") || key.contains("Cubby / nginx") {
            figures.push((format!("{key} (metrics off)"), value));
        }
    }
    api.delete_container(c.id.as_str())?;
    drop(unmeasured);
    // And over HTTPS, against nginx with the same certificate.
    figures.extend(super::https::figures(bin, seconds)?);

    let mut rows = BTreeMap::new();
    rows.insert("wake: stopped → first byte via proxy".into(), summarize(&wake));
    rows.insert("running: request → first byte via proxy (new connection)".into(), summarize(&warm));
    Ok(Report {
        title: format!("urls: wake n = {wakes}, wrk {seconds} s × 3"),
        machine: machine(),
        rows,
        figures: figures.into_iter().collect(),
        notes: vec![
            "wake: `POST stop`, then one `GET /healthz` through the proxy, timed to the first response byte".into(),
            "times are wall-clock on a shared machine: read them as indications, compare ratios within one run".into(),
        ],
    })
}

/// Seconds of the untimed `wrk` run before each measured one.
const WARM_UP_SECONDS: u32 = 2;

/// wrk on one container's app three ways: direct, through nginx as a
/// reverse proxy, and through Cubby's proxy; one row each, and the ratio.
pub fn proxy_figures(d: &Daemon, c: &cubby_model::Container, seconds: u32) -> anyhow::Result<Vec<(String, String)>> {
    let host = c.url.strip_prefix("http://").context("an http URL")?.to_string();
    let app: SocketAddr = format!("{}:{}", c.address, c.port).parse()?;
    let nginx = Nginx::start(app, None)?;
    let connections = 32;
    // Each target gets an untimed warm-up run first (connection pools,
    // caches, allocator), then the measured one.
    let measure = |url: &str, host: Option<&str>| {
        wrk(url, host, WARM_UP_SECONDS, connections)?;
        wrk(url, host, seconds, connections)
    };
    let direct = measure(&format!("http://{app}/healthz"), None)?;
    let through_nginx = measure(&format!("http://127.0.0.1:{}/healthz", nginx.port), None)?;
    let through_cubby = measure(&format!("http://{}/healthz", d.proxy_addr), Some(&host))?;
    drop(nginx);
    let mut figures = Vec::new();
    for (name, w) in
        [("1 direct to the app", &direct), ("2 nginx reverse proxy", &through_nginx), ("3 Cubby proxy", &through_cubby)]
    {
        figures.push((
            format!("wrk -c{connections} {name}: req/s | p50 ms | p99 ms"),
            format!("{:.0} | {:.2} | {:.2}", w.rps, w.p50_ms, w.p99_ms),
        ));
    }
    figures.push((
        "wrk Cubby / nginx: req/s ratio | p99 difference ms".into(),
        format!("{:.2} | {:+.2}", through_cubby.rps / through_nginx.rps, through_cubby.p99_ms - through_nginx.p99_ms),
    ));
    figures.push(("wrk: nginx version".into(), nginx_version()));
    Ok(figures)
}

pub(super) fn nginx_version() -> String {
    Command::new("nginx")
        .arg("-v")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stderr).trim().trim_start_matches("nginx version: ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::parse_latency;

    #[test]
    fn wrk_latencies_parse() {
        assert_eq!(parse_latency("845.00us"), Some(0.845));
        assert_eq!(parse_latency("1.50ms"), Some(1.5));
        assert_eq!(parse_latency("2.00s"), Some(2000.0));
        assert_eq!(parse_latency("junk"), None);
    }
}
