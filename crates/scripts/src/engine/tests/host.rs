//! ctx.cubby and fetch through FakeHost, and fetch through a real
//! HttpFetcher to a local server.

use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;

use super::*;
use crate::ScriptError;
use crate::fake::CubbyCall;
use crate::fetch::HttpFetcher;
use crate::host::{FetchRequest, FetchResponse, ScriptHost};

fn call(method: &str, path: &str, body: Option<&str>) -> CubbyCall {
    CubbyCall { method: method.to_owned(), path: path.to_owned(), body: body.map(str::to_owned) }
}

#[tokio::test]
async fn cubby_wrappers_build_paths_methods_and_bodies() {
    let host = Arc::new(FakeHost::new());
    host.answer_cubby_with(|call| Ok((200, format!(r#"{{"echo":"{} {}"}}"#, call.method, call.path))));
    host.answer_cubby("DELETE", "/containers/c1", 204, "");
    let mut inv = invocation(
        r#"export default async (request, ctx) => {
            const c = ctx.cubby;
            const results = [];
            results.push(await c.containers.list({ name: "tenant a", missing: undefined }));
            await c.containers.list();
            await c.containers.create({ name: "t1", image: "minimal" });
            await c.containers.get("a/b");
            await c.containers.update("c1", { environment_vars: { PLAN: "pro" } });
            results.push(await c.containers.delete("c1"));
            await c.containers.start("c1");
            await c.containers.stop("c1");
            await c.containers.restart("c1");
            await c.containers.copy("c1", { name: "copy" });
            await c.containers.authorize("c1");
            await c.containers.authorize("c1", { subject: "u42" });
            await c.containers.revokeClaims("c1");
            await c.containers.exec("c1", { command: ["ls"] });
            await c.containers.logs("c1");
            await c.snapshots.list("c1");
            await c.snapshots.create("c1", { alias: "before" });
            await c.snapshots.get("c1", "before upgrade");
            await c.snapshots.delete("c1", "s1");
            await c.snapshots.restore("c1", "s1");
            await c.firewall.get("c1");
            await c.firewall.replace("c1", { ingress: [], egress: [] });
            await c.network.set("c1", { mode: "block" });
            await c.aliases.create({ name: "shop", container_id: "c1" });
            await c.aliases.delete("shop");
            await c.project.get();
            results.push(await c.request("get", "/health"));
            return results;
        }"#,
    );
    inv.host = host.clone();
    inv.project = "p/1".to_owned();
    let outcome = run(inv).await;
    assert_eq!(
        json(ok(&outcome)),
        serde_json::json!([
            {"echo": "GET /projects/p%2F1/containers?name=tenant+a"},
            null,
            {"echo": "GET /health"},
        ])
    );
    let expected = vec![
        call("GET", "/projects/p%2F1/containers?name=tenant+a", None),
        call("GET", "/projects/p%2F1/containers", None),
        call("POST", "/projects/p%2F1/containers", Some(r#"{"name":"t1","image":"minimal"}"#)),
        call("GET", "/containers/a%2Fb", None),
        call("PATCH", "/containers/c1", Some(r#"{"environment_vars":{"PLAN":"pro"}}"#)),
        call("DELETE", "/containers/c1", None),
        call("POST", "/containers/c1/start", None),
        call("POST", "/containers/c1/stop", None),
        call("POST", "/containers/c1/restart", None),
        call("POST", "/containers/c1/copy", Some(r#"{"name":"copy"}"#)),
        call("POST", "/containers/c1/authorize", Some("{}")),
        call("POST", "/containers/c1/authorize", Some(r#"{"subject":"u42"}"#)),
        call("POST", "/containers/c1/revoke-claims", None),
        call("POST", "/containers/c1/exec", Some(r#"{"command":["ls"]}"#)),
        call("GET", "/containers/c1/logs", None),
        call("GET", "/containers/c1/snapshots", None),
        call("POST", "/containers/c1/snapshots", Some(r#"{"alias":"before"}"#)),
        call("GET", "/containers/c1/snapshots/before%20upgrade", None),
        call("DELETE", "/containers/c1/snapshots/s1", None),
        call("PUT", "/containers/c1/snapshots/s1", None),
        call("GET", "/containers/c1/firewall", None),
        call("PUT", "/containers/c1/firewall", Some(r#"{"ingress":[],"egress":[]}"#)),
        call("PUT", "/containers/c1/network", Some(r#"{"mode":"block"}"#)),
        call("POST", "/aliases", Some(r#"{"name":"shop","container_id":"c1"}"#)),
        call("DELETE", "/aliases/shop", None),
        call("GET", "/projects/p%2F1", None),
        call("GET", "/health", None),
    ];
    assert_eq!(host.cubby_calls(), expected);
}

#[tokio::test]
async fn cubby_refuses_dot_segments() {
    let outcome = run_js(
        "export default async (r, ctx) => { try { await ctx.cubby.containers.get('..'); } catch (e) { return e.message; } };",
    )
    .await;
    assert_eq!(json(ok(&outcome)), serde_json::json!(r#"ctx.cubby: ".." cannot be the container id"#));
}

#[tokio::test]
async fn cubby_errors_carry_status_and_code() {
    let host = Arc::new(FakeHost::new());
    host.answer_cubby(
        "GET",
        "/containers/nope",
        404,
        r#"{"error":{"code":"container_not_found","message":"no container nope"}}"#,
    );
    host.answer_cubby("GET", "/containers/weird", 502, "upstream broke");
    host.answer_cubby_with(|call| {
        if call.path == "/containers/down" { Err(crate::CubbyCallError::Unavailable) } else { Ok((500, String::new())) }
    });
    let mut inv = invocation(
        r#"export default async (request, ctx) => {
            const out = [];
            for (const id of ["nope", "weird", "down"]) {
                try { await ctx.cubby.containers.get(id); out.push("resolved"); }
                catch (e) { out.push({ name: e.name, message: e.message, status: e.status ?? null, code: e.code ?? null }); }
            }
            return out;
        }"#,
    );
    inv.host = host.clone();
    let outcome = run(inv).await;
    assert_eq!(
        json(ok(&outcome)),
        serde_json::json!([
            {"name": "Error", "message": "no container nope", "status": 404, "code": "container_not_found"},
            {"name": "Error", "message": "the Cubby API answered 502 to GET /containers/weird", "status": 502, "code": "http_502"},
            {"name": "TypeError", "message": "ctx.cubby GET /containers/down failed: the API is unavailable", "status": null, "code": null},
        ])
    );

    // Uncaught, it is the script's exception.
    let mut inv = invocation("export default async (r, ctx) => ctx.cubby.containers.get('nope');");
    inv.host = host;
    let outcome = run(inv).await;
    assert!(
        matches!(&outcome.result, Err(ScriptError::Exception { message, .. }) if message == "Error: no container nope"),
        "{:?}",
        outcome.result
    );
}

#[tokio::test]
async fn fetch_through_the_host() {
    let host = Arc::new(FakeHost::new());
    host.answer_fetch(
        "https://api.example.com/v1/things?x=1",
        FetchResponse {
            status: 201,
            headers: vec![("content-type".into(), "application/json".into()), ("x-a".into(), "1".into())],
            body: Bytes::from_static(br#"{"made":true}"#),
        },
    );
    host.fail_fetch("https://down.example.com/", "connection refused");
    let mut inv = invocation(
        r#"export default async () => {
            const r = await fetch("https://api.example.com/v1/things?x=1", {
                method: "post", headers: { "X-Token": "t" }, body: JSON.stringify({ a: 1 }), timeout: 1500,
            });
            let failure;
            try { await fetch("https://down.example.com/"); } catch (e) { failure = `${e.name}: ${e.message}`; }
            let scheme;
            try { await fetch("ftp://x/"); } catch (e) { scheme = e.message; }
            let getBody;
            try { await fetch("https://x/", { body: "no" }); } catch (e) { getBody = e.message; }
            return { status: r.status, ok: r.ok, a: r.headers.get("X-A"), body: await r.json(), url: r.url, failure, scheme, getBody };
        }"#,
    );
    inv.host = host.clone();
    let outcome = run(inv).await;
    assert_eq!(
        json(ok(&outcome)),
        serde_json::json!({
            "status": 201, "ok": true, "a": "1", "body": {"made": true},
            "url": "https://api.example.com/v1/things?x=1",
            "failure": "TypeError: connection refused",
            "scheme": "fetch supports only http and https URLs, not ftp:",
            "getBody": "a GET request cannot have a body",
        })
    );
    let requests = host.fetch_requests();
    assert_eq!(requests.len(), 2);
    assert_eq!(requests[0].method, "POST");
    assert_eq!(
        requests[0].headers,
        vec![
            ("x-token".to_owned(), "t".to_owned()),
            ("content-type".to_owned(), "text/plain;charset=UTF-8".to_owned())
        ]
    );
    assert_eq!(&requests[0].body[..], br#"{"a":1}"#);
    assert_eq!(requests[0].timeout, Duration::from_millis(1500));
    // The default timeout, capped by what is left of the script's 30 s.
    assert!(requests[1].timeout <= Duration::from_secs(10));
    assert!(requests[1].timeout > Duration::from_secs(9));
}

/// A host whose fetch is a real [`HttpFetcher`]; cubby calls fail.
struct FetcherHost(HttpFetcher);

impl ScriptHost for FetcherHost {
    fn cubby(
        &self,
        _: &str,
        _: &str,
        _: Option<String>,
        _: crate::AnswerRoom,
    ) -> BoxFuture<'static, Result<(u16, String), crate::CubbyCallError>> {
        futures::future::ready(Err(crate::CubbyCallError::Unavailable)).boxed()
    }

    fn fetch(&self, request: FetchRequest) -> BoxFuture<'static, Result<FetchResponse, crate::FetchError>> {
        let fetcher = self.0.clone();
        async move { fetcher.fetch(request).await }.boxed()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetch_end_to_end_with_http_fetcher() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let n = socket.read(&mut buf).await.unwrap();
        let request = String::from_utf8_lossy(&buf[..n]).into_owned();
        let first = request.lines().next().unwrap_or("").to_owned();
        let body = format!("seen: {first}");
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        socket.write_all(answer.as_bytes()).await.unwrap();
    });
    let source = format!(
        "export default async () => {{ const r = await fetch('http://{addr}/ping?q=1'); return {{ status: r.status, text: await r.text() }}; }}"
    );

    let mut inv = invocation(&source);
    inv.host = Arc::new(FetcherHost(HttpFetcher::new(Vec::new()).unwrap()));
    let outcome = run(inv).await;
    assert_eq!(json(ok(&outcome)), serde_json::json!({"status": 200, "text": "seen: GET /ping?q=1 HTTP/1.1"}));

    // With the default block list, the same call is refused.
    let mut inv = invocation(&source.replace("return {", "return { never: true, "));
    inv.host = Arc::new(FetcherHost(HttpFetcher::new(crate::default_blocked()).unwrap()));
    let outcome = run(inv).await;
    match &outcome.result {
        Err(ScriptError::Exception { message, .. }) => {
            assert!(message.starts_with("TypeError: fetch to 127.0.0.1 is not allowed"), "{message}");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn slow_host_fetch_hits_the_fetch_timeout() {
    let mut inv = invocation(
        r#"export default async () => {
            try { await fetch("https://slow.example.com/", { timeout: 50 }); } catch (e) { return e.message; }
        }"#,
    );
    inv.host = Arc::new(NeverAnswers::default());
    let outcome = run(inv).await;
    assert_eq!(json(ok(&outcome)), serde_json::json!("fetch to https://slow.example.com/ timed out after 50 ms"));
}

#[tokio::test]
async fn host_calls_in_flight_are_bounded_per_script() {
    // 40 calls at once: past 16 waiting, the script is told to await some.
    let host = Arc::new(NeverAnswers::default());
    let mut inv = invocation(
        r#"export default async (request, ctx) => {
            const refused = [];
            for (let i = 0; i < 40; i++) {
                const call = i % 2 ? fetch(`https://example.com/${i}`) : ctx.cubby.request("GET", `/containers/c${i}`);
                call.catch((e) => refused.push(e.message));
            }
            await new Promise((r) => setTimeout(r, 50));
            return { refused: refused.length, first: refused[0] };
        }"#,
    );
    inv.host = host.clone();
    let outcome = run(inv).await;
    let v = json(ok(&outcome));
    let started = host.0.load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(started, crate::engine::natives::MAX_HOST_CALLS, "calls that reached the host");
    assert_eq!(v["refused"], 40 - started, "{v}");
    assert!(v["first"].as_str().unwrap().contains("await some"), "{v}");
}

#[tokio::test]
async fn host_answers_take_room_from_the_scripts_memory() {
    let host = Arc::new(FakeHost::new());
    let answer = |n: usize| FetchResponse { status: 200, headers: Vec::new(), body: Bytes::from(vec![b'x'; n]) };
    host.answer_fetch("https://example.com/small", answer(100 << 10));
    host.answer_fetch("https://example.com/big", answer(2 << 20));
    let mut inv = invocation(
        r#"export default async () => {
            const small = (await (await fetch("https://example.com/small")).arrayBuffer()).byteLength;
            let big;
            try { await fetch("https://example.com/big"); } catch (e) { big = e.message; }
            // The room comes back once an answer is in the script's heap.
            const again = (await (await fetch("https://example.com/small")).arrayBuffer()).byteLength;
            return { small, big, again };
        }"#,
    );
    inv.host = host.clone();
    inv.limits.memory_bytes = 1 << 20;
    let v = json(ok(&run(inv).await));
    assert_eq!((v["small"].as_u64(), v["again"].as_u64()), (Some(100 << 10), Some(100 << 10)), "{v}");
    assert!(v["big"].as_str().unwrap().contains("does not fit"), "{v}");
}
