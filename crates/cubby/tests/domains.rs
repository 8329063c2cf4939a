//! End to end, as root: custom domains. A tenant's hostname is served only
//! after its TXT record is found by a real DNS server (dnsmasq, run by the
//! test on loopback and given to the daemon with `--domain-dns`); another
//! tenant cannot take or see it; it goes with its container.

mod support;

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cubby_testkit::{Daemon, DaemonOptions, http_get};
use support::{container, project};

/// A dnsmasq answering only the TXT records it is given, on loopback.
struct Dnsmasq {
    child: Child,
}

impl Dnsmasq {
    fn start(port: u16, records: &[(&str, &str)], dir: &std::path::Path) -> Self {
        let mut cmd = Command::new("dnsmasq");
        cmd.args(["--keep-in-foreground", "--no-resolv", "--no-hosts", "--no-poll", "--bind-interfaces"])
            .args(["--listen-address=127.0.0.1", "--interface=lo", "--conf-file=/dev/null", "--user=root"])
            .arg(format!("--port={port}"))
            .arg(format!("--pid-file={}", dir.join("dnsmasq.pid").display()));
        for (name, value) in records {
            cmd.arg(format!("--txt-record={name},{value}"));
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("dnsmasq (Debian's dnsmasq-base; scripts/setup.sh --dns installs it)");
        // Listening once a bind of its port fails.
        let deadline = Instant::now() + Duration::from_secs(10);
        while UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            assert!(Instant::now() < deadline, "dnsmasq did not listen on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Self { child }
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_custom_domain_is_served_once_its_txt_record_is_found() {
    if !cubby_testkit::require_root("a_custom_domain_is_served_once_its_txt_record_is_found") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let port = UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let extra_args = vec!["--domain-dns".into(), format!("127.0.0.1:{port}")];
    let d = Daemon::start_with(support::BIN, DaemonOptions { extra_args, ..Default::default() });
    let api = d.admin();
    let (a, b) = (project(&api, "acme"), project(&api, "zeta"));
    let web = container(&api, &a, "web", "from the shop");
    let theirs = container(&api, &b, "theirs", "not yours");
    let token_b = api.create_token(b.id.as_str(), &Default::default()).unwrap().secret;
    let as_b = d.client(Some(&token_b));
    let shop = format!("http://app.shop.test:{}/", d.proxy_addr.port());

    let added = api
        .raw("POST", &format!("/api/v1/containers/{}/domains", web.id), Some(br#"{"hostname":"App.Shop.Test"}"#))
        .unwrap();
    assert_eq!(added.status, 201, "{:?}", added.json());
    let domain = added.json();
    assert_eq!(domain["status"], "pending");
    assert_eq!(domain["verification"]["name"], "_cubby-challenge.app.shop.test");
    assert_eq!(domain["cname_target"], format!("web--acme.{}", "localhost"));
    let token = domain["verification"]["value"].as_str().unwrap().to_owned();
    // Not served while pending (the control: the proxy serves the tenant
    // at its own URL, asked the same way).
    assert_eq!(http_get(d.proxy_addr, &web.url).status, 200);
    assert_eq!(http_get(d.proxy_addr, &shop).status, 404);

    // Another tenant can neither take the hostname nor see or verify it.
    let taken = as_b
        .raw("POST", &format!("/api/v1/containers/{}/domains", theirs.id), Some(br#"{"hostname":"app.shop.test"}"#))
        .unwrap();
    assert_eq!((taken.status, taken.json()["error"]["code"].as_str()), (409, Some("domain_taken")));
    let peek = as_b.raw("GET", &format!("/api/v1/containers/{}/domains", web.id), None).unwrap();
    assert_eq!(peek.status, 404);
    let verify = format!("/api/v1/containers/{}/domains/app.shop.test/verify", web.id);
    assert_eq!(as_b.raw("POST", &verify, None).unwrap().status, 404);

    // A record with another value does not verify it, and says what it found.
    let wrong = Dnsmasq::start(port, &[("_cubby-challenge.app.shop.test", "someone-else")], dir.path());
    let r = api.raw("POST", &verify, None).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (409, Some("domain_not_verified")), "{:?}", r.json());
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("someone-else"), "{:?}", r.json());
    assert_eq!(http_get(d.proxy_addr, &shop).status, 404);
    drop(wrong);

    // The right record: verified, and the proxy serves the tenant there.
    let _dns = Dnsmasq::start(port, &[("_cubby-challenge.app.shop.test", &token)], dir.path());
    let r = api.raw("POST", &verify, None).unwrap();
    assert_eq!(r.status, 200, "{:?}", r.json());
    assert_eq!(r.json()["status"], "verified");
    let served = http_get(d.proxy_addr, &shop);
    assert_eq!(served.status, 200, "{served:?}");
    assert!(served.body.contains("from the shop"), "{}", served.body);
    // Its own URL still works, and the other tenant is not served there.
    assert_eq!(http_get(d.proxy_addr, &web.url).status, 200);
    assert!(!served.body.contains("not yours"));

    // Deleting the container forgets the domain: not served, not listed,
    // free for another tenant.
    api.delete_container(web.id.as_str()).unwrap();
    assert_eq!(http_get(d.proxy_addr, &shop).status, 404);
    let again = as_b
        .raw("POST", &format!("/api/v1/containers/{}/domains", theirs.id), Some(br#"{"hostname":"app.shop.test"}"#))
        .unwrap();
    assert_eq!(again.status, 201, "the hostname is free again: {:?}", again.json());
}
