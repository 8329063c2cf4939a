//! End to end, as root: a project's events reach its webhook, signed the
//! way Stripe signs, retried when the receiver fails, logged per delivery;
//! another project's hook gets none of them; a hook aimed at the daemon's
//! own host is refused at delivery like scripts' `fetch`.

mod support;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cubby_model::{CreateWebhook, EventType, Webhook, WebhookDelivery};
use cubby_testkit::OutsideHost;
use hmac::{KeyInit, Mac};
use support::{container, daemon, project};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    answered: u16,
}

impl Got {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_default()
    }
}

/// An HTTP receiver in `outside`'s namespace on `port`: it answers 500 to
/// its first request and 200 to the rest, and records each.
fn receiver(outside: &OutsideHost, port: u16, stop: Arc<AtomicBool>) -> Arc<Mutex<Vec<Got>>> {
    let got = Arc::new(Mutex::new(Vec::new()));
    let (seen, netns) = (Arc::clone(&got), std::fs::File::open(&outside.netns).unwrap());
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        nix::sched::setns(netns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let listener = TcpListener::bind(("0.0.0.0", port)).expect("bind");
        listener.set_nonblocking(true).unwrap();
        ready_tx.send(()).unwrap();
        while !stop.load(Ordering::Relaxed) {
            let Ok((mut s, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(5));
                continue;
            };
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let mut raw = Vec::new();
            let mut buf = [0u8; 4096];
            let (head, mut body) = loop {
                let Ok(n) = s.read(&mut buf) else { break (String::new(), Vec::new()) };
                if n == 0 {
                    break (String::new(), Vec::new());
                }
                raw.extend_from_slice(&buf[..n]);
                if let Some(i) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                    break (String::from_utf8_lossy(&raw[..i]).into_owned(), raw[i + 4..].to_vec());
                }
            };
            let mut lines = head.lines();
            let path = lines.next().unwrap_or("").split(' ').nth(1).unwrap_or("").to_owned();
            let headers: Vec<(String, String)> = lines
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
                .collect();
            let length: usize =
                headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
            while body.len() < length {
                match s.read(&mut buf) {
                    Ok(n) if n > 0 => body.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            let mut seen = seen.lock().unwrap();
            let answered = if seen.is_empty() { 500 } else { 200 };
            seen.push(Got { path, headers, body, answered });
            let _ = write!(s, "HTTP/1.1 {answered} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    ready_rx.recv_timeout(Duration::from_secs(5)).expect("receiver ready");
    got
}

/// Checks `Cubby-Signature: t=…,v1=…` over the body with `secret`.
fn signed_with(got: &Got, secret: &str) -> bool {
    let Some(sig) = got.header("cubby-signature") else { return false };
    let Some((t, v1)) = sig.split_once(',') else { return false };
    let (Some(t), Some(v1)) = (t.strip_prefix("t="), v1.strip_prefix("v1=")) else { return false };
    let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(&got.body);
    hex::encode(mac.finalize().into_bytes()) == v1
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn events_reach_their_projects_webhook_signed_and_retried() {
    let Some(d) = daemon("events_reach_their_projects_webhook_signed_and_retried") else { return };
    let api = d.admin();
    let (a, b) = (project(&api, "acme"), project(&api, "beta"));
    let outside = OutsideHost::new(&d.prefix, &d.subnet);
    let stop = Arc::new(AtomicBool::new(false));
    let got = receiver(&outside, 9090, Arc::clone(&stop));

    let token_a = api.create_token(a.id.as_str(), &Default::default()).unwrap().secret;
    let token_b = api.create_token(b.id.as_str(), &Default::default()).unwrap().secret;
    let (client_a, client_b) = (d.client(Some(&token_a)), d.client(Some(&token_b)));
    let make = |client: &cubby_client::Client, project: &str, req: &CreateWebhook| -> Webhook {
        let body = serde_json::to_vec(req).unwrap();
        let r = client.raw("POST", &format!("/api/v1/projects/{project}/webhooks"), Some(&body)).unwrap();
        assert_eq!(r.status, 201, "{:?}", r.json());
        serde_json::from_value(r.json()).unwrap()
    };
    let secret_a = "whsec_alpha_0123456789abcdef";
    let hook_a = make(
        &client_a,
        a.id.as_str(),
        &CreateWebhook {
            url: format!("http://{}:9090/a", outside.addr),
            events: vec![EventType::ContainerStarted, EventType::ContainerStopped],
            secret: Some(secret_a.into()),
            description: Some("billing".into()),
        },
    );
    assert_eq!(hook_a.secret.as_deref(), Some(secret_a), "the secret is shown once, when made");
    let hook_b = make(
        &client_b,
        b.id.as_str(),
        &CreateWebhook { url: format!("http://{}:9090/b", outside.addr), ..Default::default() },
    );
    let secret_b = hook_b.secret.clone().expect("a generated secret");

    // A's tenant starts and stops: two events for A's hook (created is not
    // one it asked for); the receiver fails the first try, the retry lands.
    let app = container(&api, &a, "app", "hi");
    api.stop(app.id.as_str()).unwrap();
    let at_a = || got.lock().unwrap().iter().filter(|g| g.path == "/a" && g.answered == 200).count();
    wait_until("both of A's events delivered", || at_a() >= 2);
    let seen: Vec<Got> = got.lock().unwrap().iter().filter(|g| g.path == "/a").cloned().collect();
    let kinds: Vec<String> =
        seen.iter().filter(|g| g.answered == 200).map(|g| g.json()["type"].as_str().unwrap_or("").to_owned()).collect();
    assert!(kinds.contains(&"container.started".into()) && kinds.contains(&"container.stopped".into()), "{kinds:?}");
    assert!(!kinds.contains(&"container.created".into()), "only the types it asked for: {kinds:?}");
    assert!(seen.iter().all(|g| signed_with(g, secret_a)), "every delivery is signed with A's secret");
    assert!(seen.iter().all(|g| !signed_with(g, &secret_b)), "control: another secret does not verify them");
    assert!(seen.iter().all(|g| g.json()["project_id"] == a.id.as_str()));
    assert_eq!(seen[0].answered, 500, "the first try failed");
    let failed_event = seen[0].header("cubby-event-id");
    assert!(
        seen[1..].iter().any(|g| g.header("cubby-event-id") == failed_event && g.answered == 200),
        "and was tried again until it landed"
    );

    // The log says so.
    let r = client_a.raw("GET", &format!("/api/v1/projects/{}/webhooks/{}/deliveries", a.id, hook_a.id), None).unwrap();
    let log: Vec<WebhookDelivery> = serde_json::from_value(r.json()).unwrap();
    let retried = log.iter().find(|l| l.attempts == 2).expect("a delivery made twice");
    assert_eq!((retried.status.as_str(), retried.last_status_code), ("delivered", Some(200)));

    // B's hook gets B's events only (control: it gets B's own).
    let theirs = container(&api, &b, "theirs", "b");
    wait_until("B's event delivered", || got.lock().unwrap().iter().any(|g| g.path == "/b"));
    let at_b: Vec<Got> = got.lock().unwrap().iter().filter(|g| g.path == "/b").cloned().collect();
    assert!(at_b.iter().all(|g| g.json()["project_id"] == b.id.as_str() && signed_with(g, &secret_b)));
    assert!(at_b.iter().any(|g| g.json()["container_id"] == theirs.id.as_str()));
    assert!(!at_b.iter().any(|g| g.json()["container_id"] == app.id.as_str()), "A's events never reach B's hook");

    // B's token cannot see or remove A's hooks.
    let r = client_b.raw("GET", &format!("/api/v1/projects/{}/webhooks", a.id), None).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("project_not_found")));
    let r = client_b.raw("DELETE", &format!("/api/v1/projects/{}/webhooks/{}", b.id, hook_a.id), None).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("webhook_not_found")));

    // A hook at the daemon's own host is made, but its deliveries are
    // refused as scripts' fetch is (control: the outside one delivered).
    let local =
        make(&client_a, a.id.as_str(), &CreateWebhook { url: format!("http://{}/", d.api_addr), ..Default::default() });
    api.start(app.id.as_str()).unwrap();
    let path = format!("/api/v1/projects/{}/webhooks/{}/deliveries", a.id, local.id);
    wait_until("an attempt at the local hook", || {
        let log: Vec<WebhookDelivery> =
            serde_json::from_value(client_a.raw("GET", &path, None).unwrap().json()).unwrap();
        log.iter().any(|l| l.attempts >= 1)
    });
    let log: Vec<WebhookDelivery> = serde_json::from_value(client_a.raw("GET", &path, None).unwrap().json()).unwrap();
    let refused = log.iter().find(|l| l.attempts >= 1).unwrap();
    assert_eq!(refused.status.as_str(), "pending");
    assert!(refused.last_error.as_deref().unwrap_or("").contains("not allowed"), "{refused:?}");

    // The CLI lists them (no secret shown again).
    let (code, out, err) = d.cli(&["webhooks", "list", a.id.as_str()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(hook_a.id.as_str()) && !out.contains(secret_a), "{out}");

    // Removing a hook removes its log.
    let r = client_a.raw("DELETE", &format!("/api/v1/projects/{}/webhooks/{}", a.id, local.id), None).unwrap();
    assert_eq!(r.status, 204);
    assert_eq!(client_a.raw("GET", &path, None).unwrap().status, 404);
    stop.store(true, Ordering::Relaxed);
}
