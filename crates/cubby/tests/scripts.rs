//! End to end, as root: exec scripts. A file in a project's `scripts/`
//! becomes an endpoint at `http://{project}.exec.{domain}/...`: the Stripe
//! example provisions a container per customer; routing, TypeScript,
//! `@token` and `@cors` behave; limits kill runaway scripts without
//! hurting anyone else; a script reaches only its own project.

mod support;

use std::time::{Duration, Instant};

use cubby_model::{CreateProject, CreateToken, PutSecrets};
use cubby_testkit::{Daemon, HttpResponse, OutsideHost, http_get, http_request};
use hmac::{KeyInit, Mac};
use support::{container, daemon, project};

/// `http://{project}.exec.localhost:{port}{path}`.
fn exec_url(d: &Daemon, project: &str, path: &str) -> String {
    format!("http://{project}.exec.localhost:{}{path}", d.proxy_addr.port())
}

fn call(d: &Daemon, method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> HttpResponse {
    http_request(d.proxy_addr, method, url, headers, body)
}

fn put(api: &cubby_client::Client, project: &str, path: &str, source: &str) {
    api.put_script(project, path, source.as_bytes()).unwrap_or_else(|e| panic!("put {path}: {e}"));
}

fn stripe_signature(secret: &str, t: i64, payload: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.{payload}").as_bytes());
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

#[test]
fn the_stripe_example_provisions_one_container_per_customer() {
    let Some(d) = daemon("the_stripe_example_provisions_one_container_per_customer") else { return };
    let api = d.admin();
    // A claim project, as in production: the customer's URL needs the link.
    let p = api.create_project(&CreateProject { name: "saas".into(), ..Default::default() }).unwrap();
    let template = container(&api, &p, "template", "welcome");

    // `cubby scripts push` mirrors the examples folder.
    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/scripts");
    let (code, out, err) = d.cli(&["scripts", "push", examples.to_str().unwrap(), "--project", p.id.as_str()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("webhooks/stripe-signup.ts"), "{out}");
    let (code, out, _) = d.cli(&["scripts", "push", examples.to_str().unwrap(), "--project", p.id.as_str()]);
    assert!(code == 0 && out.contains("0 uploaded"), "an unchanged folder uploads nothing: {out}");
    let secret = "whsec_test_0123456789";
    let secrets = PutSecrets::from([
        ("STRIPE_WEBHOOK_SECRET".into(), secret.into()),
        ("TEMPLATE_CONTAINER_ID".into(), template.id.to_string()),
    ]);
    api.put_secrets(p.id.as_str(), &secrets).unwrap();

    let url = exec_url(&d, "saas", "/webhooks/stripe-signup");
    let event = serde_json::json!({
        "id": "evt_1", "type": "customer.created",
        "data": {"object": {"id": "cus_NffrFeUfNV2Hib", "email": "a@example.com"}}
    })
    .to_string();
    let sig = stripe_signature(secret, unix_now(), &event);
    let r = call(&d, "POST", &url, &[("Stripe-Signature", &sig)], Some(event.as_bytes()));
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    let link = answer["url"].as_str().unwrap().to_string();
    let cid = answer["container_id"].as_str().unwrap().to_string();

    // The link opens the customer's own container (claim → cookie → app).
    let hop = http_get(d.proxy_addr, &link);
    assert_eq!(hop.status, 303, "{}", hop.body);
    let cookie = hop.header("set-cookie").unwrap().split(';').next().unwrap().to_string();
    let c = api.container(&cid).unwrap();
    assert_eq!(c.status, cubby_model::ContainerStatus::Running);
    let app = http_request(d.proxy_addr, "GET", &c.url, &[("Cookie", &cookie)], None);
    assert_eq!((app.status, app.json()["greeting"].as_str()), (200, Some("welcome")), "{}", app.body);
    assert_eq!(c.environment_vars.get("CUSTOMER_ID").map(String::as_str), Some("cus_NffrFeUfNV2Hib"));

    // The same event again (Stripe retries) makes no second container.
    let sig = stripe_signature(secret, unix_now(), &event);
    let again = call(&d, "POST", &url, &[("Stripe-Signature", &sig)], Some(event.as_bytes()));
    assert_eq!((again.status, again.json()["container_id"].as_str()), (200, Some(cid.as_str())), "{}", again.body);
    let count = || api.containers(Some(p.id.as_str()), None, 100).unwrap().items.len();
    assert_eq!(count(), 2, "the template and one customer");

    // Bad signatures make nothing.
    let other = event.replace("cus_NffrFeUfNV2Hib", "cus_Other");
    let forged = stripe_signature("whsec_wrong", unix_now(), &other);
    let stale = stripe_signature(secret, unix_now() - 3600, &other);
    for (what, header) in [("wrong secret", forged.as_str()), ("old timestamp", stale.as_str()), ("garbage", "t=1")] {
        let r = call(&d, "POST", &url, &[("Stripe-Signature", header)], Some(other.as_bytes()));
        assert_eq!(r.status, 400, "{what}: {}", r.body);
    }
    let r = call(&d, "POST", &url, &[], Some(other.as_bytes()));
    assert_eq!(r.status, 400, "no signature");
    assert_eq!(count(), 2, "refused deliveries made nothing");

    // Each invocation is logged with what the script printed.
    let logs = api.script_logs(p.id.as_str(), 20).unwrap();
    assert!(logs.len() >= 6);
    assert!(logs.iter().any(|l| l.logs.iter().any(|x| x.message.contains("made cust-"))), "{logs:?}");
    assert!(logs.iter().any(|l| l.logs.iter().any(|x| x.message.contains("already exists"))));
}

#[test]
fn routing_typescript_token_and_cors() {
    let Some(d) = daemon("routing_typescript_token_and_cors") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let pid = p.id.as_str();
    put(&api, pid, "index.js", "export default () => ({ page: 'home' })");
    put(
        &api,
        pid,
        "hello.js",
        "export default async (req) => new Response(`hi ${new URL(req.url).searchParams.get('who')}`, { status: 201, headers: { 'x-made-by': 'script' } })",
    );
    put(
        &api,
        pid,
        "users/[id].ts",
        r#"
interface Params { id: string }
type Answer = { user: string; method: string; body: unknown };
export default async function (request: Request, ctx: { params: Params }): Promise<Answer> {
  const body = request.method === "POST" ? await request.json() : null;
  return { user: ctx.params.id as string, method: request.method, body } satisfies Answer;
}
"#,
    );
    put(&api, pid, "users/me.js", "export default () => ({ user: 'me' })");
    put(&api, pid, "private.js", "// @token s3cret-token\nexport default () => ({ secret: true })");
    put(&api, pid, "open.js", "// @cors https://app.example.com\nexport default () => ({ open: true })");

    assert_eq!(call(&d, "GET", &exec_url(&d, "acme", "/"), &[], None).json()["page"], "home");
    let r = call(&d, "GET", &exec_url(&d, "acme", "/hello?who=ann"), &[], None);
    assert_eq!((r.status, r.body.as_str(), r.header("x-made-by")), (201, "hi ann", Some("script")));
    let r = call(&d, "POST", &exec_url(&d, "acme", "/users/42"), &[], Some(br#"{"n":1}"#));
    assert_eq!(r.json(), serde_json::json!({"user": "42", "method": "POST", "body": {"n": 1}}), "{}", r.body);
    assert_eq!(call(&d, "GET", &exec_url(&d, "acme", "/users/me"), &[], None).json()["user"], "me");
    let r = call(&d, "GET", &exec_url(&d, "acme", "/nope"), &[], None);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (404, Some("script_not_found")));
    let r = call(&d, "GET", &exec_url(&d, "nobody", "/"), &[], None);
    assert_eq!(r.status, 404);

    // @token: checked before the script runs.
    let secret_url = exec_url(&d, "acme", "/private");
    let r = call(&d, "GET", &secret_url, &[], None);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (401, Some("script_token_required")));
    assert_eq!(call(&d, "GET", &secret_url, &[("Authorization", "Bearer wrong")], None).status, 401);
    let r = call(&d, "GET", &secret_url, &[("Authorization", "Bearer s3cret-token")], None);
    assert_eq!(r.json()["secret"], true);
    assert_eq!(call(&d, "GET", &secret_url, &[("X-Cubby-Token", "s3cret-token")], None).status, 200);

    // @cors: preflight and the header on answers.
    let open_url = exec_url(&d, "acme", "/open");
    let pre = call(
        &d,
        "OPTIONS",
        &open_url,
        &[("Origin", "https://app.example.com"), ("Access-Control-Request-Method", "POST")],
        None,
    );
    assert_eq!(pre.status, 204);
    assert_eq!(pre.header("access-control-allow-origin"), Some("https://app.example.com"));
    assert!(pre.header("access-control-allow-methods").is_some_and(|m| m.contains("POST")));
    let r = call(&d, "GET", &open_url, &[("Origin", "https://app.example.com")], None);
    assert_eq!((r.status, r.header("access-control-allow-origin")), (200, Some("https://app.example.com")));
    assert!(
        call(&d, "GET", &exec_url(&d, "acme", "/hello"), &[], None).header("access-control-allow-origin").is_none()
    );

    // Files through the API: list with URLs, read back, bad input, delete.
    let files = api.scripts(pid).unwrap();
    let ts = files.iter().find(|f| f.path == "users/[id].ts").unwrap();
    assert_eq!(ts.url, format!("http://acme.exec.localhost:{}/users/[id]", d.proxy_addr.port()));
    assert_eq!(api.script(pid, "hello.js").unwrap(), b"export default async (req) => new Response(`hi ${new URL(req.url).searchParams.get('who')}`, { status: 201, headers: { 'x-made-by': 'script' } })");
    for (path, source, code) in [
        ("../escape.js", "export default () => 1", "invalid_request"),
        ("notes.txt", "hello", "invalid_request"),
        ("broken.ts", "export default function (: {", "invalid_request"),
        ("magic.js", "// @timeout soon\nexport default () => 1", "invalid_request"),
    ] {
        let e = api.put_script(pid, path, source.as_bytes()).unwrap_err();
        assert_eq!((e.status(), e.code()), (Some(400), Some(code)), "{path}: {e}");
    }
    api.delete_script(pid, "users/me.js").unwrap();
    assert_eq!(call(&d, "GET", &exec_url(&d, "acme", "/users/me"), &[], None).json()["user"], "me", "falls to [id]");
    assert_eq!(api.delete_script(pid, "users/me.js").unwrap_err().status(), Some(404));

    // Another project's token sees none of it.
    let other = project(&api, "other");
    let token = api.create_token(other.id.as_str(), &CreateToken { name: None }).unwrap().secret;
    let outsider = d.client(Some(&token));
    assert_eq!(outsider.scripts(pid).unwrap_err().status(), Some(404));
    assert_eq!(outsider.script(pid, "hello.js").unwrap_err().status(), Some(404));
    assert_eq!(outsider.put_script(pid, "x.js", b"export default () => 1").unwrap_err().status(), Some(404));
    assert_eq!(outsider.script_logs(pid, 10).unwrap_err().status(), Some(404));
    assert_eq!(outsider.put_secrets(pid, &PutSecrets::new()).unwrap_err().status(), Some(404));
}

#[test]
fn limits_kill_runaway_scripts_and_nothing_else() {
    let Some(d) = daemon("limits_kill_runaway_scripts_and_nothing_else") else { return };
    let api = d.admin();
    let p = project(&api, "acme");
    let pid = p.id.as_str();
    let web = container(&api, &p, "web", "hi");
    put(&api, pid, "spin.js", "// @timeout 1500\nexport default () => { while (true) {} }");
    put(&api, pid, "hang.js", "// @timeout 500\nexport default () => new Promise(() => {})");
    put(
        &api,
        pid,
        "bomb.js",
        "export default () => { const a = []; while (true) a.push('x'.repeat(1 << 20) + a.length); }",
    );
    put(&api, pid, "hello.js", "export default () => ({ hello: 'world' })");
    put(&api, pid, "host.js", "import * as std from 'std';\nexport default () => std.loadFile('/etc/passwd')");
    put(&api, pid, "throws.js", "export default () => { throw new Error('kaboom ' + 42) }");

    // While a script spins, the daemon, other scripts and containers answer.
    let spinning = {
        let (proxy, url) = (d.proxy_addr, exec_url(&d, "acme", "/spin"));
        std::thread::spawn(move || {
            let t0 = Instant::now();
            (http_request(proxy, "GET", &url, &[], None), t0.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(call(&d, "GET", &exec_url(&d, "acme", "/hello"), &[], None).json()["hello"], "world");
    assert_eq!(http_get(d.proxy_addr, &web.url).status, 200);
    assert!(api.health().is_ok());
    let (r, took) = spinning.join().unwrap();
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (504, Some("script_timeout")), "{}", r.body);
    assert!(took < Duration::from_secs(20), "killed near its @timeout, not hanging: {took:?}");

    let r = call(&d, "GET", &exec_url(&d, "acme", "/hang"), &[], None);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (504, Some("script_timeout")));
    let r = call(&d, "GET", &exec_url(&d, "acme", "/bomb"), &[], None);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (500, Some("script_out_of_memory")), "{}", r.body);
    let r = call(&d, "GET", &exec_url(&d, "acme", "/host"), &[], None);
    assert_eq!(r.status, 500, "no host file access: {}", r.body);
    assert!(!r.body.contains("root:"));
    let r = call(&d, "GET", &exec_url(&d, "acme", "/throws"), &[], None);
    assert_eq!((r.status, r.json()["error"]["code"].as_str()), (500, Some("script_error")));
    assert!(!r.body.contains("kaboom"), "exception details go to the owner's logs, not the caller");
    let logs = api.script_logs(pid, 50).unwrap();
    assert!(logs.iter().any(|l| l.error.as_deref().is_some_and(|e| e.contains("kaboom 42"))), "{logs:?}");
    assert!(logs.iter().any(|l| l.script == "bomb.js" && l.status == 500));
    // And after all that, scripts still run.
    assert_eq!(call(&d, "GET", &exec_url(&d, "acme", "/hello"), &[], None).status, 200);
}

#[test]
fn a_script_reaches_only_its_own_project() {
    let Some(d) = daemon("a_script_reaches_only_its_own_project") else { return };
    let api = d.admin();
    let a = project(&api, "alpha");
    let b = project(&api, "beta");
    let theirs = container(&api, &b, "theirs", "b's data");
    let mine = container(&api, &a, "mine", "a's data");
    api.put_secrets(a.id.as_str(), &PutSecrets::from([("KEY".into(), "alpha-secret".into())])).unwrap();
    api.put_secrets(b.id.as_str(), &PutSecrets::from([("KEY".into(), "beta-secret".into())])).unwrap();
    let mut outside = OutsideHost::new(&d.prefix, &d.subnet);
    outside.serve_http(9080, "from the outside");

    let probe = format!(
        r#"
const attempt = async (f) => {{ try {{ const v = await f(); return {{ ok: true, v }}; }} catch (e) {{ return {{ ok: false, status: e.status ?? null, error: String(e.message ?? e) }}; }} }};
export default async function (request, ctx) {{
  return {{
    env: ctx.env.KEY,
    own: await attempt(async () => (await ctx.cubby.containers.get("{mine}")).name),
    list: await attempt(async () => (await ctx.cubby.containers.list()).items.map((c) => c.name)),
    other_container: await attempt(() => ctx.cubby.containers.get("{theirs}")),
    other_stop: await attempt(() => ctx.cubby.containers.stop("{theirs}")),
    other_project: await attempt(() => ctx.cubby.request("GET", "/projects/{b}")),
    other_copy: await attempt(() => ctx.cubby.containers.copy("{theirs}", {{ name: "stolen" }})),
    fetch_container: await attempt(async () => (await fetch("http://{theirs_addr}:8080/")).status),
    fetch_api: await attempt(async () => (await fetch("http://{api}/api/v1/projects")).status),
    fetch_localhost: await attempt(async () => (await fetch("http://localhost:{proxy}/")).status),
    fetch_outside: await attempt(async () => {{ const r = await fetch("http://{outside}:9080/x", {{ method: "POST", body: "hi" }}); return [r.status, await r.text(), r.headers.get("x-seen-method")]; }}),
  }};
}}
"#,
        mine = mine.id,
        theirs = theirs.id,
        b = b.id,
        theirs_addr = theirs.address,
        api = d.api_addr,
        proxy = d.proxy_addr.port(),
        outside = outside.addr,
    );
    put(&api, a.id.as_str(), "probe.js", &probe);
    let r = call(&d, "GET", &exec_url(&d, "alpha", "/probe"), &[], None);
    assert_eq!(r.status, 200, "{}", r.body);
    let v = r.json();
    assert_eq!(v["env"], "alpha-secret", "its own secrets only");
    assert_eq!(v["own"], serde_json::json!({"ok": true, "v": "mine"}));
    assert_eq!(v["list"], serde_json::json!({"ok": true, "v": ["mine"]}), "{v}");
    for key in ["other_container", "other_stop", "other_project", "other_copy"] {
        assert_eq!((v[key]["ok"].as_bool(), v[key]["status"].as_u64()), (Some(false), Some(404)), "{key}: {v}");
    }
    for key in ["fetch_container", "fetch_api", "fetch_localhost"] {
        assert_eq!(v[key]["ok"], false, "{key} must be refused: {v}");
        assert!(v[key]["error"].as_str().unwrap().contains("not allowed"), "{key}: {v}");
    }
    assert_eq!(v["fetch_outside"], serde_json::json!({"ok": true, "v": [200, "from the outside", "POST"]}), "{v}");
    assert_eq!(api.container(theirs.id.as_str()).unwrap().status, cubby_model::ContainerStatus::Running);
    assert_eq!(api.containers(Some(b.id.as_str()), None, 10).unwrap().items.len(), 1, "nothing copied out of beta");
    // Secret values never come back through the API.
    let names = api.secrets(a.id.as_str()).unwrap();
    assert_eq!(names.names, ["KEY"]);
    let raw = api.raw("GET", &format!("/api/v1/projects/{}/secrets", a.id), None).unwrap();
    assert!(!String::from_utf8_lossy(&raw.body).contains("alpha-secret"));

    // Deleting a project removes its scripts folder.
    let dir = d.data_dir.join("projects").join(b.id.as_str()).join("scripts");
    put(&api, b.id.as_str(), "x.js", "export default () => 1");
    assert!(dir.join("x.js").exists());
    api.delete_container(theirs.id.as_str()).unwrap();
    api.delete_project(b.id.as_str()).unwrap();
    assert!(!dir.exists());
}

/// Sends a request whose head promises `declared` body bytes but carries
/// only `sent`, and reads the status line (or times out after `wait`).
fn partial_body(d: &Daemon, host: &str, path: &str, declared: usize, sent: usize, wait: Duration) -> Option<u16> {
    partial_answer(d, host, path, declared, sent, wait).map(|(status, _)| status)
}

/// Sends the head of a POST declaring `declared` bytes and only `sent` of
/// them, then reads what comes back within `wait`: the status and the
/// rest of the answer, or `None` when nothing came (the server waits for
/// the body).
fn partial_answer(
    d: &Daemon,
    host: &str,
    path: &str,
    declared: usize,
    sent: usize,
    wait: Duration,
) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(d.proxy_addr).unwrap();
    s.set_read_timeout(Some(wait)).unwrap();
    let head = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: {declared}\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&vec![b'x'; sent]).unwrap();
    let mut buf = vec![0u8; 4096];
    let n = s.read(&mut buf).ok()?;
    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, text))
}

#[test]
fn one_project_cannot_take_the_script_runner_from_another() {
    if !cubby_testkit::require_root("one_project_cannot_take_the_script_runner_from_another") {
        return;
    }
    let args = ["--script-concurrency", "2", "--script-queue", "2"].map(String::from).to_vec();
    let d = Daemon::start_with(support::BIN, cubby_testkit::DaemonOptions { extra_args: args, ..Default::default() });
    let api = d.admin();
    let busy = project(&api, "busy");
    let calm = project(&api, "calm");
    put(
        &api,
        busy.id.as_str(),
        "slow.js",
        "export default async () => { await new Promise((r) => setTimeout(r, 1500)); return 'slept'; }",
    );
    put(&api, calm.id.as_str(), "hi.js", "export default () => 'hi'");
    let host = format!("busy.exec.localhost:{}", d.proxy_addr.port());

    // The route comes first: a request to no script is answered without
    // waiting for its (promised, never sent) body.
    assert_eq!(partial_body(&d, &host, "/nowhere", 8 << 20, 1024, Duration::from_secs(5)), Some(404));
    // Control: the same request to a script waits for its body.
    assert_eq!(partial_body(&d, &host, "/slow", 512 << 10, 1024, Duration::from_millis(500)), None);
    // A body over the scripts' cap (1 MiB by default) is refused from its
    // declared length, before it is read (a client still sending it may
    // see the connection close under it: read the answer as it comes).
    let (status, answer) =
        partial_answer(&d, &host, "/slow", 2 << 20, 1024, Duration::from_secs(5)).expect("an answer, not a wait");
    assert_eq!(status, 413, "{answer}");
    assert!(answer.contains(r#""code":"payload_too_large""#), "{answer}");

    // Six at once to one project: two run, two wait, two are told to retry.
    let statuses: Vec<(u16, Option<String>)> = std::thread::scope(|s| {
        let burst: Vec<_> = (0..6)
            .map(|_| {
                s.spawn(|| {
                    let r = call(&d, "GET", &exec_url(&d, "busy", "/slow"), &[], None);
                    (r.status, r.header("retry-after").map(str::to_string))
                })
            })
            .collect();
        // Meanwhile another project's script answers at once.
        std::thread::sleep(Duration::from_millis(300));
        let t = Instant::now();
        let r = call(&d, "GET", &exec_url(&d, "calm", "/hi"), &[], None);
        assert_eq!((r.status, r.body.as_str()), (200, "\"hi\""), "the calm project waited for the busy one");
        assert!(t.elapsed() < Duration::from_millis(1200), "calm waited {:?}", t.elapsed());
        burst.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ran = statuses.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<_> = statuses.iter().filter(|(s, _)| *s == 503).collect();
    assert_eq!((ran, refused.len()), (4, 2), "{statuses:?}");
    assert!(refused.iter().all(|(_, retry)| retry.is_some()), "503s say when to retry: {statuses:?}");
}

/// Reads from `reader` until `needle` has been seen (or the stream ends),
/// bounded by the socket's read timeout; everything read so far.
fn read_until(reader: &mut impl std::io::Read, seen: &mut Vec<u8>, needle: &str) -> bool {
    let mut buf = [0u8; 4096];
    for _ in 0..10_000 {
        if String::from_utf8_lossy(seen).contains(needle) {
            return true;
        }
        match reader.read(&mut buf) {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    false
}

#[test]
fn a_script_streams_server_sent_events_while_it_runs() {
    use std::io::Write;
    let Some(d) = daemon("a_script_streams_server_sent_events_while_it_runs") else { return };
    let api = d.admin();
    let p = project(&api, "live");
    // The second event waits for a container the test makes only after it
    // has read the first: the first can only arrive if the answer streams.
    put(
        &api,
        p.id.as_str(),
        "events.ts",
        r#"// @timeout 60000
// @concurrent false
export default (request: Request, ctx: any) => {
  const encoder = new TextEncoder();
  let sent = 0;
  const body = new ReadableStream({
    async pull(c) {
      if (sent++ === 0) { c.enqueue(encoder.encode("data: first\n\n")); return; }
      for (let i = 0; i < 400; i++) {
        const { items } = await ctx.cubby.containers.list();
        if (items.some((x: any) => x.name === "go")) { c.enqueue(encoder.encode("data: go seen\n\n")); c.close(); return; }
        await new Promise((r) => setTimeout(r, 100));
      }
      c.close();
    },
  });
  return new Response(body, { headers: { "content-type": "text/event-stream", "cache-control": "no-cache" } });
};
"#,
    );
    let mut s = std::net::TcpStream::connect(d.proxy_addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(s, "GET /events HTTP/1.1\r\nHost: live.exec.localhost:{}\r\nConnection: close\r\n\r\n", d.proxy_addr.port())
        .unwrap();
    let mut seen = Vec::new();
    assert!(read_until(&mut s, &mut seen, "data: first"), "{}", String::from_utf8_lossy(&seen));
    let head = String::from_utf8_lossy(&seen).to_lowercase();
    assert!(head.starts_with("http/1.1 200") && head.contains("content-type: text/event-stream"), "{head}");
    assert!(head.contains("transfer-encoding: chunked"), "streamed, not sized: {head}");
    assert!(!head.contains("go seen"), "the second event cannot exist yet");
    // A streaming script still holds its run slot (`@concurrent false`
    // here): a second request waits for the first stream to end.
    let mut second = std::net::TcpStream::connect(d.proxy_addr).unwrap();
    write!(
        second,
        "GET /events HTTP/1.1\r\nHost: live.exec.localhost:{}\r\nConnection: close\r\n\r\n",
        d.proxy_addr.port()
    )
    .unwrap();
    second.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
    let mut waiting = Vec::new();
    assert!(
        !read_until(&mut second, &mut waiting, "HTTP/1.1"),
        "answered while the first streams: {}",
        String::from_utf8_lossy(&waiting)
    );
    container(&api, &p, "go", "the signal");
    assert!(read_until(&mut s, &mut seen, "data: go seen"), "{}", String::from_utf8_lossy(&seen));
    // And the stream ends with the chunked terminator.
    assert!(read_until(&mut s, &mut seen, "\r\n0\r\n\r\n"), "{}", String::from_utf8_lossy(&seen));
    // Then the second runs (the same way the first did: the control).
    second.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    assert!(read_until(&mut second, &mut waiting, "data: go seen"), "{}", String::from_utf8_lossy(&waiting));
}

#[test]
fn a_client_that_stops_reading_a_stream_holds_no_slot_past_the_script() {
    use std::io::Write;
    let Some(d) = daemon("a_client_that_stops_reading_a_stream_holds_no_slot_past_the_script") else { return };
    let api = d.admin();
    let p = project(&api, "flood");
    // More than the socket buffers and the chunks in flight hold: the
    // script waits for a reader until its 2 s limit ends it.
    put(
        &api,
        p.id.as_str(),
        "big.js",
        r#"// @timeout 2000
// @concurrent false
export default () => {
  let sent = 0;
  return new Response(new ReadableStream({
    pull(c) { if (sent++ < 140) c.enqueue(new Uint8Array(64 * 1024)); else c.close(); },
  }));
};
"#,
    );
    let request =
        format!("GET /big HTTP/1.1\r\nHost: flood.exec.localhost:{}\r\nConnection: close\r\n\r\n", d.proxy_addr.port());
    let mut stalled = std::net::TcpStream::connect(d.proxy_addr).unwrap();
    stalled.write_all(request.as_bytes()).unwrap();
    // This client never reads. The second request (same `@concurrent
    // false` script) gets its answer once the first script has ended,
    // while the first connection is still open.
    let mut second = std::net::TcpStream::connect(d.proxy_addr).unwrap();
    second.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    second.write_all(request.as_bytes()).unwrap();
    let mut seen = Vec::new();
    assert!(read_until(&mut second, &mut seen, "HTTP/1.1 200"), "{}", String::from_utf8_lossy(&seen));
    drop(stalled);
}
