//! End to end, as root: every lifecycle change is an event with a stable
//! type, its trigger and who asked; an exit carries its code and an OOM kill
//! is read from the cgroup's counter; the list pages by id, the stream
//! replays from `Last-Event-ID` and then follows live; a project's token
//! sees its own events only.

mod support;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use cubby_model::{CreateContainer, CreateSnapshot, Event, EventType, LimitsSpec, Trigger};
use support::{container, create_req, daemon, project, sh};

/// The events `client` lists with `query`, oldest first.
fn events(client: &cubby_client::Client, query: &str) -> Vec<Event> {
    let r = client.raw("GET", &format!("/api/v1/events?limit=500&{query}"), None).unwrap();
    assert_eq!(r.status, 200, "{:?}", r.json());
    serde_json::from_value(r.json()["items"].clone()).expect("a page of events")
}

/// Waits (at most 20 s) for an event of `kind` about `container`.
fn wait_for(client: &cubby_client::Client, container: &str, kind: EventType) -> Event {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = events(client, &format!("container_id={container}&type={}", kind.as_str()));
        if let Some(e) = found.into_iter().next() {
            return e;
        }
        assert!(Instant::now() < deadline, "no {} event for {container}", kind.as_str());
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Reads the event stream for `for_ms` with `token` (and `Last-Event-ID`
/// when given): the status and the text it sent.
fn stream(
    d: &cubby_testkit::Daemon,
    token: &str,
    last: Option<u64>,
    for_ms: u64,
    during: impl FnOnce(),
) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(d.api_addr).unwrap();
    let resume = last.map(|id| format!("Last-Event-ID: {id}\r\n")).unwrap_or_default();
    write!(
        s,
        "GET /api/v1/events/stream HTTP/1.1\r\nHost: cubby\r\nAuthorization: Bearer {token}\r\n{resume}Connection: close\r\n\r\n"
    )
    .unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let mut during = Some(during);
    let deadline = Instant::now() + Duration::from_millis(for_ms);
    while Instant::now() < deadline {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if let Some(f) = during.take() {
            f();
        }
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    (text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0), text)
}

#[test]
fn lifecycle_changes_are_events_with_their_causes() {
    let Some(d) = daemon("lifecycle_changes_are_events_with_their_causes") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let other = project(&api, "other");
    let ours_token = api.create_token(p.id.as_str(), &Default::default()).unwrap();
    let ours = ours_token.secret.clone();
    let theirs = api.create_token(other.id.as_str(), &Default::default()).unwrap().secret;
    let (ours_c, theirs_c) = (d.client(Some(&ours)), d.client(Some(&theirs)));

    // Create, stop, start: each an event, in order, with its trigger and actor.
    let app = container(&api, &p, "app", "hi");
    let id = app.id.as_str();
    api.stop(id).unwrap();
    ours_c.start(id).unwrap();
    let mine = events(&ours_c, &format!("container_id={id}"));
    let kinds: Vec<EventType> = mine.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventType::ContainerCreated,
            EventType::ContainerStarted,
            EventType::ContainerStopped,
            EventType::ContainerStarted
        ]
    );
    assert!(mine.iter().all(|e| e.trigger == Some(Trigger::Api) && e.project_id.as_ref() == Some(&p.id)));
    // Who asked: the token each call came with.
    let actors: Vec<&str> = mine.iter().map(|e| e.actor.as_deref().unwrap_or("")).collect();
    let admin_token = actors[0];
    assert!(admin_token.starts_with('t') && admin_token != ours_token.token.id.as_str(), "{actors:?}");
    assert_eq!(actors, [admin_token, admin_token, admin_token, ours_token.token.id.as_str()]);
    assert!(mine.windows(2).all(|w| w[0].id < w[1].id), "ids grow");

    // An app that exits on its own: the init's report carries its code.
    let quitter = CreateContainer {
        command: Some(vec!["sh".into(), "-c".into(), "/usr/local/bin/cubby-demo & sleep 2; exit 7".into()]),
        ..create_req("quitter", "bye")
    };
    let quitter = api.create_container(p.id.as_str(), &quitter).unwrap();
    let exited = wait_for(&api, quitter.id.as_str(), EventType::ContainerExited);
    assert_eq!((exited.trigger, exited.actor.as_deref()), (Some(Trigger::Exited), None));
    assert_eq!(exited.data["exit_code"], 7, "{exited:?}");

    // The OOM killer: told from the cgroup's counter, for that tenant only.
    let hungry = CreateContainer {
        limits: Some(LimitsSpec { memory: Some(cubby_model::ByteSize(32 << 20)), ..Default::default() }),
        ..create_req("hungry", "hungry")
    };
    let hungry = api.create_container(p.id.as_str(), &hungry).unwrap();
    let (code, _, _) = sh(&api, hungry.id.as_str(), "a=0123456789abcdef; while :; do a=$a$a; done");
    assert_ne!(code, 0, "the hog did not survive its limit");
    let oom = wait_for(&api, hungry.id.as_str(), EventType::ContainerOomKilled);
    assert!(oom.data["count"].as_u64().unwrap() >= 1, "{oom:?}");
    assert!(events(&api, &format!("container_id={id}&type=container.oom_killed")).is_empty(), "app was not killed");

    // Snapshots and rules.
    let snap = api.create_snapshot(id, &CreateSnapshot::default()).unwrap();
    api.delete_snapshot(id, &snap.name).unwrap();
    let rule = br#"{"action":"allow","protocol":"tcp","ports":"9000"}"#;
    assert_eq!(api.raw("POST", &format!("/api/v1/containers/{id}/firewall/ingress"), Some(rule)).unwrap().status, 201);
    for kind in [EventType::SnapshotCreated, EventType::SnapshotDeleted, EventType::FirewallChanged] {
        let e = wait_for(&api, id, kind);
        assert_eq!(e.actor.as_deref(), Some(admin_token), "{e:?}");
    }
    assert_eq!(wait_for(&api, id, EventType::SnapshotCreated).data["snapshot"], snap.name.as_str());

    // The stream replays what came after Last-Event-ID, then follows live.
    let first = mine[0].id;
    let (status, text) = stream(&d, &ours, Some(first), 1500, || {
        api.stop(id).unwrap();
    });
    assert_eq!(status, 200, "{text}");
    assert!(!text.contains(&format!("id: {first}\n")), "the event it resumes after is not sent again: {text}");
    assert!(text.contains("event: container.exited") && text.contains("event: snapshot.deleted"), "replayed: {text}");
    let stopped = events(&api, &format!("container_id={id}&type=container.stopped"));
    let live = stopped.last().expect("the stop during the stream");
    assert!(text.contains(&format!("id: {}\n", live.id)), "the live stop came through: {text}");

    // Another project's token sees none of it, listed or streamed; control:
    // this project's token saw all of it above.
    assert!(events(&theirs_c, "").iter().all(|e| e.project_id.as_ref() == Some(&other.id)));
    assert!(events(&theirs_c, &format!("container_id={id}")).is_empty());
    let r = theirs_c.raw("GET", &format!("/api/v1/events?project_id={}", p.id), None).unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("project_not_found")));
    let (status, text) = stream(&d, &theirs, Some(0), 800, || {});
    assert_eq!(status, 200);
    assert!(!text.contains(id) && !text.contains(p.id.as_str()), "another project's stream: {text}");

    // Delete: told, and its events stay by id for the record.
    api.delete_container(id).unwrap();
    let deleted = wait_for(&ours_c, id, EventType::ContainerDeleted);
    assert_eq!(deleted.data, serde_json::json!({}), "no tenant data in it");

    // The CLI shows the same.
    let (code, out, err) = d.cli(&["events", "--container", quitter.id.as_str(), "--type", "container.exited"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("container.exited") && out.contains("exit_code"), "{out}");

    // Bad filters say what to write.
    let r = api.raw("GET", "/api/v1/events?type=container.exploded", None).unwrap();
    assert_eq!(r.status, 400);
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("container.oom_killed"), "{:?}", r.json());
}

/// The invocations of `script` in `project`'s log, newest first.
fn runs(client: &cubby_client::Client, project: &str, script: &str) -> Vec<cubby_model::ScriptInvocation> {
    client.script_logs(project, 100).unwrap().into_iter().filter(|l| l.script == script).collect()
}

/// Waits (at most 20 s) until `script` ran `n` times.
fn wait_runs(
    client: &cubby_client::Client,
    project: &str,
    script: &str,
    n: usize,
) -> Vec<cubby_model::ScriptInvocation> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let got = runs(client, project, script);
        if got.len() >= n {
            return got;
        }
        assert!(Instant::now() < deadline, "{script} ran {} times, not {n}", got.len());
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn scripts_subscribed_with_at_on_run_for_their_projects_events_only() {
    let Some(d) = daemon("scripts_subscribed_with_at_on_run_for_their_projects_events_only") else { return };
    let api = d.admin();
    let a = project(&api, "acme");
    let b = project(&api, "zeta");
    let (pa, pb) = (a.id.as_str(), b.id.as_str());
    // Each project has a script that hears its stopped containers; acme's
    // also stops every container made in it, through ctx.cubby.
    let hear = "// @on container.stopped\n\
                export default async (req) => { const e = await req.json(); \
                console.log(`heard ${req.headers.get('cubby-event-type')} ${e.type} ${e.container_id}`); return { ok: true }; };";
    for p in [pa, pb] {
        api.put_script(p, "hear.js", hear.as_bytes()).unwrap();
    }
    let react = "// @on container.created\n\
                 export default async (req, ctx) => { const e = await req.json(); await ctx.cubby.containers.stop(e.container_id); return 'stopped'; };";
    api.put_script(pa, "react.js", react.as_bytes()).unwrap();
    // An unknown event type is refused when the script is saved.
    let e = api.put_script(pa, "typo.js", b"// @on container.stoped\nexport default () => 1").unwrap_err();
    assert_eq!(e.status(), Some(400));
    assert!(e.to_string().contains("container.stopped"), "the error lists the types: {e}");

    // A container made in acme: react.js stops it, as itself. What a run
    // an event started does starts no script again: hear.js stays quiet.
    let c = container(&api, &a, "web", "hi");
    let stopped = wait_for(&api, c.id.as_str(), EventType::ContainerStopped);
    assert_eq!(stopped.actor.as_deref(), Some("event-script:react.js"), "{stopped:?}");
    assert_eq!(wait_runs(&api, pa, "react.js", 1).len(), 1, "react.js ran once, for the one container made");

    // Started and stopped through the API: hear.js hears the stop, with the
    // event as its body.
    api.start(c.id.as_str()).unwrap();
    api.stop(c.id.as_str()).unwrap();
    let heard = wait_runs(&api, pa, "hear.js", 1);
    assert_eq!((heard[0].method.as_str(), heard[0].status), ("POST", 200), "{heard:?}");
    let line = &heard[0].logs[0].message;
    assert_eq!(line, &format!("heard container.stopped container.stopped {}", c.id));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(runs(&api, pa, "hear.js").len(), 1, "one stop by the API, one run; none for react.js's stop");
    // zeta's script heard nothing of acme's tenant.
    assert!(runs(&api, pb, "hear.js").is_empty(), "another project's event runs no script of zeta");

    // A failing script's failure runs `@on script.failed` scripts once,
    // never for their own failures: no loop.
    api.put_script(pa, "boom.js", b"export default () => { throw new Error('boom'); }").unwrap();
    let on_fail = "// @on script.failed\nexport default () => { throw new Error('and again'); };";
    api.put_script(pa, "on-fail.js", on_fail.as_bytes()).unwrap();
    let url = format!("http://acme.exec.localhost:{}/boom", d.proxy_addr.port());
    assert_eq!(cubby_testkit::http_get(d.proxy_addr, &url).status, 500);
    let ran = wait_runs(&api, pa, "on-fail.js", 1);
    assert_eq!(ran[0].status, 500, "{ran:?}");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(runs(&api, pa, "on-fail.js").len(), 1, "its own failure did not start it again");
}
