//! [`Daemon`]: one real daemon for one test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cubby_client::Client;

/// Whether the test may run. Without root it panics when `CI=true` (CI
/// must never skip silently) and otherwise prints a loud notice and
/// returns false.
pub fn require_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{test} needs root (it drives runc, btrfs, netlink and nftables), and CI=true forbids skipping");
    }
    eprintln!("\n*** SKIPPED {test}: it needs root (real runc, btrfs, netlink, nftables) ***\n");
    false
}

/// Options of a test daemon.
#[derive(Debug, Clone, Default)]
pub struct DaemonOptions {
    /// Extra flags for `cubby serve`.
    pub extra_args: Vec<String>,
    /// The container subnet (default: a free /24 in 10.216.0.0/16).
    pub subnet: Option<String>,
    /// Size of the loop pool (default 3GiB).
    pub pool_size: Option<String>,
    /// Run the daemon in a session of its own, as a service manager would
    /// (the bench: the kernel then schedules it apart from the load
    /// generator, see [`own_session`]). Tests leave it off, so an
    /// interrupted test run takes its daemons with it.
    pub own_session: bool,
    /// Extra environment of the daemon process.
    pub env: Vec<(String, String)>,
}

/// Makes `cmd` start a new session. With autogroup scheduling (Debian's
/// default) every session is one scheduling group, so a server started
/// this way shares the CPUs with its load generator group against group,
/// as under systemd, instead of thread against thread.
pub fn own_session(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and calls
    // only setsid(2), which is async-signal-safe and touches no memory of
    // the parent.
    unsafe {
        cmd.pre_exec(|| nix::unistd::setsid().map(drop).map_err(std::io::Error::from));
    }
    cmd
}

/// A running `cubby serve` owned by one test.
#[derive(Debug)]
pub struct Daemon {
    pub prefix: String,
    pub data_dir: PathBuf,
    pub run_dir: PathBuf,
    pub subnet: String,
    /// `http://host:port` of the API.
    pub api: String,
    pub api_addr: SocketAddr,
    /// Where the container proxy listens.
    pub proxy_addr: SocketAddr,
    pub token: String,
    bin: PathBuf,
    args: Vec<String>,
    child: Option<Child>,
    log: PathBuf,
    /// Extra environment of the daemon process (e.g. `CUBBY_FAILPOINTS`).
    env: Vec<(String, String)>,
    own_session: bool,
    /// Held until the daemon is purged (fields drop after `Drop::drop`).
    _lease: Option<SubnetLease>,
}

fn random_suffix(len: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).expect("random source");
    bytes.iter().map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()])).collect()
}

/// A /24 in 10.216.0.0/16 held by one test daemon. Tests start daemons in
/// parallel (and several test binaries may run at once), so looking at the
/// routing table is not enough: two daemons could pick the same /24 before
/// either made its bridge, and then one's traffic reaches the other's
/// containers. A lease file made with `O_EXCL` in a host-wide directory
/// settles the race; the file names the owning pid, so a lease left by a
/// killed test process is taken over.
#[derive(Debug)]
struct SubnetLease {
    subnet: String,
    file: PathBuf,
}

const LEASE_DIR: &str = "/run/cubby-test-subnets";

impl SubnetLease {
    fn take() -> Self {
        std::fs::create_dir_all(LEASE_DIR).expect("make the subnet lease directory");
        let routes = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
        for _ in 0..1000 {
            let mut b = [0u8; 1];
            getrandom::fill(&mut b).expect("random source");
            // /proc/net/route holds destinations as little-endian hex.
            let hex = format!("{:02X}D80A", b[0]);
            if routes
                .lines()
                .any(|l| l.split_whitespace().nth(1).is_some_and(|d| d.starts_with("00") && d.ends_with(&hex)))
            {
                continue;
            }
            let file = Path::new(LEASE_DIR).join(b[0].to_string());
            if Self::claim(&file) {
                return Self { subnet: format!("10.216.{}.0/24", b[0]), file };
            }
        }
        panic!("no free /24 left in 10.216.0.0/16");
    }

    fn claim(file: &Path) -> bool {
        use std::io::Write;
        let me = std::process::id().to_string();
        match std::fs::OpenOptions::new().write(true).create_new(true).open(file) {
            Ok(mut f) => f.write_all(me.as_bytes()).is_ok(),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let owner = std::fs::read_to_string(file).unwrap_or_default();
                let alive = !owner.is_empty() && Path::new("/proc").join(owner.trim()).exists();
                // A dead owner's lease is removed; the next attempt may take it.
                if !alive {
                    let _ = std::fs::remove_file(file);
                }
                false
            }
            Err(e) => panic!("subnet lease {}: {e}", file.display()),
        }
    }
}

impl Drop for SubnetLease {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.file);
    }
}

impl Daemon {
    /// Starts a daemon from the `cubby` binary at `bin` and waits until its
    /// API answers.
    pub fn start(bin: &str) -> Self {
        Self::start_with(bin, DaemonOptions::default())
    }

    /// Starts a daemon with extra options.
    pub fn start_with(bin: &str, options: DaemonOptions) -> Self {
        let mut daemon = Self::prepare_with(bin, options);
        daemon.spawn();
        daemon
    }

    /// A daemon with its own prefix, data dir and subnet, not started yet
    /// (to put something in its data dir first, as a restore does):
    /// [`Daemon::start_again`] starts it.
    pub fn prepare_with(bin: &str, options: DaemonOptions) -> Self {
        let prefix = format!("t{}", random_suffix(7));
        let data_dir = std::env::temp_dir().join(format!("cubby-test-{prefix}"));
        let run_dir = PathBuf::from(format!("/run/{prefix}"));
        let lease = options.subnet.is_none().then(SubnetLease::take);
        let subnet = options.subnet.clone().or_else(|| lease.as_ref().map(|l| l.subnet.clone())).expect("a subnet");
        let log = std::env::temp_dir().join(format!("cubby-test-{prefix}.log"));
        let mut args = vec![
            "serve".to_string(),
            "--data-dir".into(),
            data_dir.display().to_string(),
            "--prefix".into(),
            prefix.clone(),
            "--run-dir".into(),
            run_dir.display().to_string(),
            "--subnet".into(),
            subnet.clone(),
            // On every interface, so isolation tests prove the firewall (and
            // not only loopback) keeps containers away from the API.
            "--api-listen".into(),
            "0.0.0.0:0".into(),
            "--pool-size".into(),
            options.pool_size.clone().unwrap_or_else(|| "3GiB".into()),
            // A fixed resolver (TEST-NET-1) so tests can check what
            // containers are given; tests never send traffic outside.
            "--dns".into(),
            "192.0.2.53".into(),
        ];
        // Custom domains' TXT lookups never leave the machine: a closed
        // loopback port, unless the test runs a DNS server of its own.
        if !options.extra_args.iter().any(|a| a == "--domain-dns") {
            args.extend(["--domain-dns".to_string(), "127.0.0.1:9".to_string()]);
        }
        // A free port, unless the test needs one it knows beforehand.
        if !options.extra_args.iter().any(|a| a == "--proxy-listen") {
            args.extend(["--proxy-listen".to_string(), "127.0.0.1:0".to_string()]);
        }
        args.extend(options.extra_args);
        Self {
            prefix,
            data_dir,
            run_dir,
            subnet,
            api: String::new(),
            api_addr: "127.0.0.1:0".parse().expect("addr"),
            proxy_addr: "127.0.0.1:0".parse().expect("addr"),
            token: String::new(),
            bin: PathBuf::from(bin),
            args,
            child: None,
            log,
            env: options.env,
            own_session: options.own_session,
            _lease: lease,
        }
    }

    fn spawn(&mut self) {
        let _ = std::fs::remove_file(self.data_dir.join("endpoints.json"));
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("open daemon log");
        let mut cmd = Command::new(&self.bin);
        if self.own_session {
            own_session(&mut cmd);
        }
        let child = cmd
            .args(&self.args)
            .env("RUST_LOG", "info,cubby_core=debug")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", self.bin.display()));
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("the daemon exited with {status} at start; its log:\n{}", self.log_text());
            }
            // (An older daemon may still be writing it: only a whole file counts.)
            if let Some(v) = std::fs::read(self.data_dir.join("endpoints.json"))
                .ok()
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            {
                let api = v["api"].as_str().expect("api").replace("0.0.0.0", "127.0.0.1");
                let addr = api.strip_prefix("https://").or_else(|| api.strip_prefix("http://")).unwrap_or(&api);
                self.api_addr = addr.parse().expect("api addr");
                self.api = api;
                self.proxy_addr =
                    v["proxy"].as_str().expect("proxy").trim_start_matches("http://").parse().expect("proxy addr");
                self.token =
                    std::fs::read_to_string(self.data_dir.join("admin.token")).expect("admin token").trim().into();
                return;
            }
            assert!(Instant::now() < deadline, "the daemon did not start within 60 s; its log:\n{}", self.log_text());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The daemon's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A client with the admin token.
    pub fn admin(&self) -> Client {
        Client::new(self.api.clone(), Some(self.token.clone()))
    }

    /// A client with `token` (or none).
    pub fn client(&self, token: Option<&str>) -> Client {
        Client::new(self.api.clone(), token.map(str::to_string))
    }

    /// The daemon's pid.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Stops the daemon with `signal` and waits for it to exit.
    pub fn stop_with(&mut self, signal: nix::sys::signal::Signal) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid fits"));
            let _ = nix::sys::signal::kill(pid, signal);
            let deadline = Instant::now() + Duration::from_secs(30);
            while child.try_wait().ok().flatten().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// Stops the daemon (SIGTERM) and starts it again with the same flags.
    pub fn restart(&mut self) {
        self.stop_with(nix::sys::signal::Signal::SIGTERM);
        self.spawn();
    }

    /// Restarts the daemon (SIGTERM if it still runs) with this extra
    /// environment instead of the previous one.
    pub fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        self.stop_with(nix::sys::signal::Signal::SIGTERM);
        self.env = env.iter().map(|(k, v)| ((*k).to_string(), (*v).to_string())).collect();
        self.spawn();
    }

    /// Waits (at most `within`) for the daemon process to exit on its own;
    /// its exit status, if it did.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Makes later restarts listen on the addresses this daemon got (the
    /// first start takes free ports), as a service restarted with fixed
    /// `--api-listen` and `--proxy-listen` does.
    pub fn keep_addresses(&mut self) {
        let api = format!("0.0.0.0:{}", self.api_addr.port());
        let proxy = self.proxy_addr.to_string();
        for (flag, value) in [("--api-listen", api), ("--proxy-listen", proxy)] {
            if let Some(i) = self.args.iter().position(|a| a == flag) {
                self.args[i + 1] = value;
            }
        }
    }

    /// Starts the daemon again (after [`Daemon::stop_with`]) with the same
    /// flags and environment.
    pub fn start_again(&mut self) {
        self.spawn();
    }

    /// Kills the daemon (SIGKILL) and starts it again with the same flags.
    pub fn crash_and_restart(&mut self) {
        self.stop_with(nix::sys::signal::Signal::SIGKILL);
        self.spawn();
    }

    /// The bin's path (to run CLI commands against this daemon).
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Runs the `cubby` CLI against this daemon; returns (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(&self.bin)
            .args(args)
            .env("CUBBY_API", &self.api)
            .env("CUBBY_TOKEN", &self.token)
            .env("CUBBY_DATA_DIR", &self.data_dir)
            .output()
            .expect("run cubby CLI");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop_with(nix::sys::signal::Signal::SIGTERM);
        let status = Command::new(&self.bin)
            .args(["purge", "--yes", "--prefix", &self.prefix, "--data-dir"])
            .arg(&self.data_dir)
            .arg("--run-dir")
            .arg(&self.run_dir)
            .status();
        match status {
            Ok(s) if s.success() && !std::thread::panicking() && std::env::var_os("CUBBY_KEEP_LOGS").is_none() => {
                let _ = std::fs::remove_file(&self.log);
            }
            Ok(s) if s.success() => eprintln!("the daemon's log is kept at {}", self.log.display()),
            other => {
                eprintln!("purge of test daemon {} failed ({other:?}); log kept at {}", self.prefix, self.log.display())
            }
        }
    }
}
