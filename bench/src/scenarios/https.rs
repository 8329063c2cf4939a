//! HTTPS through Cubby's proxy beside nginx terminating TLS with the same
//! certificate in front of the same app: keep-alive req/s and latency
//! (TLS 1.3, HTTP/1.1), and new connections per second (every request a
//! full handshake).

use std::net::{SocketAddr, TcpListener};

use anyhow::Context;
use cubby_testkit::DaemonOptions;

use super::urls::{Nginx, TlsFiles, Wrk, public_app, wrk_with};

/// Seconds of the untimed run before each measured one.
const WARM_UP_SECONDS: u32 = 2;

/// The HTTPS rows of the urls scenario: a daemon of its own with
/// `--tls-listen`, nginx with the same self-signed ECDSA P-256 certificate.
pub fn figures(bin: &str, seconds: u32) -> anyhow::Result<Vec<(String, String)>> {
    let dir = tempfile::tempdir()?;
    let key = rcgen::KeyPair::generate()?;
    let cert =
        rcgen::CertificateParams::new(vec!["*.localhost".to_string(), "localhost".to_string()])?.self_signed(&key)?;
    let (cert_path, key_path) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    std::fs::write(&cert_path, cert.pem())?;
    std::fs::write(&key_path, key.serialize_pem())?;
    let tls_port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let extra_args = vec![
        "--tls-listen".to_string(),
        format!("127.0.0.1:{tls_port}"),
        "--tls-cert".into(),
        cert_path.display().to_string(),
        "--tls-key".into(),
        key_path.display().to_string(),
    ];
    let d = super::daemon(bin, DaemonOptions { extra_args, ..Default::default() });
    let c = public_app(&d)?;
    let host = c.url.strip_prefix("https://").context("an https URL")?.to_string();
    let app: SocketAddr = format!("{}:{}", c.address, c.port).parse()?;
    let nginx = Nginx::start(app, Some(TlsFiles { cert: &cert_path, key: &key_path }))?;
    let measure = |port: u16, host: Option<&str>, headers: &[&str], connections: u32| {
        let url = format!("https://127.0.0.1:{port}/healthz");
        wrk_with(&url, host, headers, WARM_UP_SECONDS, connections)?;
        wrk_with(&url, host, headers, seconds, connections)
    };
    let (kept, fresh) = (32, 8);
    let nginx_kept = measure(nginx.port, None, &[], kept)?;
    let cubby_kept = measure(tls_port, Some(&host), &[], kept)?;
    let close = ["Connection: close"];
    let nginx_fresh = measure(nginx.port, None, &close, fresh)?;
    let cubby_fresh = measure(tls_port, Some(&host), &close, fresh)?;
    drop(nginx);
    d.admin().delete_container(c.id.as_str())?;

    let row = |w: &Wrk| format!("{:.0} | {:.2} | {:.2}", w.rps, w.p50_ms, w.p99_ms);
    let ratio = |a: &Wrk, b: &Wrk| format!("{:.2} | {:+.2}", a.rps / b.rps, a.p99_ms - b.p99_ms);
    Ok(vec![
        (format!("https wrk -c{kept} nginx (keep-alive): req/s | p50 ms | p99 ms"), row(&nginx_kept)),
        (format!("https wrk -c{kept} Cubby proxy (keep-alive): req/s | p50 ms | p99 ms"), row(&cubby_kept)),
        ("https Cubby / nginx (keep-alive): req/s ratio | p99 difference ms".into(), ratio(&cubby_kept, &nginx_kept)),
        (
            format!("https wrk -c{fresh} nginx (new TLS connection per request): req/s | p50 ms | p99 ms"),
            row(&nginx_fresh),
        ),
        (
            format!("https wrk -c{fresh} Cubby proxy (new TLS connection per request): req/s | p50 ms | p99 ms"),
            row(&cubby_fresh),
        ),
        (
            "https Cubby / nginx (new connections): req/s ratio | p99 difference ms".into(),
            ratio(&cubby_fresh, &nginx_fresh),
        ),
    ])
}
