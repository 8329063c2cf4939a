//! `cubby serve`: builds the real host subsystems, opens the core, and
//! serves the API and the proxy until SIGTERM or SIGINT. Containers keep
//! running when the daemon stops.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Args;
use cubby_core::inventory::Layout;
use cubby_core::routes::Lookup;
use cubby_core::{Config, Defaults, Helpers, Platform};
use cubby_model::ByteSize;
use cubby_model::{AccessMode, ContainerId, ProjectId};
use cubby_proxy::tls::acme::{Acme, AcmeOptions, Challenges, DnsHook};
use cubby_proxy::tls::{ALPN_H2, ALPN_HTTP11, CertFiles, CertStore};
use cubby_proxy::{
    Access, BoxFuture, Listeners, ProxyConfig, Resolution, Resolver, ScriptRunner, Target, WakeError, Workers,
};

/// Flags of `cubby serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// State: database, admin token, logs and the btrfs pool.
    #[arg(long, default_value = "/var/lib/cubby", env = "CUBBY_DATA_DIR")]
    pub data_dir: PathBuf,
    /// Where the API listens.
    #[arg(long, default_value = "127.0.0.1:7070")]
    pub api_listen: SocketAddr,
    /// Where the container URL proxy listens.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub proxy_listen: SocketAddr,
    /// Container URLs are http://<name>--<project>.<domain>:<proxy port>.
    #[arg(long, default_value = "localhost")]
    pub domain: String,
    /// The container address range (IPv4).
    #[arg(long, default_value = "10.213.0.0/16")]
    pub subnet: ipnet::Ipv4Net,
    /// Name stem of every host resource this daemon makes (1-8 of a-z0-9).
    #[arg(long, default_value = "cubby")]
    pub prefix: String,
    /// OCI runtime binary (runc, or one with runc's command line).
    #[arg(long, default_value = "runc")]
    pub runtime: PathBuf,
    /// Size of the btrfs loop pool made when the data dir is not on btrfs
    /// (default: a quarter of the free space, 4-64 GiB; the file is sparse).
    #[arg(long)]
    pub pool_size: Option<String>,
    /// Directory holding the static `cubby-init`, `cubby-demo` and `cubby-fetch` binaries
    /// (default: `helpers/` next to this binary, else `../lib/cubby/`).
    #[arg(long, env = "CUBBY_HELPERS_DIR")]
    pub helpers_dir: Option<PathBuf>,
    /// A statically linked busybox for the `minimal` image.
    #[arg(long, default_value = "/bin/busybox")]
    pub busybox: PathBuf,
    /// Resolvers for containers (comma-separated); default: the host's
    /// non-loopback ones.
    #[arg(long, value_delimiter = ',')]
    pub dns: Vec<IpAddr>,
    /// Destinations no container and no exec script reaches, whatever
    /// their rules (comma-separated CIDRs, or `none`). Cloud metadata
    /// (169.254.0.0/16) and carrier-grade NAT (100.64.0.0/10) are always
    /// guarded; the default adds the private ranges of RFC 1918.
    #[arg(long, value_delimiter = ',')]
    pub egress_deny: Option<Vec<String>>,
    /// Exceptions to the egress guard (comma-separated CIDRs): there the
    /// containers' own firewall rules decide.
    #[arg(long, value_delimiter = ',')]
    pub egress_allow: Vec<ipnet::Ipv4Net>,
    /// Runtime files (default /run/<prefix>).
    #[arg(long)]
    pub run_dir: Option<PathBuf>,
    /// Where cgroupfs is mounted.
    #[arg(long, default_value = "/sys/fs/cgroup")]
    pub cgroup_root: PathBuf,
    /// Where proc is mounted.
    #[arg(long, default_value = "/proc")]
    pub proc_root: PathBuf,
    /// Port in container URLs, when a front proxy listens elsewhere
    /// (default: the port of --proxy-listen).
    #[arg(long)]
    pub public_port: Option<u16>,
    /// Largest image import, once decompressed.
    #[arg(long, default_value = "8GiB")]
    pub max_image_size: String,
    /// Seconds between sweeps for expired snapshots.
    #[arg(long, default_value_t = 60)]
    pub snapshot_expiry_interval: u64,
    /// Keep no access log of proxied requests (it costs the proxy a line
    /// per request; `cubby-bench urls` measures how much).
    #[arg(long)]
    pub no_access_log: bool,
    /// The DNS server (ADDR:PORT) asked for custom domains' TXT records
    /// (default: the system's, from /etc/resolv.conf).
    #[arg(long)]
    pub domain_dns: Option<SocketAddr>,
    /// No Prometheus metrics: `/metrics` answers 404 and nothing is timed
    /// (usage, which bills, still counts every request).
    #[arg(long)]
    pub no_metrics: bool,
    /// Seconds between readings of every container's usage counters (CPU,
    /// memory, network, disk, requests).
    #[arg(long, default_value_t = 10)]
    pub usage_interval: u64,
    /// Days hourly usage is kept (minute usage: two days). A deleted
    /// tenant's usage (ids and numbers only) goes when it ages out.
    #[arg(long, default_value_t = 400)]
    pub usage_retention_days: u32,
    /// Users reach the proxy over https (a TLS front): claim cookies are
    /// Secure and X-Forwarded-Proto is https. Implied by --tls-listen.
    #[arg(long)]
    pub https: bool,
    /// Where the proxy serves HTTPS itself. Container URLs are then
    /// https://…:<this port>, and plain HTTP is redirected here.
    #[arg(long)]
    pub tls_listen: Option<SocketAddr>,
    /// An ACME directory (e.g. https://acme-v02.api.letsencrypt.org/directory):
    /// with --tls-listen, a tenant's host or verified custom domain that no
    /// --tls-cert covers gets a certificate of its own at its first HTTPS
    /// connection (HTTP-01, answered by the proxy: port 80 must reach it;
    /// or see --acme-challenge), renewed when a third of its lifetime is
    /// left (30 days before at most). Kept in <data-dir>/acme (0600).
    #[arg(long, requires = "tls_listen")]
    pub acme_directory: Option<String>,
    /// How the CA checks single names: http-01 (the plain listener, port
    /// 80) or tls-alpn-01 (the TLS listener, port 443; for a box that
    /// serves no plain HTTP).
    #[arg(long, default_value = "http-01", requires = "acme_directory")]
    pub acme_challenge: cubby_proxy::tls::acme::ChallengeKind,
    /// A program that publishes DNS-01 TXT records (`HOOK set|clear
    /// _acme-challenge.<domain> VALUE`, exit 0 once visible): the proxy
    /// then gets wildcard certificates for *.<domain> and *.exec.<domain>
    /// at startup, so tenants' hosts need no certificate of their own.
    #[arg(long, requires = "acme_directory")]
    pub acme_dns_hook: Option<PathBuf>,
    /// The contact address given to the ACME CA.
    #[arg(long, requires = "acme_directory")]
    pub acme_email: Option<String>,
    /// A PEM CA to trust for the ACME directory's own HTTPS (a private or
    /// test CA such as Pebble); the Web PKI's roots otherwise.
    #[arg(long, requires = "acme_directory")]
    pub acme_ca_file: Option<PathBuf>,
    /// Serve the API over TLS too, with the --tls-cert certificates (the
    /// CLI trusts a private CA with --ca-file).
    #[arg(long)]
    pub api_tls: bool,
    /// A PEM certificate chain for --tls-listen and --api-tls (repeat for
    /// several; the client's SNI name picks one, e.g. a wildcard for
    /// *.<domain> and one for *.exec.<domain>). Files changed on disk are
    /// picked up within seconds, without a restart.
    #[arg(long = "tls-cert")]
    pub tls_certs: Vec<PathBuf>,
    /// The PEM private key of each --tls-cert, in the same order.
    #[arg(long = "tls-key")]
    pub tls_keys: Vec<PathBuf>,
    /// Largest request body the proxy forwards.
    #[arg(long, default_value = "64MiB")]
    pub proxy_max_body: String,
    /// Threads the proxy serves on, each with its own listening socket and
    /// upstream pool (0: one per CPU).
    #[arg(long, default_value_t = 0, env = "CUBBY_PROXY_WORKERS")]
    pub proxy_workers: usize,
    /// Connect the proxy to apps from the host only (over the bridge, as
    /// the firewall's gateway), never from a socket inside the container's
    /// namespace: for comparisons, or apps that must see the gateway as
    /// their peer.
    #[arg(long)]
    pub proxy_via_host: bool,
    /// Seconds the proxy waits for an app's response headers.
    #[arg(long, default_value_t = 60)]
    pub proxy_timeout: u64,
    /// Client connections that get an upstream connection of their own
    /// (from their second request on), per app and proxy thread; past it,
    /// and with 0, requests go through the shared pool. Lower it for apps
    /// with few connection slots (one process per connection).
    #[arg(long, default_value_t = 32)]
    pub proxy_own_connections: usize,
    /// Memory limit of one exec script invocation.
    #[arg(long, default_value = "64MiB")]
    pub script_memory: String,
    /// Seconds one exec script invocation may run (a script's `@timeout` overrides it).
    #[arg(long, default_value_t = 30)]
    pub script_timeout: u64,
    /// Exec scripts of one project that run at once (the daemon runs 64 in all).
    #[arg(long, default_value_t = 8)]
    pub script_concurrency: usize,
    /// Requests of one project that wait for a script slot; past them,
    /// 503 with Retry-After.
    #[arg(long, default_value_t = 32)]
    pub script_queue: usize,
    /// Largest request body an exec script receives.
    #[arg(long, default_value = "1MiB")]
    pub script_max_body: String,
    /// Docker-format seccomp profile applied to every container (Docker's
    /// default, from Debian's golang-github-containers-common), or `none`.
    #[arg(long, default_value = "/usr/share/containers/seccomp.json")]
    pub seccomp_profile: PathBuf,
    /// Host uids and gids of containers' user namespaces, `BASE:SIZE`
    /// (uid 0 inside is BASE outside), or `off` to run containers as host
    /// root. Applies to a new data dir; a pool keeps what it was made with.
    #[arg(long, default_value = "1000000:65536")]
    pub userns: String,
    /// Where backups go (`POST /api/v1/backups` without `to`, and the
    /// scheduled ones): a directory on another disk than the data dir, or
    /// `s3://bucket/prefix` with the endpoint and credentials in the
    /// environment (AWS_ENDPOINT_URL, AWS_REGION, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_ALLOW_HTTP).
    #[arg(long)]
    pub backup_dir: Option<String>,
    /// Take a backup into `--backup-dir` this often: `90s`, `30m`, `6h`,
    /// `1d` (each incremental to the one before).
    #[arg(long, requires = "backup_dir", value_parser = parse_interval)]
    pub backup_interval: Option<std::time::Duration>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    pub log_json: bool,
    /// Log each step's duration when it ends (for bench/ and profiling).
    #[arg(long)]
    pub trace_spans: bool,
}

/// `--pool-size` in bytes (`None`: not given).
pub(crate) fn pool_size_flag(text: Option<&str>) -> anyhow::Result<Option<u64>> {
    Ok(text.map(ByteSize::parse).transpose().map_err(|e| anyhow::anyhow!("--pool-size: {e}"))?.map(|b| b.0))
}

/// A duration as a number with a unit: `90s`, `30m`, `6h`, `1d`.
fn parse_interval(text: &str) -> Result<std::time::Duration, String> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len()));
    let n: u64 = number.parse().map_err(|_| format!("`{text}`: give a number and a unit, like 6h"))?;
    let seconds = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{text}`: the unit is one of s, m, h, d")),
    };
    if seconds < 10 {
        return Err(format!("`{text}`: at least 10s apart"));
    }
    Ok(std::time::Duration::from_secs(seconds))
}

/// Adapts the core (routes, claims, wake, activity) to the proxy's
/// resolver seam. The proxy calls it on its own threads; a wake runs on
/// the daemon's runtime (`home`), where the core's tasks live.
struct Routes {
    platform: Arc<Platform>,
    home: tokio::runtime::Handle,
    /// Whether upstream connections may start inside containers.
    in_container: bool,
    /// Where proxied requests are timed, for `/metrics`.
    metrics: Arc<cubby_api::routes::metrics::ApiMetrics>,
    /// Whether each proxied request is a line of its project's access log.
    access_log: bool,
}

fn target(route: &cubby_core::Route, port: u16) -> Target {
    Target {
        container: route.container_id.to_string(),
        project: route.project_id.to_string(),
        access: match route.access {
            AccessMode::Public => Access::Public,
            AccessMode::Claim => Access::Claim,
            AccessMode::Token => Access::Token,
        },
        port,
    }
}

impl Resolver for Routes {
    fn resolve(&self, label: &str) -> Resolution {
        match self.platform.routes().lookup(label) {
            Lookup::Running { route, upstream } => {
                Resolution::Running { target: target(&route, upstream.port()), upstream }
            }
            Lookup::Stopped { route, port } => {
                Resolution::Stopped { autostart: route.autostart, target: target(&route, port) }
            }
            Lookup::Unknown => Resolution::NotFound,
        }
    }

    fn check_claim(&self, container: &str, port: u16, claim: &str) -> Result<u64, cubby_proxy::ClaimRefusal> {
        self.platform
            .access()
            .check_claim(&ContainerId::from_stored(container.to_string()), port, claim)
            .map(|left| u64::try_from(left).unwrap_or(0))
            .map_err(Into::into)
    }

    fn check_bearer(&self, container: &str, port: u16, token: &str) -> bool {
        self.platform.access().check_bearer(&ContainerId::from_stored(container.to_string()), port, token)
    }

    fn is_credential(&self, token: &str) -> bool {
        self.platform.access().is_credential(token)
    }

    fn wake(&self, container: &str) -> BoxFuture<Result<IpAddr, WakeError>> {
        let platform = Arc::clone(&self.platform);
        let id = ContainerId::from_stored(container.to_string());
        let woken = self.home.spawn(async move { platform.containers().wake(&id).await });
        let (metrics, started) = (Arc::clone(&self.metrics), std::time::Instant::now());
        Box::pin(async move {
            let Ok(result) = woken.await else {
                return Err(WakeError::Failed("the start was interrupted".into()));
            };
            let outcome = match &result {
                Ok(_) => "started",
                Err(cubby_core::wake::WakeError::Busy) => "busy",
                Err(cubby_core::wake::WakeError::Timeout) => "timeout",
                Err(cubby_core::wake::WakeError::Disabled) => "disabled",
                Err(cubby_core::wake::WakeError::Failed(_)) => "failed",
            };
            metrics.observe_wake(outcome, started.elapsed().as_secs_f64());
            result.map(IpAddr::V4).map_err(|e| match e {
                cubby_core::wake::WakeError::Busy => WakeError::Busy,
                cubby_core::wake::WakeError::Timeout => WakeError::Timeout,
                cubby_core::wake::WakeError::Disabled => WakeError::Disabled,
                cubby_core::wake::WakeError::Failed(why) => WakeError::Failed(why),
            })
        })
    }

    fn track(&self, target: &Target, method: &str) -> Box<dyn cubby_proxy::Traffic> {
        let container = ContainerId::from_stored(target.container.clone());
        Box::new(Counted {
            activity: self.platform.containers().track(&container),
            logs: self.access_log.then(|| Arc::clone(self.platform.access_logs())),
            metrics: Arc::clone(&self.metrics),
            project: ProjectId::from_stored(target.project.clone()),
            container,
            method: method.to_owned(),
            at: cubby_model::now(),
            started: std::time::Instant::now(),
            status: std::sync::atomic::AtomicU16::new(0),
            bytes: std::sync::atomic::AtomicU64::new(0),
        })
    }

    fn upstream_socket(&self, upstream: SocketAddr) -> BoxFuture<Option<std::os::fd::OwnedFd>> {
        let platform = Arc::clone(&self.platform);
        let in_container = self.in_container;
        Box::pin(async move { if in_container { platform.containers().proxy_socket(upstream).await } else { None } })
    }
}

/// A proxied request's traffic: counted in its container's activity, and
/// a line of its project's access log when it ends.
struct Counted {
    activity: cubby_core::wake::ActivityGuard,
    logs: Option<Arc<cubby_core::access_log::AccessLogs>>,
    metrics: Arc<cubby_api::routes::metrics::ApiMetrics>,
    project: ProjectId,
    container: ContainerId,
    method: String,
    at: cubby_model::Timestamp,
    started: std::time::Instant,
    status: std::sync::atomic::AtomicU16,
    bytes: std::sync::atomic::AtomicU64,
}

impl cubby_proxy::Traffic for Counted {
    fn sent(&self, bytes: u64) {
        self.activity.sent(bytes);
        self.bytes.fetch_add(bytes, std::sync::atomic::Ordering::Relaxed);
    }

    fn answered(&self, status: u16) {
        self.activity.answered(status);
        self.status.store(status, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let took = self.started.elapsed();
        let line = cubby_model::AccessLogLine {
            at: self.at,
            container_id: self.container.clone(),
            method: std::mem::take(&mut self.method),
            status: *self.status.get_mut(),
            response_bytes: *self.bytes.get_mut(),
            duration_ms: u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
        };
        self.metrics.observe_proxy(line.status, took.as_secs_f64());
        if let Some(logs) = &self.logs {
            logs.record(&self.project, line);
        }
    }
}

/// `--egress-deny` (CIDRs, `none`, or absent for the default) and
/// `--egress-allow`, with the daemon's IPv4 resolvers let through for DNS.
fn egress_guard(
    deny: Option<&[String]>,
    allow: &[ipnet::Ipv4Net],
    dns: &[IpAddr],
) -> anyhow::Result<cubby_network::EgressGuard> {
    let deny = match deny {
        None => None,
        Some([none]) if none == "none" => Some(Vec::new()),
        Some(list) => Some(
            list.iter()
                .map(|cidr| {
                    cidr.parse::<ipnet::Ipv4Net>().map(|n| n.trunc()).map_err(|_| {
                        anyhow::anyhow!("--egress-deny `{cidr}`: give IPv4 CIDRs like 10.0.0.0/8, or none")
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?,
        ),
    };
    let resolvers = dns
        .iter()
        .filter_map(|a| match a {
            IpAddr::V4(v4) => Some(*v4),
            IpAddr::V6(_) => None,
        })
        .collect();
    let allow = allow.iter().map(ipnet::Ipv4Net::trunc).collect();
    Ok(cubby_network::EgressGuard::new(deny, allow, resolvers))
}

/// `--userns`: `off` or `BASE:SIZE`.
fn parse_userns(text: &str) -> anyhow::Result<Option<cubby_core::IdRange>> {
    if text == "off" {
        tracing::warn!("--userns off: containers run as host root");
        return Ok(None);
    }
    let bad = || anyhow::anyhow!("--userns `{text}`: write BASE:SIZE (like 1000000:65536) or off");
    let (base, size) = text.split_once(':').ok_or_else(bad)?;
    let range =
        cubby_core::IdRange { host_base: base.parse().map_err(|_| bad())?, size: size.parse().map_err(|_| bad())? };
    if range.host_base == 0 || range.size < 65_536 || range.host_base.checked_add(range.size).is_none() {
        anyhow::bail!(
            "--userns `{text}`: the base must be above 0 and the size at least 65536 (images use ids up to 65534)"
        );
    }
    Ok(Some(range))
}

fn helpers_dir(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = arg {
        // Absolute: the path ends up in bundles that runc reads from
        // another working directory.
        return std::path::absolute(&dir).with_context(|| format!("resolving --helpers-dir {}", dir.display()));
    }
    // A directory of their own: `cargo build` never writes there, so the
    // static builds are not replaced by the workspace's dynamic ones.
    let exe = std::env::current_exe().context("locating the cubby binary")?;
    let dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    let beside = dir.join("helpers");
    let installed = dir.join("../lib/cubby");
    Ok(if !beside.exists() && installed.join("cubby-init").exists() { installed } else { beside })
}

/// Whether the ELF file at `path` is statically linked (no interpreter).
fn is_static_elf(path: &Path) -> anyhow::Result<bool> {
    let data = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    if data.len() < 64 || &data[..4] != b"\x7fELF" || data[4] != 2 {
        bail!("{} is not a 64-bit ELF executable", path.display());
    }
    let u16_at = |o: usize| u16::from_le_bytes([data[o], data[o + 1]]);
    let phoff = usize::try_from(u64::from_le_bytes(data[32..40].try_into().expect("8 bytes")))?;
    let (phentsize, phnum) = (usize::from(u16_at(54)), usize::from(u16_at(56)));
    for i in 0..phnum {
        let at = phoff + i * phentsize;
        if at + 4 > data.len() {
            bail!("{} has a truncated program header table", path.display());
        }
        if u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes")) == 3 {
            return Ok(false); // PT_INTERP
        }
    }
    Ok(true)
}

fn helpers(dir: &Path, busybox: &Path) -> anyhow::Result<Helpers> {
    let helpers = Helpers {
        init: dir.join("cubby-init"),
        demo: dir.join("cubby-demo"),
        fetch: dir.join("cubby-fetch"),
        busybox: busybox.to_path_buf(),
    };
    for path in [&helpers.init, &helpers.demo, &helpers.fetch, &helpers.busybox] {
        if !path.is_file() {
            bail!(
                "{} is missing: build the static helpers with `scripts/build.sh` (or pass --helpers-dir / --busybox)",
                path.display()
            );
        }
        if !is_static_elf(path)? {
            bail!(
                "{} is dynamically linked, but it runs inside containers that may lack its libraries: build it with `scripts/build.sh`",
                path.display()
            );
        }
    }
    Ok(helpers)
}

fn init_tracing(json: bool, trace_spans: bool) {
    use tracing_subscriber::fmt::format::FmtSpan;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // With --trace-spans, each step (db, storage, network, firewall,
    // runtime, readiness) logs its duration when it ends.
    let spans = if trace_spans { FmtSpan::CLOSE } else { FmtSpan::NONE };
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_span_events(spans);
    if json {
        builder.json().with_span_list(true).init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler installs");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler installs");
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}

pub fn run(args: ServeArgs) -> anyhow::Result<std::process::ExitCode> {
    // What the daemon makes is its own (state, keys, logs, scripts); the
    // few files containers read are given their modes explicitly.
    #[allow(clippy::disallowed_methods, reason = "at start, before any thread")]
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    init_tracing(args.log_json, args.trace_spans);
    raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting tokio")?;
    runtime.block_on(serve(args))?;
    Ok(std::process::ExitCode::SUCCESS)
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    Config::check_prefix(&args.prefix)?;
    let api_listener = tokio::net::TcpListener::bind(args.api_listen)
        .await
        .with_context(|| format!("listening for the API on {}", args.api_listen))?;
    let workers = match args.proxy_workers {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        n => n,
    };
    let proxy_listeners = Listeners::bind(args.proxy_listen, workers).map_err(anyhow::Error::new)?;
    let api_addr = api_listener.local_addr()?;
    let proxy_addr = proxy_listeners.local_addr();
    let certs = certificates(&args)?;
    let tls = match (args.tls_listen, &certs) {
        (Some(addr), Some(certs)) => Some((
            Listeners::bind(addr, workers).map_err(anyhow::Error::new)?,
            certs.server_config(&[ALPN_H2, ALPN_HTTP11]).map_err(anyhow::Error::new)?,
        )),
        _ => None,
    };
    let api_tls = match (args.api_tls, &certs) {
        (true, Some(certs)) => {
            Some(tokio_rustls::TlsAcceptor::from(certs.server_config(&[ALPN_HTTP11]).map_err(anyhow::Error::new)?))
        }
        _ => None,
    };
    let tls_addr = tls.as_ref().map(|(listeners, _)| listeners.local_addr());

    let helpers = helpers(&helpers_dir(args.helpers_dir.clone())?, &args.busybox)?;
    let dns: Vec<IpAddr> = if args.dns.is_empty() {
        Config::resolvers_from(&std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default())
    } else {
        args.dns.clone()
    };
    let pool_size = pool_size_flag(args.pool_size.as_deref())?;
    let max_image_bytes =
        ByteSize::parse(&args.max_image_size).map_err(|e| anyhow::anyhow!("--max-image-size: {e}"))?.0;
    let layout = Layout::new(&args.prefix, args.data_dir.clone(), args.run_dir.clone());
    let config = Config {
        prefix: args.prefix.clone(),
        data_dir: args.data_dir.clone(),
        run_dir: layout.run_dir.clone(),
        proc_root: args.proc_root.clone(),
        domain: args.domain.to_ascii_lowercase(),
        proxy_port: args.public_port.unwrap_or(tls_addr.unwrap_or(proxy_addr).port()),
        https: args.https || tls_addr.is_some(),
        subnet: args.subnet,
        egress_guard: egress_guard(args.egress_deny.as_deref(), &args.egress_allow, &dns)?,
        dns_servers: dns,
        pool_size,
        helpers,
        defaults: Defaults {
            expiry_interval: std::time::Duration::from_secs(args.snapshot_expiry_interval.max(1)),
            usage_interval: std::time::Duration::from_secs(args.usage_interval.clamp(1, 3600)),
            usage_retention: time::Duration::days(i64::from(args.usage_retention_days.max(1))),
            script_memory: ByteSize::parse(&args.script_memory).map_err(|e| anyhow::anyhow!("--script-memory: {e}"))?,
            script_timeout: std::time::Duration::from_secs(args.script_timeout.clamp(1, 300)),
            script_concurrency: args.script_concurrency.clamp(1, cubby_core::scripts::run::MAX_RUNNING),
            script_queue: args.script_queue,
            script_max_body: ByteSize::parse(&args.script_max_body)
                .map_err(|e| anyhow::anyhow!("--script-max-body: {e}"))?,
            ..Defaults::default()
        },
        backup_to: args.backup_dir.clone(),
        failpoints: std::env::var("CUBBY_FAILPOINTS")
            .map(|v| v.split(',').filter(|p| !p.is_empty()).map(str::to_string).collect())
            .unwrap_or_default(),
        userns: parse_userns(&args.userns)?,
        seccomp: if args.seccomp_profile.as_os_str() == "none" {
            tracing::warn!("--seccomp-profile none: containers run without a syscall filter");
            None
        } else {
            let target = cubby_runtime::seccomp::Target::host(cubby_runtime::bundle::default_capability_names());
            Some(cubby_runtime::seccomp::load(&args.seccomp_profile, &target).with_context(|| {
                "loading the seccomp profile (scripts/setup.sh installs Docker's default as \
                 /usr/share/containers/seccomp.json; pass --seccomp-profile none to run without one)"
            })?)
        },
    };

    std::fs::create_dir_all(&args.data_dir).with_context(|| format!("creating {}", args.data_dir.display()))?;
    let store = Arc::new(
        cubby_store::SqliteStore::open(&args.data_dir.join("cubby.db")).context("opening the state database")?,
    );
    let host = crate::host::real(&args.proc_root, &args.runtime, &layout, &args.cgroup_root)?;
    let platform = Platform::open(config, store, host).await.map_err(error_chain).context("starting the core")?;
    if let Some(to) = &args.backup_dir {
        platform.backup_target(to).map_err(error_chain).context("--backup-dir")?;
    }
    if let Some(every) = args.backup_interval {
        platform.schedule_backups(every).map_err(error_chain).context("--backup-dir")?;
    }
    let token_file = args.data_dir.join("admin.token");
    platform.access().ensure_admin_token(&token_file).map_err(error_chain)?;

    let endpoints = args.data_dir.join("endpoints.json");
    let api_url = format!("{}://{api_addr}", if api_tls.is_some() { "https" } else { "http" });
    // Written whole, then renamed: a reader never sees half a file.
    let partial = args.data_dir.join(".endpoints.json.tmp");
    std::fs::write(
        &partial,
        serde_json::to_vec_pretty(&serde_json::json!({
            "api": api_url,
            "proxy": format!("http://{proxy_addr}"),
            "proxy_tls": tls_addr.map(|a| format!("https://{a}")),
            "domain": platform.config().domain,
            "pid": std::process::id(),
        }))?,
    )?;
    std::fs::rename(&partial, &endpoints)?;

    let api_metrics =
        if args.no_metrics { cubby_api::routes::metrics::disabled() } else { cubby_api::routes::metrics::shared() };
    let app = cubby_api::router(cubby_api::AppState {
        platform: Arc::clone(&platform),
        max_image_bytes,
        metrics: Arc::clone(&api_metrics),
        dns: Arc::new(crate::dns::Dns::new(args.domain_dns)?),
    });
    // Scripts may fetch the world, not the daemon's host or its containers.
    // Scripts may fetch the world: not the daemon's host, its containers,
    // or what the egress guard keeps containers from.
    let guard = &platform.config().egress_guard;
    let mut blocked = cubby_scripts::default_blocked();
    blocked.push(ipnet::IpNet::V4(platform.config().subnet));
    let destinations = cubby_scripts::Destinations {
        blocked,
        guarded: guard.deny.iter().copied().map(ipnet::IpNet::V4).collect(),
        allowed: guard.allow.iter().copied().map(ipnet::IpNet::V4).collect(),
        host_addresses: true,
    };
    let fetcher =
        cubby_scripts::HttpFetcher::new(destinations).map_err(|e| anyhow::anyhow!("the scripts' fetch client: {e}"))?;
    // Webhooks go out with the same destination checks as scripts' fetch.
    platform.deliver_webhooks(Arc::new(fetcher.clone()));
    let max_body = ByteSize::parse(&args.proxy_max_body).map_err(|e| anyhow::anyhow!("--proxy-max-body: {e}"))?.0;
    let acme = match (&args.acme_directory, &certs) {
        (Some(directory), Some(certs)) => Some(Arc::new(
            Acme::open(
                AcmeOptions {
                    directory: directory.clone(),
                    ca_file: args.acme_ca_file.clone(),
                    email: args.acme_email.clone(),
                    challenge: args.acme_challenge,
                    dns_hook: args.acme_dns_hook.clone().map(DnsHook),
                },
                args.data_dir.join("acme"),
                Arc::clone(certs),
                Arc::new(Challenges::default()),
            )
            .await
            .map_err(anyhow::Error::new)
            .with_context(|| format!("opening the ACME account at {directory}"))?,
        )),
        _ => None,
    };
    let _renewals = acme.clone().map(|acme| tokio::spawn(acme.renew_forever()));
    let _wildcards = acme.clone().filter(|_| args.acme_dns_hook.is_some()).map(|acme| {
        let domain = platform.config().domain.clone();
        tokio::spawn(async move {
            for parent in [domain.clone(), format!("exec.{domain}")] {
                match acme.ensure_wildcard(&parent).await {
                    Ok(()) => tracing::info!(%parent, "a wildcard certificate covers every host under it"),
                    Err(e) => tracing::warn!(%parent, error = %e, "no wildcard certificate; hosts get one each"),
                }
            }
        })
    });
    let proxy_config = ProxyConfig {
        acme,
        domain: platform.config().domain.clone(),
        https: args.https,
        redirect_to_https: tls_addr.map(|_| platform.config().proxy_port),
        max_body,
        upstream_timeout: std::time::Duration::from_secs(args.proxy_timeout.max(1)),
        own_connections_per_app: args.proxy_own_connections,
        ..ProxyConfig::default()
    };
    let home = tokio::runtime::Handle::current();
    let resolver: Arc<dyn Resolver> = Arc::new(Routes {
        platform: Arc::clone(&platform),
        home: home.clone(),
        in_container: !args.proxy_via_host,
        metrics: Arc::clone(&api_metrics),
        access_log: !args.no_access_log,
    });
    let event_scripts = Arc::new(crate::scripts::Scripts {
        platform: Arc::clone(&platform),
        api: app.clone(),
        fetcher: Arc::new(fetcher),
        home,
        metrics: api_metrics,
    });
    let scripts: Arc<dyn ScriptRunner> = Arc::clone(&event_scripts) as Arc<dyn ScriptRunner>;
    let _event_scripts = Arc::clone(&event_scripts).follow_events();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let wait = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.changed().await;
    };
    let api_task = match api_tls {
        None => tokio::spawn(
            axum::serve(api_listener, app.into_make_service())
                .with_graceful_shutdown(wait(stop_rx.clone()))
                .into_future(),
        ),
        Some(acceptor) => tokio::spawn(serve_api_tls(api_listener, app, acceptor, stop_rx.clone())),
    };
    let _reload = certs.map(reload_certificates);
    let proxy = Workers::start(proxy_listeners, tls, &proxy_config, &resolver, Some(&scripts), &stop_rx)
        .map_err(anyhow::Error::new)?;

    eprintln!(
        "\ncubby is running.\n  API:        {api_url}\n  proxy:      http://{proxy_addr} (container URLs: http://<name>--<project>.{}:{})\n  admin token: {}\n  data dir:   {}\n\nTry:\n  TOKEN=$(cat {})\n  curl -sX POST -H \"Authorization: Bearer $TOKEN\" {api_url}/api/v1/projects -d '{{\"name\":\"acme\"}}'\n",
        platform.config().domain,
        platform.config().proxy_port,
        token_file.display(),
        args.data_dir.display(),
        token_file.display(),
    );

    shutdown_signal().await;
    tracing::info!("shutting down; containers keep running");
    let _ = stop_tx.send(true);
    let _ = api_task.await;
    proxy.wait().await;
    // Deletes answered already; let their network teardown finish.
    if !platform.settle(std::time::Duration::from_secs(10)).await {
        tracing::warn!("teardowns still running at shutdown; the next start finishes them");
    }
    platform.shutdown();
    let _ = std::fs::remove_file(&endpoints);
    Ok(())
}

/// The certificates of --tls-cert/--tls-key, when HTTPS is asked for.
fn certificates(args: &ServeArgs) -> anyhow::Result<Option<Arc<CertStore>>> {
    let wanted = args.tls_listen.is_some() || args.api_tls;
    if !wanted {
        if !args.tls_certs.is_empty() || !args.tls_keys.is_empty() {
            bail!("--tls-cert and --tls-key are for --tls-listen or --api-tls: give one of them too");
        }
        return Ok(None);
    }
    if args.tls_certs.len() != args.tls_keys.len() || (args.tls_certs.is_empty() && args.acme_directory.is_none()) {
        bail!(
            "--tls-listen and --api-tls need certificates: give --tls-cert FILE --tls-key FILE (as many keys as certificates, in the same order)"
        );
    }
    let pairs = args.tls_certs.iter().zip(&args.tls_keys).map(|(c, k)| CertFiles { cert: c.clone(), key: k.clone() });
    let certs = CertStore::load_or_empty(pairs.collect())
        .map_err(anyhow::Error::new)
        .context("loading --tls-cert/--tls-key")?;
    Ok(Some(certs))
}

/// Serves the API over TLS (`--api-tls`, HTTP/1.1) until `stop`, then
/// lets open connections finish for at most 10 s.
async fn serve_api_tls(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    acceptor: tokio_rustls::TlsAcceptor,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()> {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "API accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let (acceptor, app, watcher) = (acceptor.clone(), app.clone(), graceful.watcher());
        tokio::spawn(async move {
            let Ok(Ok(tls)) = tokio::time::timeout(std::time::Duration::from_secs(10), acceptor.accept(stream)).await
            else {
                return;
            };
            let service = hyper_util::service::TowerToHyperService::new(app);
            let conn =
                hyper::server::conn::http1::Builder::new().serve_connection(hyper_util::rt::TokioIo::new(tls), service);
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(error = %e, "API connection ended with an error");
            }
        });
    }
    if tokio::time::timeout(std::time::Duration::from_secs(10), graceful.shutdown()).await.is_err() {
        tracing::warn!("API shutdown timed out with connections still open");
    }
    Ok(())
}

/// Checks the certificate files every few seconds and loads them again
/// when they change (a renewal); files that do not load are logged and
/// the previous certificates stay in use.
fn reload_certificates(certs: Arc<CertStore>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(CERT_CHECK_INTERVAL);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let certs = Arc::clone(&certs);
            match tokio::task::spawn_blocking(move || certs.reload_if_changed()).await {
                Ok(Ok(true)) => tracing::info!("TLS certificates reloaded"),
                Ok(Ok(false)) => {}
                Ok(Err(e)) => {
                    let error = format!("{:#}", anyhow::Error::new(e));
                    tracing::error!(%error, "new TLS certificate files do not load; the previous ones stay in use");
                }
                Err(_) => return,
            }
        }
    })
}

/// How often certificate files are checked for changes.
const CERT_CHECK_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);

/// Raises the soft limit of open files to the hard one: the daemon holds
/// a pidfd, an output pipe and proxied connections per tenant, past the
/// 1024 a soft limit often is. (Its children get the raised limit too;
/// the runtime sets containers' own.)
fn raise_fd_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::warn!(error = %e, soft, hard, "could not raise the open files limit");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not read the open files limit"),
    }
}

/// The error with its causes, for the daemon's last words.
fn error_chain(err: cubby_core::Error) -> anyhow::Error {
    anyhow::Error::new(err)
}
