//! Requests in, responses out, and the errors of a broken script.

use super::*;
use crate::engine::ScriptError;

#[tokio::test]
async fn plain_value_is_json() {
    let outcome = run_js("export default async function () { return { hello: 'world', n: 1 }; }").await;
    let response = ok(&outcome);
    assert_eq!(response.status, 200);
    assert_eq!(header(response, "content-type"), Some("application/json"));
    assert_eq!(json(response), serde_json::json!({"hello": "world", "n": 1}));

    // Strings are JSON too, and sync handlers work.
    let outcome = run_js("export default () => 'hi';").await;
    assert_eq!(text(ok(&outcome)), "\"hi\"");
    let outcome = run_js("export default () => null;").await;
    assert_eq!(text(ok(&outcome)), "null");
}

#[tokio::test]
async fn response_object_keeps_status_headers_and_body() {
    let outcome = run_js(
        r#"export default async function () {
            return new Response("created!", { status: 201, headers: { "X-Thing": "1", "Set-Cookie": "a=1" } });
        }"#,
    )
    .await;
    let response = ok(&outcome);
    assert_eq!(response.status, 201);
    assert_eq!(text(response), "created!");
    assert_eq!(header(response, "x-thing"), Some("1"));
    assert_eq!(header(response, "set-cookie"), Some("a=1"));
    assert_eq!(header(response, "content-type"), Some("text/plain;charset=UTF-8"));

    let outcome = run_js(
        r#"export default () => {
            const r = Response.json({ ok: true }, { status: 202, headers: { "set-cookie": "a=1" } });
            r.headers.append("set-cookie", "b=2");
            return r;
        }"#,
    )
    .await;
    let response = ok(&outcome);
    assert_eq!(response.status, 202);
    assert_eq!(json(response), serde_json::json!({"ok": true}));
    assert_eq!(header(response, "content-type"), Some("application/json"));
    let cookies: Vec<&str> =
        response.headers.iter().filter(|(k, _)| k == "set-cookie").map(|(_, v)| v.as_str()).collect();
    assert_eq!(cookies, vec!["a=1", "b=2"]);

    let outcome = run_js("export default () => new Response(new Uint8Array([0, 255, 7]));").await;
    assert_eq!(&ok(&outcome).body[..], &[0u8, 255, 7]);
    let outcome = run_js("export default () => Response.redirect('https://example.com/x', 307);").await;
    let response = ok(&outcome);
    assert_eq!(response.status, 307);
    assert_eq!(header(response, "location"), Some("https://example.com/x"));
}

#[tokio::test]
async fn undefined_is_204() {
    let outcome = run_js("export default async function () {}").await;
    let response = ok(&outcome);
    assert_eq!(response.status, 204);
    assert!(response.body.is_empty());
    assert!(response.headers.is_empty());
}

#[tokio::test]
async fn response_reads_back() {
    let outcome = run_js(
        r#"export default async function () {
            const r = Response.json({ a: [1, 2] });
            const t = new Response("plain");
            return { ok: r.ok, status: r.status, json: await r.json(), text: await t.text(),
                     bytes: (await t.arrayBuffer()).byteLength, type: r.headers.get("Content-Type"),
                     notOk: new Response(null, { status: 404 }).ok };
        }"#,
    )
    .await;
    assert_eq!(
        json(ok(&outcome)),
        serde_json::json!({"ok": true, "status": 200, "json": {"a": [1, 2]}, "text": "plain",
                           "bytes": 5, "type": "application/json", "notOk": false})
    );
}

#[tokio::test]
async fn request_fields_and_headers() {
    let outcome = run_js(
        r#"export default async function (request) {
            const seen = [];
            request.headers.forEach((value, name) => seen.push(`${name}=${value}`));
            return {
                method: request.method,
                url: request.url,
                custom: request.headers.get("X-CUSTOM"),
                has: request.headers.has("host"),
                missing: request.headers.get("nope"),
                entries: [...request.headers.entries()],
                seen,
                text: await request.text(),
                path: new URL(request.url).pathname,
                y: new URL(request.url).searchParams.get("y"),
            };
        }"#,
    )
    .await;
    assert_eq!(
        json(ok(&outcome)),
        serde_json::json!({
            "method": "GET",
            "url": "http://acme.exec.localhost:8080/hello?x=1&y=two%20words",
            "custom": "a, b",
            "has": true,
            "missing": null,
            "entries": [["host", "acme.exec.localhost:8080"], ["x-custom", "a, b"]],
            "seen": ["host=acme.exec.localhost:8080", "x-custom=a, b"],
            "text": "",
            "path": "/hello",
            "y": "two words",
        })
    );
}

#[tokio::test]
async fn request_body_as_text_json_and_bytes() {
    let mut inv = invocation(
        r#"export default async function (request) {
            const body = await request.json();
            const raw = new Uint8Array(await request.arrayBuffer());
            return { method: request.method, name: body.name, again: (await request.text()).length, first: raw[0] };
        }"#,
    );
    inv.request.method = "POST".to_owned();
    inv.request.body = Bytes::from(r#"{"name":"Zoë"}"#);
    let outcome = run(inv).await;
    assert_eq!(json(ok(&outcome)), serde_json::json!({"method": "POST", "name": "Zoë", "again": 14, "first": 123}));

    let mut inv = invocation("export default async (request) => await request.json();");
    inv.request.body = Bytes::from_static(b"{not json");
    let outcome = run(inv).await;
    match &outcome.result {
        Err(ScriptError::Exception { message, .. }) => {
            assert!(message.starts_with("SyntaxError"), "{message}");
        }
        other => panic!("expected a SyntaxError exception, got {other:?}"),
    }
}

#[tokio::test]
async fn params_and_frozen_env() {
    let mut inv = invocation(
        r#"export default (request, ctx) => {
            let assigned = true;
            try { ctx.env.API_KEY = "changed"; } catch (e) { assigned = e instanceof TypeError ? "TypeError" : String(e); }
            return { id: ctx.params.id, key: ctx.env.API_KEY, frozen: Object.isFrozen(ctx.env), assigned };
        }"#,
    );
    inv.params.insert("id".to_owned(), "42".to_owned());
    inv.env.insert("API_KEY".to_owned(), "s3cret".to_owned());
    let outcome = run(inv).await;
    assert_eq!(
        json(ok(&outcome)),
        serde_json::json!({"id": "42", "key": "s3cret", "frozen": true, "assigned": "TypeError"})
    );
}

#[tokio::test]
async fn typescript_through_the_engine() {
    let ts = r#"
        interface Hello { greeting: string }
        export default async function (request: Request): Promise<Hello> {
            const name = new URL(request.url).searchParams.get("x") as string;
            return { greeting: `hello ${name}` } satisfies Hello;
        }"#;
    let js = crate::strip_types(ts, "hello.ts").unwrap();
    let outcome = run_js(&js).await;
    assert_eq!(json(ok(&outcome)), serde_json::json!({"greeting": "hello 1"}));
}

#[tokio::test]
async fn thrown_errors_are_exceptions_with_stack() {
    let outcome = run_js("function inner() { throw new TypeError('bad input'); }\nexport default () => inner();").await;
    match &outcome.result {
        Err(ScriptError::Exception { message, stack }) => {
            assert_eq!(message, "TypeError: bad input");
            let stack = stack.as_deref().unwrap_or_default();
            assert!(stack.contains("inner"), "{stack}");
            assert!(stack.contains("test/handler.js:1"), "{stack}");
        }
        other => panic!("expected an exception, got {other:?}"),
    }
    let outcome = run_js("export default async () => { throw 'just a string'; };").await;
    assert_eq!(outcome.result, Err(ScriptError::Exception { message: "just a string".to_owned(), stack: None }));
    let outcome = run_js("throw new Error('at load');\nexport default () => 1;").await;
    assert!(
        matches!(&outcome.result, Err(ScriptError::Exception { message, .. }) if message == "Error: at load"),
        "{:?}",
        outcome.result
    );
}

#[tokio::test]
async fn syntax_error() {
    let outcome = run_js("export default function () {\n  return (;\n}").await;
    match &outcome.result {
        Err(ScriptError::Syntax { message }) => {
            assert!(message.starts_with("SyntaxError"), "{message}");
            assert!(message.contains("test/handler.js:2"), "{message}");
        }
        other => panic!("expected a syntax error, got {other:?}"),
    }
}

#[tokio::test]
async fn missing_default_export() {
    for source in ["export const x = 1;", "export default 42;", "const f = () => 1;"] {
        let outcome = run_js(source).await;
        assert_eq!(outcome.result, Err(ScriptError::NoHandler), "{source}");
    }
    assert!(ScriptError::NoHandler.to_string().contains("export default async function (request, ctx)"));
}

#[tokio::test]
async fn imports_of_missing_files_and_builtins_are_refused() {
    // Static imports are resolved when the module is compiled (the
    // project's files are in `modules`, which the tests there exercise).
    let outcome = run_js("import { x } from './other.js';\nexport default () => x;").await;
    match &outcome.result {
        Err(ScriptError::Syntax { message }) => {
            assert!(message.contains("no such file in the project's scripts/"), "{message}");
            assert!(message.contains("./other.js"), "{message}");
        }
        other => panic!("expected the import to be refused, got {other:?}"),
    }
    let outcome = run_js("export default async () => { await import('node:fs'); };").await;
    assert!(
        matches!(&outcome.result, Err(ScriptError::Exception { message, .. }) if message.contains("a runtime's built-in module")),
        "{:?}",
        outcome.result
    );
}

#[tokio::test]
async fn bad_returns() {
    for (source, expect) in [
        ("export default () => () => 1;", "neither a Response nor a JSON value"),
        ("export default () => ({ n: 10n });", "JSON.stringify failed"),
        ("export default () => { const a = {}; a.a = a; return a; };", "JSON.stringify failed"),
        (
            "export default () => { class R extends Response { get status() { return 99; } } return new R('x'); };",
            "status 99 is not a response status",
        ),
        (
            "export default () => { Array.prototype.flat = () => [1, {}]; return new Response('x'); };",
            "the response could not be read",
        ),
    ] {
        let outcome = run_js(source).await;
        match &outcome.result {
            Err(ScriptError::BadReturn { message }) => assert!(message.contains(expect), "{message}"),
            other => panic!("{source}: expected a bad return, got {other:?}"),
        }
    }
    // Invalid Response arguments are the script's exceptions.
    let outcome = run_js("export default () => new Response('x', { status: 1000 });").await;
    assert!(
        matches!(&outcome.result, Err(ScriptError::Exception { message, .. }) if message.starts_with("RangeError")),
        "{:?}",
        outcome.result
    );
    let outcome = run_js("export default () => new Response({ a: 1 });").await;
    assert!(
        matches!(&outcome.result, Err(ScriptError::Exception { message, .. }) if message.contains("use Response.json")),
        "{:?}",
        outcome.result
    );
    let outcome = run_js("export default () => new Response('x', { headers: { 'bad name': '1' } });").await;
    assert!(
        matches!(&outcome.result, Err(ScriptError::Exception { message, .. }) if message.contains("invalid header name")),
        "{:?}",
        outcome.result
    );
}

#[tokio::test]
async fn response_too_large() {
    let mut inv = invocation("export default () => new Response('x'.repeat(2000));");
    inv.limits.max_response_bytes = 1000;
    let outcome = run(inv).await;
    assert_eq!(outcome.result, Err(ScriptError::ResponseTooLarge { limit: 1000 }));
    let mut inv = invocation("export default () => new Response('x'.repeat(1000));");
    inv.limits.max_response_bytes = 1000;
    assert_eq!(ok(&run(inv).await).body.len(), 1000);
}

#[tokio::test]
async fn top_level_await_and_module_state() {
    let outcome = run_js(
        "const started = await Promise.resolve(5);\nlet calls = 0;\nexport default () => ({ started, calls: ++calls });",
    )
    .await;
    assert_eq!(json(ok(&outcome)), serde_json::json!({"started": 5, "calls": 1}));
}

#[tokio::test]
async fn each_run_starts_fresh() {
    let source = "globalThis.count = (globalThis.count ?? 0) + 1;\nexport default () => globalThis.count;";
    for _ in 0..3 {
        assert_eq!(text(ok(&run_js(source).await)), "1");
    }
}

#[tokio::test]
async fn natives_are_not_global() {
    let outcome =
        run_js("export default () => Object.getOwnPropertyNames(globalThis).filter(n => /native|internals/i.test(n));")
            .await;
    assert_eq!(json(ok(&outcome)), serde_json::json!([]));
}
