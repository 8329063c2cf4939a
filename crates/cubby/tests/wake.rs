//! End to end, as root: scale to zero. A request wakes a stopped container
//! and gets its answer; concurrent requests share one start; a start that
//! fails answers clearly without retrying in a loop; an idle container
//! stops by itself unless a WebSocket to it is open.

mod support;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use cubby_model::{ContainerStatus, CreateContainer, Trigger, UpdateContainer};
use cubby_testkit::http_get;
use support::{container, daemon, project};

fn wakes(api: &cubby_client::Client, id: &str) -> usize {
    api.transitions(id).unwrap().iter().filter(|t| t.trigger == Trigger::Wake).count()
}

/// Polls the container's status until `want` or `limit` passes.
fn wait_status(api: &cubby_client::Client, id: &str, want: ContainerStatus, limit: Duration) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if api.container(id).unwrap().status == want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    false
}

#[test]
fn a_request_wakes_a_stopped_container_once() {
    let Some(d) = daemon("a_request_wakes_a_stopped_container_once") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let a = container(&api, &p, "a", "hi");
    let b = container(&api, &p, "b", "there");
    assert!(a.autostart, "autostart is on by default");
    assert_eq!(http_get(d.proxy_addr, &a.url).json()["visits"], 1);

    api.stop(a.id.as_str()).unwrap();
    let r = http_get(d.proxy_addr, &a.url);
    assert_eq!(r.status, 200, "the waking request gets its answer: {}", r.body);
    assert_eq!(r.json()["visits"], 2);
    assert_eq!(api.container(a.id.as_str()).unwrap().status, ContainerStatus::Running);
    let last = api.transitions(a.id.as_str()).unwrap().pop().unwrap();
    assert_eq!((last.to, last.trigger), (ContainerStatus::Running, Trigger::Wake));

    // Ten concurrent requests share one start.
    api.stop(a.id.as_str()).unwrap();
    let before = wakes(&api, a.id.as_str());
    let proxy = d.proxy_addr;
    let answers: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10).map(|_| s.spawn(|| http_get(proxy, &a.url).status)).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(answers, [200; 10]);
    assert_eq!(wakes(&api, a.id.as_str()), before + 1, "one start for ten requests");
    let runs = api.transitions(a.id.as_str()).unwrap();
    assert_eq!(runs.iter().filter(|t| t.to == ContainerStatus::Running).count(), 3, "create, wake, wake, and no more");
    // B was never touched by A's sleeping and waking.
    assert_eq!(api.transitions(b.id.as_str()).unwrap().len(), 2);
    assert_eq!(http_get(d.proxy_addr, &b.url).json()["visits"], 1);
}

#[test]
fn a_start_that_fails_answers_clearly_and_does_not_loop() {
    let Some(d) = daemon("a_start_that_fails_answers_clearly_and_does_not_loop") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let req = CreateContainer {
        name: "broken".into(),
        image: Some("minimal".into()),
        command: Some(vec!["sh".into(), "-c".into(), "echo cannot start >&2; exit 3".into()]),
        start: Some(false),
        ..Default::default()
    };
    let c = api.create_container(p.id.as_str(), &req).unwrap();
    assert_eq!(c.status, ContainerStatus::Stopped);
    let r = http_get(d.proxy_addr, &c.url);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (502, Some("start_failed")), "{}", r.body);
    let attempts = api.transitions(c.id.as_str()).unwrap().len();
    for _ in 0..5 {
        let again = http_get(d.proxy_addr, &c.url);
        assert_eq!(again.status, 502);
    }
    assert_eq!(api.transitions(c.id.as_str()).unwrap().len(), attempts, "no new start per request");
    // Every start attempt logs its failure: one attempt for six requests.
    let log = d.log_text();
    let tries = log.lines().filter(|l| l.contains("could not wake") && l.contains(c.id.as_str())).count();
    assert_eq!(tries, 1, "the daemon tried to start it {tries} times for six requests");
}

#[test]
fn an_idle_container_stops_unless_a_websocket_is_open() {
    let Some(d) = daemon("an_idle_container_stops_unless_a_websocket_is_open") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let idle = UpdateContainer { idle_timeout_seconds: Some(2), ..Default::default() };
    let a = container(&api, &p, "a", "hi");
    let b = container(&api, &p, "b", "hi");
    let never = container(&api, &p, "never", "hi");
    assert_eq!(never.idle_timeout_seconds, 0, "0 (never) by default");
    api.update_container(a.id.as_str(), &idle).unwrap();
    api.update_container(b.id.as_str(), &idle).unwrap();

    // B holds a WebSocket open through the proxy.
    let stream = TcpStream::connect(d.proxy_addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let ws_url = format!("{}/ws", b.url.replacen("http://", "ws://", 1));
    let (mut ws, resp) = tungstenite::client(ws_url.as_str(), stream).expect("websocket handshake through the proxy");
    assert_eq!(resp.status(), 101);

    assert!(wait_status(&api, a.id.as_str(), ContainerStatus::Stopped, Duration::from_secs(15)), "A stops when idle");
    let last = api.transitions(a.id.as_str()).unwrap().pop().unwrap();
    assert_eq!((last.to, last.trigger), (ContainerStatus::Stopped, Trigger::Idle));
    // A is asleep for good: no runtime state, and a request wakes it.
    assert_eq!(http_get(d.proxy_addr, &a.url).status, 200);

    // B stayed up the whole time (past its own idle timeout and a reaper
    // tick more), and its WebSocket still echoes.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(api.container(b.id.as_str()).unwrap().status, ContainerStatus::Running);
    ws.send(tungstenite::Message::text("still here")).unwrap();
    assert_eq!(ws.read().unwrap(), tungstenite::Message::text("still here"));
    assert!(!api.transitions(b.id.as_str()).unwrap().iter().any(|t| t.trigger == Trigger::Idle));
    ws.close(None).unwrap();
    while ws.read().is_ok() {}
    drop(ws);
    assert!(wait_status(&api, b.id.as_str(), ContainerStatus::Stopped, Duration::from_secs(15)), "B stops once closed");
    assert_eq!(api.container(never.id.as_str()).unwrap().status, ContainerStatus::Running);
}
