//! Exec scripts: the latency of a hello-world script through the proxy,
//! against the same request answered without running JavaScript (a path
//! with no script, 404), on one keep-alive connection; and `wrk`
//! throughput of the script.

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
    let t0 = Instant::now();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n")?;
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
    let d = super::daemon(bin, DaemonOptions::default());
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
    let mut rows = BTreeMap::new();
    rows.insert("hello-world script via proxy (keep-alive)".into(), s_sum);
    rows.insert("baseline: same proxy, no script (404)".into(), b_sum);
    Ok(Report {
        title: format!("scripts: n = {n}, wrk {seconds} s"),
        machine: machine(),
        rows,
        figures,
        notes: vec![
            "alternating requests on one keep-alive connection; each script call gets a fresh QuickJS runtime and context"
                .into(),
            "times are wall-clock on a shared machine: read them as indications, compare ratios within one run".into(),
        ],
    })
}
