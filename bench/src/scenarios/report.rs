//! The full report (issue 7): provision, create, wake, stop, delete,
//! throughput, density and the proxy, each against the hand-written runc
//! baseline run in the same process, plus where the median time goes (the
//! daemon's step spans, read from its `--trace-spans` log).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cubby_model::{AccessMode, CopyContainer, CreateContainer, CreateProject};
use cubby_testkit::DaemonOptions;

use super::lifecycle::until_200;
use super::templates::pool_used;
use super::urls::{first_byte, proxy_figures};
use super::{Report, machine, ms};
use crate::stats::{Summary, summarize};

/// Sizes of one run.
#[derive(Debug, Clone)]
pub struct Sizes {
    /// Samples of each latency (provision, create, wake, stop, delete, baseline).
    pub n: usize,
    /// Concurrent clients of the concurrent rows.
    pub clients: usize,
    /// Containers made by the throughput row.
    pub throughput: usize,
    /// Running idle tenants of the density row.
    pub density: usize,
    /// Seconds of each wrk run.
    pub wrk_seconds: u32,
    /// The baseline script (default: bench/baseline/runc-baseline.sh).
    pub baseline: Option<PathBuf>,
}

impl Sizes {
    pub fn quick() -> Self {
        Self { n: 10, clients: 4, throughput: 16, density: 24, wrk_seconds: 2, baseline: None }
    }
}

impl Default for Sizes {
    fn default() -> Self {
        Self { n: 100, clients: 8, throughput: 200, density: 500, wrk_seconds: 10, baseline: None }
    }
}

/// Runs `f` for items `0..n` on `clients` threads; the latencies (ms).
fn concurrently<T: Send>(
    n: usize,
    clients: usize,
    f: impl Fn(usize) -> anyhow::Result<T> + Sync,
) -> anyhow::Result<(Vec<f64>, Vec<T>, Duration)> {
    let next = AtomicUsize::new(0);
    let t0 = Instant::now();
    let results: Vec<anyhow::Result<Vec<(f64, T)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients.max(1))
            .map(|_| {
                s.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return Ok(out);
                        }
                        let t = Instant::now();
                        let v = f(i)?;
                        out.push((ms(t.elapsed()), v));
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap_or_else(|_| Err(anyhow::anyhow!("a client panicked")))).collect()
    });
    let wall = t0.elapsed();
    let mut times = Vec::new();
    let mut values = Vec::new();
    for r in results {
        for (t, v) in r? {
            times.push(t);
            values.push(v);
        }
    }
    Ok((times, values, wall))
}

fn baseline(sizes: &Sizes, clients: usize) -> anyhow::Result<Vec<f64>> {
    let script = sizes
        .baseline
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("baseline/runc-baseline.sh"));
    let out = Command::new(&script)
        .arg(sizes.n.to_string())
        .arg(clients.to_string())
        .output()
        .with_context(|| format!("running {} (install jq with scripts/setup.sh --bench)", script.display()))?;
    if !out.status.success() {
        bail!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    }
    let samples: Vec<f64> =
        String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| l.trim().parse().ok()).collect();
    if samples.len() != sizes.n {
        bail!("the baseline printed {} samples, not {}", samples.len(), sizes.n);
    }
    Ok(samples)
}

/// Memory charged to the daemon's containers: its parent cgroup's usage.
fn cgroup_memory(prefix: &str) -> u64 {
    ["/sys/fs/cgroup/memory/{p}/memory.usage_in_bytes", "/sys/fs/cgroup/{p}/memory.current"]
        .iter()
        .find_map(|f| std::fs::read_to_string(f.replace("{p}", prefix)).ok())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

fn mem_available() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemAvailable:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()))
        })
        .unwrap_or(0)
        * 1024
}

/// Step durations per operation, from the daemon's `--trace-spans` log:
/// operation (root span) → step → durations (ms).
fn span_times(log: &str) -> BTreeMap<String, BTreeMap<String, Vec<f64>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<f64>>> = BTreeMap::new();
    for line in log.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        if v["fields"]["message"] != "close" {
            continue;
        }
        let Some(name) = v["span"]["name"].as_str() else { continue };
        let busy =
            crate::scenarios::urls::parse_latency(v["fields"]["time.busy"].as_str().unwrap_or("")).unwrap_or(0.0);
        let idle =
            crate::scenarios::urls::parse_latency(v["fields"]["time.idle"].as_str().unwrap_or("")).unwrap_or(0.0);
        let root = v["spans"].as_array().and_then(|s| s.first()).and_then(|s| s["name"].as_str()).unwrap_or(name);
        out.entry(root.to_string()).or_default().entry(name.to_string()).or_default().push(busy + idle);
    }
    out
}

fn ratio(a: &Summary, b: &Summary) -> String {
    format!("{:.2}× median, {:.2}× p99", a.median_ms / b.median_ms, a.p99_ms / b.p99_ms)
}

pub fn run(bin: &str, sizes: &Sizes) -> anyhow::Result<Report> {
    let mut rows = BTreeMap::new();
    let mut figures = BTreeMap::new();
    let mut notes = Vec::new();

    // The floor, in the same run.
    let base = summarize(&baseline(sizes, 1)?);
    rows.insert("0 baseline: runc script (snapshot, veth, runc create+start, until HTTP 200)".into(), base.clone());
    // The same floor under the same concurrency as the concurrent row.
    let base_conc = summarize(&baseline(sizes, sizes.clients)?);
    rows.insert(format!("0b baseline: runc script, {} clients at once", sizes.clients), base_conc.clone());

    let d = super::daemon(
        bin,
        DaemonOptions {
            extra_args: vec!["--log-json".into(), "--trace-spans".into()],
            subnet: Some("10.231.0.0/21".into()),
            pool_size: Some("16GiB".into()),
            ..Default::default()
        },
    );
    let api = d.admin();
    let p = api.create_project(&CreateProject {
        name: "bench".into(),
        default_access: Some(AccessMode::Public),
        ..Default::default()
    })?;
    let pid = p.id.to_string();
    let template = api.create_container(&pid, &CreateContainer { name: "template".into(), ..Default::default() })?;
    until_200(&d, &template.url, Duration::from_secs(30))?;
    let warm =
        api.copy_container(template.id.as_str(), &CopyContainer { name: "warm".into(), ..Default::default() })?;
    api.delete_container(warm.id.as_str())?;

    // Provision: copy of a template until the first 200 through its URL.
    let copy = |name: String| -> anyhow::Result<String> {
        let c = api.copy_container(template.id.as_str(), &CopyContainer { name, ..Default::default() })?;
        until_200(&d, &c.url, Duration::from_secs(30))?;
        Ok(c.id.to_string())
    };
    let (seq, mut ids, _) = concurrently(sizes.n, 1, |i| copy(format!("p{i}")))?;
    let seq = summarize(&seq);
    figures.insert("provision sequential vs baseline".into(), ratio(&seq, &base));
    rows.insert("1 provision: POST copy → first HTTP 200 (sequential)".into(), seq);
    let (conc, more, _) = concurrently(sizes.n, sizes.clients, |i| copy(format!("q{i}")))?;
    ids.extend(more);
    let conc = summarize(&conc);
    figures.insert(format!("provision {} clients vs baseline", sizes.clients), ratio(&conc, &base));
    figures.insert(
        format!("provision {} clients vs baseline with {} clients", sizes.clients, sizes.clients),
        ratio(&conc, &base_conc),
    );
    rows.insert(format!("2 provision: POST copy → first HTTP 200 ({} clients)", sizes.clients), conc);

    // Create from an image.
    let (created, created_ids, _) = concurrently(sizes.n, 1, |i| {
        let c = api.create_container(&pid, &CreateContainer { name: format!("c{i}"), ..Default::default() })?;
        until_200(&d, &c.url, Duration::from_secs(30))?;
        Ok((c.id.to_string(), c.url))
    })?;
    let created = summarize(&created);
    figures.insert("create vs baseline".into(), ratio(&created, &base));
    rows.insert("3 create: POST containers (image) → first HTTP 200".into(), created);

    // Stop, then wake by a request.
    let (mut stop, mut wake) = (Vec::new(), Vec::new());
    for (id, url) in &created_ids {
        let t = Instant::now();
        api.stop(id)?;
        stop.push(ms(t.elapsed()));
        let host = url.strip_prefix("http://").context("an http URL")?;
        wake.push(ms(first_byte(d.proxy_addr, host, "/healthz")?));
    }
    rows.insert("4 stop: POST stop".into(), summarize(&stop));
    rows.insert("5 wake: stopped → first byte via URL".into(), summarize(&wake));

    // Wake again, while `clients` clients provision copies: each stopped
    // tenant woken by a request (timed) and stopped again (not timed), for
    // as long as the load runs (at most 3 rounds).
    let loading = std::sync::atomic::AtomicBool::new(true);
    let (woken, loaded) = std::thread::scope(|s| -> anyhow::Result<(Vec<f64>, Vec<String>)> {
        let load = s.spawn(|| {
            let made = concurrently(sizes.n, sizes.clients, |i| copy(format!("w{i}")));
            loading.store(false, Ordering::Relaxed);
            made
        });
        let mut woken = Vec::new();
        'rounds: for _ in 0..3 {
            for (id, url) in &created_ids {
                if !loading.load(Ordering::Relaxed) {
                    break 'rounds;
                }
                api.stop(id)?;
                let host = url.strip_prefix("http://").context("an http URL")?;
                woken.push(ms(first_byte(d.proxy_addr, host, "/healthz")?));
            }
        }
        let (_, made, _) = load.join().map_err(|_| anyhow::anyhow!("the load panicked"))??;
        Ok((woken, made))
    })?;
    ids.extend(loaded);
    if woken.is_empty() {
        notes.push("5b: the provisioning load ended before a wake could be timed".into());
    } else {
        rows.insert(format!("5b wake while {} clients provision", sizes.clients), summarize(&woken));
    }
    ids.extend(created_ids.into_iter().map(|(id, _)| id));

    // Delete (sequential): everything made so far.
    let mut delete = Vec::new();
    for id in &ids {
        let t = Instant::now();
        api.delete_container(id)?;
        delete.push(ms(t.elapsed()));
    }
    rows.insert("6 delete: DELETE container".into(), summarize(&delete));

    // Throughput: containers made per second by concurrent clients.
    let (_, made, wall) = concurrently(sizes.throughput, sizes.clients, |i| {
        Ok(api.create_container(&pid, &CreateContainer { name: format!("t{i}"), ..Default::default() })?.id.to_string())
    })?;
    figures.insert(
        format!("throughput: containers/s ({} clients, {} containers)", sizes.clients, sizes.throughput),
        format!("{:.1}", made.len() as f64 / wall.as_secs_f64()),
    );
    concurrently(made.len(), sizes.clients, |i| Ok(api.delete_container(&made[i])?))?;

    // Density: running idle tenants, host memory and pool bytes per tenant,
    // API latency at that population.
    let (mem0, pool0, cg0) = (mem_available(), pool_used(&d), cgroup_memory(&d.prefix));
    let (_, tenants, _) = concurrently(sizes.density, sizes.clients, |i| {
        Ok(api
            .copy_container(template.id.as_str(), &CopyContainer { name: format!("d{i}"), ..Default::default() })?
            .id
            .to_string())
    })?;
    std::thread::sleep(Duration::from_secs(2));
    let (mem1, pool1, cg1) = (mem_available(), pool_used(&d), cgroup_memory(&d.prefix));
    let n = tenants.len().max(1) as f64;
    figures.insert("density: running idle tenants".into(), tenants.len().to_string());
    figures.insert(
        "density: host memory per tenant (MemAvailable delta / N)".into(),
        format!("{:.1} MiB", mem0.saturating_sub(mem1) as f64 / n / 1048576.0),
    );
    figures.insert(
        "density: memory charged to tenants' cgroups, per tenant".into(),
        format!("{:.2} MiB", cg1.saturating_sub(cg0) as f64 / n / 1048576.0),
    );
    figures.insert(
        "density: pool bytes per copy".into(),
        format!("{:.0} KiB", pool1.saturating_sub(pool0) as f64 / n / 1024.0),
    );
    let mut api_times = Vec::new();
    for i in 0..(2 * sizes.n).max(20) {
        let t = Instant::now();
        api.container(&tenants[i % tenants.len()])?;
        api_times.push(ms(t.elapsed()));
    }
    let mut lists = Vec::new();
    for _ in 0..(sizes.n / 5).max(5) {
        let t = Instant::now();
        api.containers(Some(&pid), None, 100)?;
        lists.push(ms(t.elapsed()));
    }
    // Usage: a project query takes one reading of every tenant first, as
    // a sampler tick does, so its time bounds the tick's.
    let mut ticks = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        api.project_usage(&pid, "step=3600")?;
        ticks.push(ms(t.elapsed()));
    }
    ticks.sort_by(f64::total_cmp);
    let tick = ticks[ticks.len() / 2];
    figures
        .insert(format!("density: usage readings of {} tenants (median of 5)", tenants.len()), format!("{tick:.1} ms"));
    figures.insert(
        "density: usage sampling, share of one core at --usage-interval 10 s".into(),
        format!("{:.2} %", tick / 10_000.0 * 100.0),
    );
    // A Prometheus scrape of every tenant's series.
    let mut scrapes = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let r = api.raw("GET", "/metrics", None)?;
        anyhow::ensure!(r.status == 200, "/metrics answered {}", r.status);
        scrapes.push(ms(t.elapsed()));
    }
    rows.insert(format!("9 /metrics at {} tenants", tenants.len()), summarize(&scrapes));
    rows.insert(format!("7 API at {} tenants: GET container", tenants.len()), summarize(&api_times));
    rows.insert(format!("8 API at {} tenants: list 100 containers", tenants.len()), summarize(&lists));

    // The proxy: Cubby against nginx against direct, on one tenant.
    let one = api.container(&tenants[0])?;
    for (k, v) in proxy_figures(&d, &one, sizes.wrk_seconds)? {
        figures.insert(k, v);
    }
    concurrently(tenants.len(), sizes.clients, |i| Ok(api.delete_container(&tenants[i])?))?;
    api.delete_container(template.id.as_str())?;

    // Where the median time goes.
    let spans = span_times(&d.log_text());
    for (op, steps) in &spans {
        if !op.starts_with("container.") {
            continue;
        }
        let mut parts: Vec<(String, f64, usize)> = steps
            .iter()
            .filter(|(name, _)| *name != op)
            .map(|(name, xs)| (name.clone(), summarize(xs).median_ms, xs.len()))
            .collect();
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        let total = steps.get(op).map(|xs| summarize(xs).median_ms).unwrap_or(f64::NAN);
        let text: Vec<String> = parts.iter().map(|(n, m, _)| format!("{n} {m:.1}")).collect();
        figures.insert(format!("steps of {op} (median {total:.1} ms)"), text.join(", "));
    }
    notes.push(format!(
        "n = {} per latency row; concurrent rows use {} clients; density {} tenants; wrk {} s per row",
        sizes.n, sizes.clients, sizes.density, sizes.wrk_seconds
    ));
    notes.push("ratios divide Cubby's figure by the baseline's, from this same run".into());
    notes.push("steps: median wall time of each span (busy + idle) under its operation, from `--trace-spans`".into());
    notes.push(
        "times are wall-clock on a shared machine: read them as indications, compare ratios within one run".into(),
    );
    Ok(Report { title: "full report".into(), machine: machine(), rows, figures, notes })
}

#[cfg(test)]
mod tests {
    use super::span_times;

    #[test]
    fn spans_are_grouped_by_operation() {
        let log = r#"{"fields":{"message":"close","time.busy":"1.50ms","time.idle":"500us"},"span":{"name":"runtime.create"},"spans":[{"name":"container.copy"},{"name":"container.start"}]}
{"fields":{"message":"close","time.busy":"10ms","time.idle":"1ms"},"span":{"name":"container.copy"},"spans":[]}
{"fields":{"message":"container created"}}
not json"#;
        let t = span_times(log);
        assert_eq!(t["container.copy"]["runtime.create"], [2.0]);
        assert_eq!(t["container.copy"]["container.copy"], [11.0]);
    }
}
