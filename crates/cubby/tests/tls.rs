//! End to end, as root: the proxy serves HTTPS itself (`--tls-listen`)
//! with certificates from files, checked by curl against the test's own
//! CA, and so does the API (`--api-tls`, the client and CLI given the CA): tenants' URLs are `https://`, SNI picks the certificate, plain HTTP
//! is redirected, HTTP/2 is offered by ALPN, proxy-made pages carry HSTS,
//! SSE and WebSocket upgrades pass, and a renewed certificate file is
//! served without a restart.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cubby_testkit::{Daemon, DaemonOptions, http_get};
use support::{container, project};

/// A CA made for this test, and leaf certificates it signs.
struct TestCa {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pem: String,
}

impl TestCa {
    fn new() -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "cubby test CA");
        let pem = params.self_signed(&key).unwrap().pem();
        Self { params, key, pem }
    }

    /// Writes a leaf for `names` with common name `cn` to `{stem}.crt/.key`.
    fn leaf(&self, dir: &Path, stem: &str, cn: &str, names: &[&str]) -> (PathBuf, PathBuf) {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, cn);
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        let (crt, pem) = (dir.join(format!("{stem}.crt")), dir.join(format!("{stem}.key")));
        // Written beside and renamed, as a renewal tool would.
        std::fs::write(dir.join(".tmp.crt"), cert.pem()).unwrap();
        std::fs::write(dir.join(".tmp.key"), key.serialize_pem()).unwrap();
        std::fs::rename(dir.join(".tmp.key"), &pem).unwrap();
        std::fs::rename(dir.join(".tmp.crt"), &crt).unwrap();
        (crt, pem)
    }
}

/// curl over HTTPS to `url`, its host resolved to the TLS listener:
/// (exit code, stdout, stderr).
fn curl(ca: &Path, port: u16, url: &str, extra: &[&str]) -> (i32, String, String) {
    let host = url.split("://").nth(1).unwrap().split([':', '/']).next().unwrap();
    let out = Command::new("curl")
        .args(["-sS", "-v", "--max-time", "10", "--cacert"])
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .args(extra)
        .arg(url)
        .output()
        .expect("curl");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn the_proxy_serves_tenants_over_https_with_certificates_from_files() {
    if !cubby_testkit::require_root("the_proxy_serves_tenants_over_https_with_certificates_from_files") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, &ca.pem).unwrap();
    // The first pair also covers the API's address: a client that connects
    // to an IP address sends no SNI name and gets the first certificate.
    let (apps_crt, apps_key) = ca.leaf(dir.path(), "apps", "apps first", &["*.cubby.test", "127.0.0.1"]);
    let (exec_crt, exec_key) = ca.leaf(dir.path(), "exec", "exec scripts", &["*.exec.cubby.test"]);
    let path = |p: &PathBuf| p.display().to_string();
    let extra_args = vec![
        "--domain".into(),
        "cubby.test".into(),
        "--tls-listen".into(),
        "127.0.0.1:0".into(),
        "--tls-cert".into(),
        path(&apps_crt),
        "--tls-key".into(),
        path(&apps_key),
        "--tls-cert".into(),
        path(&exec_crt),
        "--tls-key".into(),
        path(&exec_key),
        "--api-tls".into(),
    ];
    let d = Daemon::start_with(support::BIN, DaemonOptions { extra_args, ..Default::default() });
    let endpoints: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.data_dir.join("endpoints.json")).unwrap()).unwrap();
    let tls_addr: std::net::SocketAddr =
        endpoints["proxy_tls"].as_str().unwrap().trim_start_matches("https://").parse().unwrap();
    let port = tls_addr.port();

    // The API is served over TLS too: a client trusts the test's CA; one
    // that trusts only the Web PKI is refused (the control above it passes).
    assert!(d.api.starts_with("https://127.0.0.1:"), "{}", d.api);
    let api = d.admin().with_ca_pem(ca.pem.as_bytes()).unwrap();
    assert_eq!(api.raw("GET", "/api/v1/health", None).unwrap().status, 200);
    assert!(d.admin().raw("GET", "/api/v1/health", None).is_err(), "an unknown CA is not trusted");
    let (code, _, err) = d.cli(&["projects", "list", "--ca-file", &path(&ca_file)]);
    assert_eq!(code, 0, "the CLI with --ca-file: {err}");
    let (code, _, err) = d.cli(&["projects", "list"]);
    assert_ne!(code, 0, "the CLI without it does not trust the daemon: {err}");
    let p = project(&api, "acme");
    let web = container(&api, &p, "web", "over tls");
    assert_eq!(web.url, format!("https://web--acme.cubby.test:{port}"), "tenant URLs are https on the TLS port");

    // The tenant answers over HTTPS, verified against the CA, with the
    // wildcard for tenants; its app is told the request was https.
    let (code, out, err) = curl(&ca_file, port, &format!("{}/", web.url), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("over tls"), "{out}");
    assert!(err.contains("CN=apps first") && err.contains("TLSv1.3"), "{err}");
    let (_, out, _) = curl(&ca_file, port, &format!("{}/headers", web.url), &["--http1.1"]);
    assert!(out.contains(r#"["x-forwarded-proto","https"]"#), "{out}");
    // HTTP/2 by ALPN: the app still gets HTTP/1.1 with the client's host.
    let (code, out, err) =
        curl(&ca_file, port, &format!("{}/headers", web.url), &["--http2", "-w", "\nversion %{http_version}"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.ends_with("version 2"), "{out}");
    assert!(out.contains(&format!(r#"["host","web--acme.cubby.test:{port}"]"#)), "{out}");
    let (_, out, _) = curl(&ca_file, port, &format!("{}/", web.url), &["--http1.1", "-w", "\nversion %{http_version}"]);
    assert!(out.ends_with("version 1.1"), "the control: HTTP/1.1 when asked: {out}");
    // SNI picks the exec scripts' certificate for an exec host.
    let (code, _, err) = curl(&ca_file, port, &format!("https://acme.exec.cubby.test:{port}/none"), &[]);
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("CN=exec scripts"), "{err}");
    // A name no certificate covers gets the first one, which curl refuses
    // (the control above, made the same way, passed).
    let (code, _, err) = curl(&ca_file, port, &format!("https://elsewhere.example:{port}/"), &[]);
    assert_eq!(code, 60, "certificate does not match the name: {err}");

    // HSTS on the proxy's own pages, not on the app's.
    let (_, _, err) = curl(&ca_file, port, &format!("https://nobody--acme.cubby.test:{port}/"), &[]);
    assert!(err.contains("< strict-transport-security: max-age=31536000"), "{err}");
    assert!(err.contains("< x-content-type-options: nosniff"), "{err}");
    let (_, _, err) = curl(&ca_file, port, &format!("{}/", web.url), &[]);
    assert!(!err.contains("strict-transport-security"), "the app's answer is the app's: {err}");

    // Plain HTTP is redirected to the same URL over HTTPS.
    let plain = http_get(d.proxy_addr, &format!("http://web--acme.cubby.test:{}/headers?x=1", d.proxy_addr.port()));
    assert_eq!(plain.status, 308, "{plain:?}");
    assert_eq!(plain.header("location"), Some(format!("https://web--acme.cubby.test:{port}/headers?x=1").as_str()));

    // Server-sent events stream, and a WebSocket upgrade passes, over TLS.
    let (code, out, err) = curl(&ca_file, port, &format!("{}/sse", web.url), &["-N"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("data: 1") && out.contains("data: 2"), "{out}");
    let upgrade = [
        "--http1.1",
        "-H",
        "Connection: Upgrade",
        "-H",
        "Upgrade: websocket",
        "-H",
        "Sec-WebSocket-Version: 13",
        "-H",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "--max-time",
        "2",
    ];
    let (_, _, err) = curl(&ca_file, port, &format!("{}/ws", web.url), &upgrade);
    assert!(err.contains("< HTTP/1.1 101"), "{err}");

    // A renewed certificate file is served within seconds, no restart.
    ca.leaf(dir.path(), "apps", "apps renewed", &["*.cubby.test", "127.0.0.1"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (code, _, err) = curl(&ca_file, port, &format!("{}/", web.url), &[]);
        if code == 0 && err.contains("CN=apps renewed") {
            break;
        }
        assert!(Instant::now() < deadline, "the renewal was not picked up: {err}");
        std::thread::sleep(Duration::from_millis(250));
    }
}
