//! End to end, as root: usage per tenant, for invoices. CPU seconds follow
//! the tenant's own limit, a download through its URL counts its bytes, a
//! wake counts once, a restart neither loses nor doubles what was used, a
//! deleted tenant's usage stays for its last invoice, and another
//! project's token sees none of it.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use cubby_model::{CreateContainer, LimitsSpec, Usage};
use support::{container, create_req, daemon, project, sh};

/// All of a container's usage so far (its first week is in the span).
fn totals(api: &cubby_client::Client, id: &str) -> Usage {
    api.container_usage(id, "step=3600").expect("usage").totals
}

/// Downloads `path` from `host` through the proxy; the body's length.
fn download(proxy: SocketAddr, host: &str, path: &str) -> u64 {
    let mut stream = TcpStream::connect(proxy).expect("the proxy accepts");
    stream.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("a response head");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 200") || head.starts_with(b"HTTP/1.0 200"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        match stream.read(&mut buf).expect("the body arrives") {
            0 => return total,
            n => total += n as u64,
        }
    }
}

#[test]
fn usage_counts_each_tenants_own_and_survives_restarts_and_deletes() {
    let Some(d) = daemon("usage_counts_each_tenants_own_and_survives_restarts_and_deletes") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    // A spins a CPU hog beside its app, held at half a core.
    let hog = CreateContainer {
        command: Some(vec!["sh".into(), "-c".into(), "while :; do :; done & exec /usr/local/bin/cubby-demo".into()]),
        limits: Some(LimitsSpec { cpu: Some(0.5), ..Default::default() }),
        ..create_req("busy", "busy")
    };
    let busy = api.create_container(p.id.as_str(), &hog).unwrap();
    let calm = container(&api, &p, "calm", "calm");
    let (id_busy, id_calm) = (busy.id.as_str(), calm.id.as_str());

    // CPU: over the same N seconds, A uses N × its limit, B about nothing.
    let (busy0, calm0, t0) = (totals(&api, id_busy), totals(&api, id_calm), Instant::now());
    std::thread::sleep(Duration::from_secs(8));
    let (busy1, calm1) = (totals(&api, id_busy), totals(&api, id_calm));
    let n = t0.elapsed().as_secs_f64();
    let cpu = busy1.cpu_seconds - busy0.cpu_seconds;
    assert!((cpu - n * 0.5).abs() <= n * 0.5 * 0.1, "{cpu} CPU seconds in {n} s at a 0.5 core limit");
    let running = busy1.running_seconds - busy0.running_seconds;
    assert!((running - n).abs() <= n * 0.1, "{running} running seconds in {n} s");
    assert!(busy1.memory_gib_seconds > busy0.memory_gib_seconds && busy1.memory_peak_bytes > 0, "{busy1:?}");
    let calm_cpu = calm1.cpu_seconds - calm0.cpu_seconds;
    assert!(calm_cpu < 0.2, "the calm tenant does not pay for the hog: {calm_cpu}");

    // A 100 MB download through B's URL counts on B, once.
    let (code, _, err) =
        sh(&api, id_calm, "dd if=/dev/zero of=/data/big bs=1M count=100 2>/dev/null && sync && httpd -p 8081 -h /data");
    assert_eq!(code, 0, "{err}");
    let rule = br#"{"action":"allow","protocol":"tcp","ports":"8081"}"#;
    let r = api.raw("POST", &format!("/api/v1/containers/{id_calm}/firewall/ingress"), Some(rule)).unwrap();
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    // Port 8081 of the tenant: `{name}--{project}-8081.{domain}`.
    let own_host = calm.url.trim_start_matches("http://").trim_end_matches('/');
    let (label, domain) = own_host.split_once('.').expect("a label and a domain");
    let host = format!("{label}-8081.{domain}");
    let before = totals(&api, id_calm);
    let got = download(d.proxy_addr, &host, "/big");
    assert_eq!(got, 100 << 20, "the file came whole");
    let after = totals(&api, id_calm);
    let counted = after.response_bytes - before.response_bytes;
    assert!((100 << 20..=(100 << 20) + (1 << 20)).contains(&counted), "{counted} response bytes for 100 MiB");
    assert_eq!(after.requests - before.requests, 1);
    assert!(after.disk_peak_bytes >= 100 << 20, "its disk holds the file: {after:?}");
    let busy2 = totals(&api, id_busy);
    assert_eq!(busy2.response_bytes, busy1.response_bytes, "the other tenant's bytes are not A's");

    // A wake counts once, however many requests wait on it.
    api.stop(id_calm).unwrap();
    let woken = totals(&api, id_calm);
    let waiters: Vec<_> = (0..4)
        .map(|_| {
            let (proxy, url) = (d.proxy_addr, calm.url.clone());
            std::thread::spawn(move || cubby_testkit::http_get(proxy, &url).status)
        })
        .collect();
    for w in waiters {
        assert_eq!(w.join().unwrap(), 200, "every waiting request is answered");
    }
    let after_wake = totals(&api, id_calm);
    assert_eq!(after_wake.wakes - woken.wakes, 1, "{after_wake:?}");
    assert_eq!(after_wake.requests - woken.requests, 4);

    // A restart neither loses nor double-counts: CPU keeps growing at the
    // limit, from where it was.
    let (before, t1) = (totals(&api, id_busy), Instant::now());
    api.restart(id_busy).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let after = totals(&api, id_busy);
    let n = t1.elapsed().as_secs_f64();
    let cpu = after.cpu_seconds - before.cpu_seconds;
    assert!(cpu > 0.0 && cpu <= n * 0.5 * 1.1 + 0.5, "{cpu} CPU seconds across a restart in {n} s");

    // Another project's token sees none of it; this project's sees its own.
    let other = project(&api, "other");
    let theirs = api.create_token(other.id.as_str(), &Default::default()).unwrap().secret;
    let ours = api.create_token(p.id.as_str(), &Default::default()).unwrap().secret;
    let (ours, theirs) = (d.client(Some(&ours)), d.client(Some(&theirs)));
    assert!(ours.container_usage(id_busy, "").is_ok(), "control: the owner's token reads it");
    let r = theirs.raw("GET", &format!("/api/v1/containers/{id_busy}/usage"), None).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("container_not_found")));
    let r = theirs.raw("GET", &format!("/api/v1/projects/{}/usage", p.id), None).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("project_not_found")));

    // A deleted tenant's usage stays, by id only, for its last invoice.
    let last = totals(&api, id_calm);
    api.delete_container(id_calm).unwrap();
    let project_usage = ours.project_usage(p.id.as_str(), "step=3600&group_by=container").unwrap();
    let gone = project_usage.containers.iter().find(|c| c.container_id.as_str() == id_calm).expect("still listed");
    assert_eq!(gone.name, None, "no tenant data: the name went with it");
    assert!(gone.totals.response_bytes >= last.response_bytes && gone.totals.wakes == last.wakes, "{gone:?}");
    assert!(
        project_usage
            .containers
            .iter()
            .any(|c| c.container_id.as_str() == id_busy && c.name.as_deref() == Some("busy"))
    );
    assert!(ours.container_usage(id_calm, "step=3600").is_ok(), "its own project still reads it");
    let r = theirs.raw("GET", &format!("/api/v1/containers/{id_calm}/usage"), None).unwrap();
    assert_eq!(r.status, 404, "and nobody else");
    let r = api.raw("GET", &format!("/api/v1/containers/{id_busy}/usage?step=90"), None).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (400, Some("invalid_request")));

    // The CLI shows the same.
    let (code, out, err) = d.cli(&["usage", id_busy]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("CPU s") && out.contains(id_busy), "{out}");
}
