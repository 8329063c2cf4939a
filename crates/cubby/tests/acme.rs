//! End to end, as root, never against a public CA: the proxy gets a
//! tenant's certificate from Pebble (Let's Encrypt's ACME test server,
//! Debian's package, run by the test on loopback with its mock DNS
//! answering 127.0.0.1) at the tenant's first HTTPS connection, over
//! HTTP-01 answered by the proxy itself; curl verifies it against Pebble's
//! root. A host nobody serves gets no certificate; a restart serves the
//! stored one without asking again.

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

#[test]
fn a_tenant_gets_its_certificate_from_the_acme_ca_on_its_first_https_request() {
    if !cubby_testkit::require_root("a_tenant_gets_its_certificate_from_the_acme_ca_on_its_first_https_request") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d_path = |name: &str| dir.path().join(name).display().to_string();
    pebble_certificate(dir.path());
    let (dns, directory, management, mock_management) = (free_port(), free_port(), free_port(), free_port());
    let (http, https) = (free_port(), free_port());

    // The mock DNS: every name is 127.0.0.1.
    let _dns = Running(
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
    let config = serde_json::json!({ "pebble": {
        "listenAddress": format!("127.0.0.1:{directory}"),
        "managementListenAddress": format!("127.0.0.1:{management}"),
        "certificate": d_path("pebble.crt"),
        "privateKey": d_path("pebble.key"),
        "httpPort": http,
        "tlsPort": https,
        "ocspResponderURL": "",
        "externalAccountBindingRequired": false,
    }});
    std::fs::write(dir.path().join("pebble.json"), config.to_string()).unwrap();
    let _pebble = Running(
        Command::new("pebble")
            .args(["-config", &d_path("pebble.json"), "-dnsserver", &format!("127.0.0.1:{dns}")])
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_WFE_NONCEREJECT", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pebble"),
    );
    wait_tcp(directory, "pebble");

    let extra_args: Vec<String> = [
        "--domain",
        "cubby.test",
        "--proxy-listen",
        &format!("127.0.0.1:{http}"),
        "--tls-listen",
        &format!("127.0.0.1:{https}"),
        "--acme-directory",
        &format!("https://127.0.0.1:{directory}/dir"),
        "--acme-ca-file",
        &d_path("ca.pem"),
    ]
    .iter()
    .map(|s| (*s).to_string())
    .collect();
    let mut d = Daemon::start_with(support::BIN, DaemonOptions { extra_args, ..Default::default() });
    let api = d.admin();
    let p = project(&api, "acme");
    let web = container(&api, &p, "web", "issued for me");
    assert_eq!(web.url, format!("https://web--acme.cubby.test:{https}"));
    let account = d.data_dir.join("acme/account.json");
    assert_eq!(std::fs::metadata(&account).unwrap().permissions().mode() & 0o777, 0o600, "the account key is private");

    // Pebble's root, from its management interface.
    let (code, root, err) = curl(&["--cacert", &d_path("ca.pem"), &format!("https://127.0.0.1:{management}/roots/0")]);
    assert_eq!(code, 0, "{err}");
    std::fs::write(dir.path().join("root.pem"), root).unwrap();
    let get = |host: &str| {
        curl(&[
            "--cacert",
            &d_path("root.pem"),
            "--resolve",
            &format!("{host}:{https}:127.0.0.1"),
            &format!("https://{host}:{https}/"),
        ])
    };

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
