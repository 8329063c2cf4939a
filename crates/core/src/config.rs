//! The daemon's configuration, as the core sees it: names, paths, address
//! plan and defaults. The binary fills it from flags.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use cubby_model::{ByteSize, Limits};
use ipnet::Ipv4Net;

/// Host binaries that containers are made from.
#[derive(Debug, Clone)]
pub struct Helpers {
    /// Static init, bind-mounted as PID 1 of every container.
    pub init: PathBuf,
    /// Static demo app of the `minimal` image.
    pub demo: PathBuf,
    /// Static HTTP client of the `minimal` image.
    pub fetch: PathBuf,
    /// Static busybox of the `minimal` image.
    pub busybox: PathBuf,
}

/// Defaults for containers that do not say otherwise.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub limits: Limits,
    /// Size cap of `/ramdisk`.
    pub ramdisk: ByteSize,
    /// How long a stop waits after SIGTERM before SIGKILL.
    pub stop_timeout: Duration,
    /// How long a start waits for the app's port to accept connections.
    pub ready_timeout: Duration,
    /// Cap of each container's output log (two files of this size at most).
    pub log_cap: ByteSize,
    /// Snapshots a container may keep unless it says otherwise.
    pub max_snapshots: u32,
    /// Longest chain of layers (copies of copies) before it is flattened.
    pub max_layer_depth: usize,
    /// How often expired snapshots are looked for.
    pub expiry_interval: Duration,
    /// Memory limit of one exec script invocation.
    pub script_memory: ByteSize,
    /// Time limit of one exec script invocation (a script's `@timeout` overrides it).
    pub script_timeout: Duration,
    /// Scripts of one project that run at once.
    pub script_concurrency: usize,
    /// Requests of one project that wait for a run slot; past it, 503.
    pub script_queue: usize,
    /// Largest request body a script gets.
    pub script_max_body: ByteSize,
    /// How often every container's usage counters are read.
    pub usage_interval: Duration,
    /// How long hour rows of usage are kept (minute rows: two days).
    pub usage_retention: time::Duration,
}

impl Default for Defaults {
    fn default() -> Self {
        Self {
            limits: Limits { cpu: 1.0, memory: ByteSize(512 << 20), pids: 512, disk: None },
            ramdisk: ByteSize(64 << 20),
            stop_timeout: Duration::from_secs(10),
            ready_timeout: Duration::from_secs(10),
            log_cap: ByteSize(1 << 20),
            max_snapshots: 10,
            max_layer_depth: 8,
            expiry_interval: Duration::from_secs(60),
            script_memory: ByteSize(64 << 20),
            script_timeout: Duration::from_secs(30),
            script_concurrency: 8,
            script_queue: 32,
            script_max_body: ByteSize(1 << 20),
            usage_interval: Duration::from_secs(10),
            usage_retention: time::Duration::days(400),
        }
    }
}

/// Everything the core needs to know about where and how it runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// Name stem of every host resource (bridge, veths, nft table, cgroup
    /// parent, runtime root): two daemons with different prefixes can share
    /// a host.
    pub prefix: String,
    /// State: database, tokens, logs, the pool.
    pub data_dir: PathBuf,
    /// Runtime files that do not outlive a reboot: bundles, mount points,
    /// network namespaces, the runtime's state (`/run/{prefix}`).
    pub run_dir: PathBuf,
    /// Where proc is mounted (normally `/proc`).
    pub proc_root: PathBuf,
    /// Container URLs are `http://{name}--{project}.{domain}:{proxy_port}/`
    /// (`https://` with [`Config::https`]).
    pub domain: String,
    /// The port the proxy is reached on, for URLs.
    pub proxy_port: u16,
    /// Whether users reach the proxy over HTTPS (its own TLS listener, or a
    /// TLS front): URLs are then `https://`.
    pub https: bool,
    /// The container address range.
    pub subnet: Ipv4Net,
    /// Resolvers written to each container's `/etc/resolv.conf`.
    pub dns_servers: Vec<IpAddr>,
    /// Destinations no container reaches, whatever its own rules.
    pub egress_guard: cubby_network::EgressGuard,
    /// Size of a new loop pool, when one is made.
    pub pool_size: Option<u64>,
    pub helpers: Helpers,
    pub defaults: Defaults,
    /// The syscall filter of every container (`None`: no filter).
    pub seccomp: Option<cubby_runtime::seccomp::LinuxSeccomp>,
    /// The host id range of containers' user namespaces for a new pool
    /// (`None`: containers run as host root). A pool keeps the choice it
    /// was made with; see [`crate::userns`].
    pub userns: Option<IdRange>,
    /// Where `POST /api/v1/backups` and scheduled backups write when no
    /// other place is named (`--backup-dir`): a directory or
    /// `s3://bucket/prefix`.
    pub backup_to: Option<String>,
    /// Test-only crash points (`CUBBY_FAILPOINTS`): the daemon kills itself
    /// with SIGKILL on reaching one. Empty in production.
    pub failpoints: std::collections::HashSet<String>,
}

/// A range of host uids and gids: 0..`size` inside a container are
/// `host_base`..`host_base + size` on the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdRange {
    pub host_base: u32,
    pub size: u32,
}

impl Default for IdRange {
    /// 65536 ids from 1000000, above the ranges `useradd` hands out (and
    /// the 100000+ of `/etc/subuid`), as Incus does.
    fn default() -> Self {
        Self { host_base: 1_000_000, size: 65_536 }
    }
}

/// How URLs of this daemon are written: `http://{label}.{domain}{:port}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Urls {
    pub domain: String,
    /// The port the proxy is reached on (left out when it is the scheme's
    /// default).
    pub proxy_port: u16,
    /// `https://` URLs.
    pub https: bool,
}

impl Urls {
    /// The URL of a whole hostname on the proxy (a custom domain).
    pub fn of_host(&self, host: &str) -> String {
        let (scheme, default_port) = if self.https { ("https", 443) } else { ("http", 80) };
        let port = if self.proxy_port == default_port { String::new() } else { format!(":{}", self.proxy_port) };
        format!("{scheme}://{host}{port}")
    }

    /// The URL of a host label (`app--acme`, `acme.exec`).
    pub fn of_label(&self, label: &str) -> String {
        self.of_host(&format!("{label}.{}", self.domain))
    }
}

/// A prefix that cannot name this daemon's host resources.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "prefix `{prefix}` must be 1 to 8 lowercase letters and digits, starting with a letter (it names interfaces, limited to 15 bytes)"
)]
pub struct PrefixError {
    pub prefix: String,
}

impl Config {
    /// How this daemon writes URLs.
    pub fn urls(&self) -> Urls {
        Urls { domain: self.domain.clone(), proxy_port: self.proxy_port, https: self.https }
    }

    /// Where this instance keeps its host resources, and their names.
    pub fn layout(&self) -> crate::inventory::Layout {
        crate::inventory::Layout {
            prefix: self.prefix.clone(),
            data_dir: self.data_dir.clone(),
            run_dir: self.run_dir.clone(),
        }
    }

    /// Validates the prefix: 1 to 8 of `a-z0-9`, starting with a letter,
    /// so every derived interface name fits the kernel's 15 bytes.
    pub fn check_prefix(prefix: &str) -> Result<(), PrefixError> {
        let ok = !prefix.is_empty()
            && prefix.len() <= 8
            && prefix.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
            && prefix.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        if ok { Ok(()) } else { Err(PrefixError { prefix: prefix.chars().take(64).collect() }) }
    }

    /// The host's resolvers from `resolv.conf` text, leaving out loopback
    /// ones (a container cannot reach the host's 127.0.0.53).
    pub fn resolvers_from(resolv_conf: &str) -> Vec<IpAddr> {
        resolv_conf
            .lines()
            .filter_map(|l| l.trim().strip_prefix("nameserver"))
            .filter_map(|a| a.trim().parse::<IpAddr>().ok())
            .filter(|a| !a.is_loopback())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert!(Config::check_prefix("cubby").is_ok());
        assert!(Config::check_prefix("t1a2b3c4").is_ok());
        assert!(Config::check_prefix("toolongxx").is_err());
        assert!(Config::check_prefix("1abc").is_err());
        assert!(Config::check_prefix("a-b").is_err());
    }

    #[test]
    fn loopback_resolvers_are_left_out() {
        let r = Config::resolvers_from("# x\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver ::1\nsearch lan\n");
        assert_eq!(r, vec!["10.0.0.2".parse::<IpAddr>().unwrap()]);
    }
}
