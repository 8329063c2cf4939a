//! Exec scripts: the latency of a hello-world script through the proxy,
//! against the same request answered without running JavaScript (a path
//! with no script, 404), on one keep-alive connection; the same for the
//! Stripe SDK example (`examples/scripts/providers/stripe.ts`, bundled by
//! `cubby scripts push --bundle`) verifying a signed delivery; and `wrk`
//! throughput of the hello script.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cubby_model::{AccessMode, CreateProject};
use cubby_testkit::DaemonOptions;

use super::urls::wrk;
use super::{Report, machine, ms};
use crate::stats::summarize;

/// One GET on a kept-alive connection; its status and time.
fn timed_get(
    s: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    host: &str,
    path: &str,
) -> anyhow::Result<(u16, Duration)> {
    timed(s, reader, &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n"))
}

/// One request (head and body as written) on a kept-alive connection; its
/// status and time.
fn timed(s: &mut TcpStream, reader: &mut BufReader<TcpStream>, request: &str) -> anyhow::Result<(u16, Duration)> {
    let t0 = Instant::now();
    s.write_all(request.as_bytes())?;
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status: u16 = line.split_whitespace().nth(1).context("a status line")?.parse()?;
    let mut length = 0usize;
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse()?;
        }
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((status, t0.elapsed()))
}

pub fn run(bin: &str, n: usize, seconds: u32) -> anyhow::Result<Report> {
    // Slots for the in-flight memory row, which holds many scripts at once.
    let d = super::daemon(
        bin,
        DaemonOptions { extra_args: vec!["--script-concurrency".into(), "64".into()], ..Default::default() },
    );
    let api = d.admin();
    let p = api.create_project(&CreateProject {
        name: "bench".into(),
        default_access: Some(AccessMode::Public),
        ..Default::default()
    })?;
    api.put_script(p.id.as_str(), "hello.js", b"export default () => ({ hello: 'world' })")?;
    let host = format!("bench.exec.localhost:{}", d.proxy_addr.port());

    let mut s = TcpStream::connect(d.proxy_addr)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(s.try_clone()?);
    // Warm-up: caches, the compiled file, the allocator.
    for _ in 0..20 {
        timed_get(&mut s, &mut reader, &host, "/hello")?;
    }
    let (mut script, mut baseline) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let (status, t) = timed_get(&mut s, &mut reader, &host, "/no-such-script")?;
        if status != 404 {
            bail!("the baseline path answered {status}");
        }
        baseline.push(ms(t));
        let (status, t) = timed_get(&mut s, &mut reader, &host, "/hello")?;
        if status != 200 {
            bail!("the hello script answered {status}");
        }
        script.push(ms(t));
    }
    let stripe = stripe_verify(&d, p.id.as_str(), &host, &mut s, &mut reader, n)?;
    let memory = in_flight_memory(&d, p.id.as_str(), &host)?;
    let through = wrk(&format!("http://{}/hello", d.proxy_addr), Some(&host), seconds, 8)?;

    let (s_sum, b_sum) = (summarize(&script), summarize(&baseline));
    let mut figures = BTreeMap::new();
    figures.insert(
        "overhead of running the script: median | p99 ms".into(),
        format!("{:.2} | {:.2}", s_sum.median_ms - b_sum.median_ms, s_sum.p99_ms - b_sum.p99_ms),
    );
    figures.insert(
        "wrk -c8 hello script: req/s | p50 ms | p99 ms".into(),
        format!("{:.0} | {:.2} | {:.2}", through.rps, through.p50_ms, through.p99_ms),
    );
    figures.insert(
        format!("daemon RSS per in-flight script ({} waiting at once) MiB", memory.1),
        format!("{:.2}", memory.0),
    );
    let mut rows = BTreeMap::new();
    let mut notes = Vec::new();
    match stripe {
        Some((times, bytes)) => {
            let sum = summarize(&times);
            figures.insert(
                "Stripe SDK verifying a signature, over the baseline: median | p99 ms".into(),
                format!("{:.2} | {:.2}", sum.median_ms - b_sum.median_ms, sum.p99_ms - b_sum.p99_ms),
            );
            rows.insert(format!("Stripe SDK webhook verify ({} KiB bundle) via proxy", bytes / 1024), sum);
        }
        None => notes.push(
            "Stripe SDK row left out: examples/scripts/providers has no node_modules (scripts/setup.sh --clients)"
                .into(),
        ),
    }
    rows.insert("hello-world script via proxy (keep-alive)".into(), s_sum);
    rows.insert("baseline: same proxy, no script (404)".into(), b_sum);
    Ok(Report {
        title: format!("scripts: n = {n}, wrk {seconds} s"),
        machine: machine(),
        rows,
        figures,
        notes: [
            "alternating requests on one keep-alive connection; each script call gets a fresh QuickJS runtime and context"
                .into(),
            "times are wall-clock on a shared machine: read them as indications, compare ratios within one run".into(),
        ]
        .into_iter()
        .chain(notes)
        .collect(),
    })
}

/// The Stripe example bundled and pushed by the CLI, then `n` signed
/// deliveries verified by it on the kept-alive connection: their times and
/// the bundle's size. `None` when the example's npm packages are missing.
fn stripe_verify(
    d: &cubby_testkit::Daemon,
    project: &str,
    host: &str,
    s: &mut TcpStream,
    reader: &mut BufReader<TcpStream>,
    n: usize,
) -> anyhow::Result<Option<(Vec<f64>, usize)>> {
    use hmac::{KeyInit, Mac};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/scripts/providers");
    if !dir.join("node_modules/stripe").is_dir() {
        return Ok(None);
    }
    let api = d.admin();
    let (code, out, err) = d.cli(&[
        "scripts",
        "push",
        dir.to_str().context("a UTF-8 path")?,
        "--project",
        project,
        "--bundle",
        "--no-delete",
    ]);
    if code != 0 {
        bail!("cubby scripts push --bundle failed: {out}{err}");
    }
    let secret = "whsec_bench_0123456789";
    api.put_secrets(project, &[("STRIPE_WEBHOOK_SECRET".to_string(), secret.to_string())].into())?;
    let bytes = api.script(project, "stripe.js")?.len();
    let payload = r#"{"id":"evt_bench","object":"event","type":"invoice.paid","data":{"object":{}}}"#;
    let mut times = Vec::with_capacity(n);
    for i in 0..n + 20 {
        let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes())?;
        mac.update(format!("{t}.{payload}").as_bytes());
        let signature = format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()));
        let request = format!(
            "POST /stripe HTTP/1.1\r\nHost: {host}\r\nStripe-Signature: {signature}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
            payload.len()
        );
        let (status, time) = timed(s, reader, &request)?;
        if status != 200 {
            bail!("the Stripe example answered {status}");
        }
        // The first runs compile the bundle and fill the caches.
        if i >= 20 {
            times.push(ms(time));
        }
    }
    Ok(Some((times, bytes)))
}

/// The daemon's resident memory, KiB.
fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("VmRSS in /proc/<pid>/status")?;
    Ok(line.split_whitespace().nth(1).context("a VmRSS value")?.parse()?)
}

/// The daemon's resident memory per script in flight: `N` requests to a
/// script that waits 3 s on a timer, held at once, against the daemon
/// before them (MiB per script, N).
fn in_flight_memory(d: &cubby_testkit::Daemon, project: &str, host: &str) -> anyhow::Result<(f64, usize)> {
    const N: usize = 48;
    let api = d.admin();
    api.put_script(
        project,
        "wait.js",
        b"export default async () => { await new Promise((r) => setTimeout(r, 3000)); return { waited: true }; }",
    )?;
    let pid = d.pid().context("the daemon's pid")?;
    let get = |host: String, addr: std::net::SocketAddr| -> anyhow::Result<u16> {
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut reader = BufReader::new(s.try_clone()?);
        Ok(timed_get(&mut s, &mut reader, &host, "/wait")?.0)
    };
    // One run first: the compiled file, the allocator's arenas.
    if get(host.to_string(), d.proxy_addr)? != 200 {
        bail!("the waiting script did not answer 200");
    }
    let before = rss_kib(pid)?;
    let threads: Vec<_> = (0..N)
        .map(|_| {
            let (host, addr) = (host.to_string(), d.proxy_addr);
            std::thread::spawn(move || get(host, addr))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    let during = rss_kib(pid)?;
    for t in threads {
        let status = t.join().map_err(|_| anyhow::anyhow!("a client thread panicked"))??;
        if status != 200 {
            bail!("a waiting script answered {status}");
        }
    }
    Ok((during.saturating_sub(before) as f64 / 1024.0 / N as f64, N))
}
