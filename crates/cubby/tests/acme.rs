//! End to end, as root, never against a public CA: the proxy gets a
//! tenant's certificate from Pebble (Let's Encrypt's ACME test server,
//! Debian's package, run by the test on loopback with its mock DNS
//! answering 127.0.0.1) at the tenant's first HTTPS connection, over
//! HTTP-01 answered by the proxy itself; curl verifies it against Pebble's
//! root. A host nobody serves gets no certificate; a restart serves the
//! stored one without asking again. TLS-ALPN-01 proves a name with no
//! plain HTTP, and a 30-second certificate is renewed before it expires;
//! a DNS-01 hook gets `*.{domain}` and `*.exec.{domain}` at startup.

mod support;

use std::net::{TcpListener, TcpStream, UdpSocket};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cubby_testkit::{Daemon, DaemonOptions};
use support::{container, project};

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    // Free for both TCP and UDP (the mock DNS listens on both).
    loop {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

fn wait_tcp(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Pebble's own HTTPS certificate, from a CA made here.
fn pebble_certificate(dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    // Distinct names: a leaf named like its issuer looks self-signed.
    ca.distinguished_name.push(rcgen::DnType::CommonName, "pebble test CA");
    std::fs::write(dir.join("ca.pem"), ca.self_signed(&ca_key).unwrap().pem()).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    leaf.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
    let cert = leaf.signed_by(&key, &rcgen::Issuer::from_params(&ca, &ca_key)).unwrap();
    std::fs::write(dir.join("pebble.crt"), cert.pem()).unwrap();
    std::fs::write(dir.join("pebble.key"), key.serialize_pem()).unwrap();
}

fn curl(args: &[&str]) -> (i32, String, String) {
    let out = Command::new("curl").args(["-sS", "--max-time", "60"]).args(args).output().expect("curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Pebble and its mock DNS (every name is 127.0.0.1) on loopback, with
/// a CA of its own for its HTTPS; killed when dropped.
struct Pebble {
    dir: tempfile::TempDir,
    directory: u16,
    management: u16,
    /// The mock DNS's management API (`/set-txt`, `/clear-txt`).
    mock_management: u16,
    _running: [Running; 2],
}

impl Pebble {
    /// Validates HTTP-01 on `http` and TLS-ALPN-01 on `tls`; issues
    /// certificates valid for `validity` seconds (Pebble's default: years).
    fn start(http: u16, tls: u16, validity: Option<u64>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        pebble_certificate(dir.path());
        let (dns, directory, management, mock_management) = (free_port(), free_port(), free_port(), free_port());
        let mock = Running(
            Command::new("pebble-challtestsrv")
                .args(["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""])
                .args(["-dns01", &format!("127.0.0.1:{dns}"), "-http01", "", "-https01", "", "-tlsalpn01", ""])
                .args(["-management", &format!("127.0.0.1:{mock_management}")])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("pebble-challtestsrv (Debian's pebble; scripts/setup.sh --acme installs it)"),
        );
        wait_tcp(dns, "the mock DNS");
        wait_tcp(mock_management, "the mock DNS's management API");
        let path = |name: &str| dir.path().join(name).display().to_string();
        let mut config = serde_json::json!({ "pebble": {
            "listenAddress": format!("127.0.0.1:{directory}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": path("pebble.crt"),
            "privateKey": path("pebble.key"),
            "httpPort": http,
            "tlsPort": tls,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        if let Some(seconds) = validity {
            config["pebble"]["certificateValidityPeriod"] = seconds.into();
        }
        std::fs::write(dir.path().join("pebble.json"), config.to_string()).unwrap();
        let pebble = Running(
            Command::new("pebble")
                .args(["-config", &path("pebble.json"), "-dnsserver", &format!("127.0.0.1:{dns}")])
                .env("PEBBLE_VA_NOSLEEP", "1")
                .env("PEBBLE_WFE_NONCEREJECT", "0")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("pebble"),
        );
        wait_tcp(directory, "pebble");
        let pebble = Self { dir, directory, management, mock_management, _running: [mock, pebble] };
        // Pebble's root, from its management interface, for curl.
        let (code, root, err) =
            curl(&["--cacert", &pebble.path("ca.pem"), &format!("https://127.0.0.1:{}/roots/0", pebble.management)]);
        assert_eq!(code, 0, "{err}");
        std::fs::write(pebble.dir.path().join("root.pem"), root).unwrap();
        pebble
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// The daemon arguments that make it a client of this Pebble.
    fn daemon_args(&self, http: u16, https: u16, more: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "--domain".into(),
            "cubby.test".into(),
            "--proxy-listen".into(),
            format!("127.0.0.1:{http}"),
            "--tls-listen".into(),
            format!("127.0.0.1:{https}"),
            "--acme-directory".into(),
            format!("https://127.0.0.1:{}/dir", self.directory),
            "--acme-ca-file".into(),
            self.path("ca.pem"),
        ];
        args.extend(more.iter().map(|s| (*s).to_string()));
        args
    }

    /// `https://{host}:{port}/` through curl, trusting Pebble's root only.
    fn get(&self, host: &str, port: u16, verbose: bool) -> (i32, String, String) {
        let root = self.path("root.pem");
        let resolve = format!("{host}:{port}:127.0.0.1");
        let url = format!("https://{host}:{port}/");
        let mut args = vec!["--cacert", root.as_str(), "--resolve", resolve.as_str(), url.as_str()];
        if verbose {
            args.push("-v");
        }
        curl(&args)
    }
}

/// The served certificate's start date, from curl's verbose output.
fn start_date(verbose: &str) -> String {
    verbose.lines().find(|l| l.contains("start date:")).unwrap_or_else(|| panic!("no start date in {verbose}")).into()
}

#[test]
fn a_tenant_gets_its_certificate_from_the_acme_ca_on_its_first_https_request() {
    if !cubby_testkit::require_root("a_tenant_gets_its_certificate_from_the_acme_ca_on_its_first_https_request") {
        return;
    }
    let (http, https) = (free_port(), free_port());
    let pebble = Pebble::start(http, https, None);
    let extra_args = pebble.daemon_args(http, https, &[]);
    let mut d = Daemon::start_with(support::BIN, DaemonOptions { extra_args, ..Default::default() });
    let api = d.admin();
    let p = project(&api, "acme");
    let web = container(&api, &p, "web", "issued for me");
    assert_eq!(web.url, format!("https://web--acme.cubby.test:{https}"));
    let account = d.data_dir.join("acme/account.json");
    assert_eq!(std::fs::metadata(&account).unwrap().permissions().mode() & 0o777, 0o600, "the account key is private");
    let get = |host: &str| pebble.get(host, https, false);

    // The first request waits for the certificate, then is answered.
    let (code, body, err) = get("web--acme.cubby.test");
    assert_eq!(code, 0, "the tenant's certificate is issued and verified: {err}\n{}", d.log_text());
    assert!(body.contains("issued for me"), "{body}");
    let crt = d.data_dir.join("acme/web--acme.cubby.test.crt");
    let key = d.data_dir.join("acme/web--acme.cubby.test.key");
    assert_eq!(std::fs::metadata(&key).unwrap().permissions().mode() & 0o777, 0o600);

    // A host nobody serves gets no certificate (the request above, made
    // the same way, is the control).
    let (code, _, err) = get("nobody--acme.cubby.test");
    assert_ne!(code, 0, "no certificate for a host nobody serves: {err}");
    assert!(!d.data_dir.join("acme/nobody--acme.cubby.test.crt").exists());

    // After a restart the stored certificate is served; none is asked for.
    let issued_at = std::fs::metadata(&crt).unwrap().modified().unwrap();
    d.restart();
    let (code, body, err) = get("web--acme.cubby.test");
    assert_eq!(code, 0, "{err}");
    assert!(body.contains("issued for me"));
    assert_eq!(std::fs::metadata(&crt).unwrap().modified().unwrap(), issued_at, "not issued again");
}

/// Waits up to `secs` for `done`.
fn eventually(secs: u64, what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "{what} within {secs} s");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn tls_alpn_01_proves_a_name_without_plain_http_and_a_short_lived_certificate_is_renewed() {
    if !cubby_testkit::require_root("tls_alpn_01_proves_a_name_without_plain_http") {
        return;
    }
    let (http, https, closed) = (free_port(), free_port(), free_port());
    // Pebble would look for HTTP-01 answers on a port nobody listens on:
    // only TLS-ALPN-01, on the proxy's TLS listener, can prove the name.
    // Certificates live 30 s, so renewal is due 10 s before they expire.
    let pebble = Pebble::start(closed, https, Some(30));
    let extra_args = pebble.daemon_args(http, https, &["--acme-challenge", "tls-alpn-01"]);
    let d = Daemon::start_with(support::BIN, DaemonOptions { extra_args, ..Default::default() });
    let api = d.admin();
    let p = project(&api, "acme");
    container(&api, &p, "web", "proven over tls");

    let (code, body, verbose) = pebble.get("web--acme.cubby.test", https, true);
    assert_eq!(code, 0, "issued over TLS-ALPN-01 and verified: {verbose}\n{}", d.log_text());
    assert!(body.contains("proven over tls"), "{body}");
    let first = start_date(&verbose);
    let crt = d.data_dir.join("acme/web--acme.cubby.test.crt");
    let issued = std::fs::read(&crt).unwrap();

    // Renewed before it expires, with nobody asking: the file changes and
    // the proxy serves the new certificate (a later start date).
    eventually(40, "the certificate is renewed", || std::fs::read(&crt).unwrap() != issued);
    eventually(10, "the renewed certificate is served", || {
        let (code, _, verbose) = pebble.get("web--acme.cubby.test", https, true);
        code == 0 && start_date(&verbose) != first
    });
    let (code, body, err) = pebble.get("web--acme.cubby.test", https, false);
    assert_eq!(code, 0, "{err}");
    assert!(body.contains("proven over tls"));
}

#[test]
fn a_dns_hook_gets_wildcards_so_tenants_need_no_certificate_of_their_own() {
    if !cubby_testkit::require_root("a_dns_hook_gets_wildcards") {
        return;
    }
    let (http, https, closed_http, closed_tls) = (free_port(), free_port(), free_port(), free_port());
    // Neither HTTP-01 nor TLS-ALPN-01 can succeed: only the TXT records
    // the hook publishes in the mock DNS prove the names.
    let pebble = Pebble::start(closed_http, closed_tls, None);
    let hook = pebble.dir.path().join("dns-hook");
    let calls = pebble.dir.path().join("hook-calls");
    std::fs::write(
        &hook,
        format!(
            r#"#!/bin/sh
set -e
echo "$1 $2" >> {calls}
case "$1" in
  set) curl -sSf -d "{{\"host\":\"$2.\",\"value\":\"$3\"}}" http://127.0.0.1:{port}/set-txt ;;
  clear) curl -sSf -d "{{\"host\":\"$2.\"}}" http://127.0.0.1:{port}/clear-txt ;;
esac
"#,
            calls = calls.display(),
            port = pebble.mock_management,
        ),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    let extra_args = pebble.daemon_args(http, https, &["--acme-dns-hook", hook.to_str().unwrap()]);
    let d = Daemon::start_with(support::BIN, DaemonOptions { extra_args, ..Default::default() });
    let wildcard = d.data_dir.join("acme/_.cubby.test.crt");
    let exec_wildcard = d.data_dir.join("acme/_.exec.cubby.test.crt");
    eventually(60, "both wildcards are issued at startup", || wildcard.exists() && exec_wildcard.exists());
    let api = d.admin();
    let p = project(&api, "acme");
    container(&api, &p, "web", "under the wildcard");

    let (code, body, verbose) = pebble.get("web--acme.cubby.test", https, true);
    assert_eq!(code, 0, "served under the wildcard: {verbose}\n{}", d.log_text());
    assert!(body.contains("under the wildcard"), "{body}");
    assert!(verbose.contains("*.cubby.test"), "the wildcard is what was presented: {verbose}");
    assert!(!d.data_dir.join("acme/web--acme.cubby.test.crt").exists(), "no certificate of the tenant's own");
    let calls = std::fs::read_to_string(&calls).unwrap();
    assert_eq!(
        calls.lines().collect::<Vec<_>>(),
        [
            "set _acme-challenge.cubby.test",
            "clear _acme-challenge.cubby.test",
            "set _acme-challenge.exec.cubby.test",
            "clear _acme-challenge.exec.cubby.test"
        ],
        "every record published is removed"
    );
}
