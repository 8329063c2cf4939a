//! console, crypto, encodings, URL and timers.

use super::*;
use crate::engine::LogLine;

fn lines(outcome: &Outcome) -> Vec<(&str, &str)> {
    outcome.logs.iter().map(|LogLine { level, message }| (level.as_str(), message.as_str())).collect()
}

#[tokio::test]
async fn console_is_captured_and_formatted() {
    let outcome = run_js(
        r#"export default () => {
            console.log("plain", 1, true, null, undefined);
            console.info({ a: [1, "x"], n: 2n }, [1, 2]);
            console.warn("map", new Map([["k", 1]]));
            const loop = { name: "loop" }; loop.self = loop;
            console.error(loop);
            console.debug(new RangeError("out"));
        }"#,
    )
    .await;
    ok(&outcome);
    let got = lines(&outcome);
    assert_eq!(got[0], ("log", "plain 1 true null undefined"));
    assert_eq!(got[1], ("info", r#"{"a":[1,"x"],"n":"2n"} [1,2]"#));
    assert_eq!(got[2], ("warn", r#"map {"k":1}"#));
    assert_eq!(got[3], ("error", r#"{"name":"loop","self":"[Circular]"}"#));
    assert_eq!(got[4].0, "debug");
    assert!(got[4].1.starts_with("RangeError: out\n"), "{}", got[4].1);
    assert_eq!(got.len(), 5);
}

#[tokio::test]
async fn logs_survive_failures_and_are_truncated() {
    let mut inv = invocation(
        r#"export default () => {
            for (let i = 0; i < 100; i++) console.log("line " + i);
            throw new Error("after logging");
        }"#,
    );
    inv.limits.max_log_bytes = 40;
    let outcome = run(inv).await;
    assert!(outcome.result.is_err());
    let got = lines(&outcome);
    let kept: usize = got[..got.len() - 1].iter().map(|(_, m)| m.len()).sum();
    assert_eq!(kept, 40);
    assert_eq!(got.last(), Some(&("warn", "(log truncated)")));
    assert_eq!(got[0], ("log", "line 0"));
}

#[tokio::test]
async fn crypto_vectors_and_helpers() {
    let outcome = run_js(
        r#"export default () => {
            const u = crypto.randomUUID();
            const filled = crypto.getRandomValues(new Uint32Array(4));
            return {
                sha: crypto.sha256("abc"),
                shaBytes: crypto.sha256(new Uint8Array([0x61, 0x62, 0x63])),
                hmac: crypto.hmacSha256("Jefe", "what do ya want for nothing?"),
                eq: crypto.timingSafeEqual("secret", "secret"),
                ne: crypto.timingSafeEqual("secret", "secreT"),
                len: crypto.timingSafeEqual("secret", "secrets"),
                bytes: crypto.timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])),
                uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/.test(u),
                differ: u !== crypto.randomUUID(),
                filled: filled.length === 4 && filled.some((x) => x !== 0),
            };
        }"#,
    )
    .await;
    assert_eq!(
        json(ok(&outcome)),
        serde_json::json!({
            "sha": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "shaBytes": "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
            "hmac": "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
            "eq": true, "ne": false, "len": false, "bytes": true,
            "uuid": true, "differ": true, "filled": true,
        })
    );
    let outcome = run_js("export default () => crypto.sha256({});").await;
    assert!(
        matches!(&outcome.result, Err(crate::ScriptError::Exception { message, .. }) if message.starts_with("TypeError")),
        "{:?}",
        outcome.result
    );
}

#[tokio::test]
async fn text_encoding_and_base64() {
    let outcome = run_js(
        r#"export default () => {
            const bytes = new TextEncoder().encode("héllo €");
            let fatal = "no error";
            try { new TextDecoder("utf-8", { fatal: true }).decode(new Uint8Array([0xff])); } catch (e) { fatal = e.name; }
            return {
                length: bytes.length,
                back: new TextDecoder().decode(bytes),
                lossy: new TextDecoder().decode(new Uint8Array([0x61, 0xff])),
                fatal,
                b64: btoa("hello"),
                plain: atob("aGVsbG8="),
                lone: new TextEncoder().encode("\ud800").length,
            };
        }"#,
    )
    .await;
    assert_eq!(
        json(ok(&outcome)),
        serde_json::json!({
            "length": 10, "back": "héllo €", "lossy": "a\u{fffd}", "fatal": "TypeError",
            "b64": "aGVsbG8=", "plain": "hello", "lone": 3,
        })
    );
}

#[tokio::test]
async fn url_and_search_params() {
    let outcome = run_js(
        r#"export default () => {
            const u = new URL("/a b/c?x=1&x=2&y=%E2%82%AC+z#frag", "https://user:pw@Example.com:8443/base/");
            const p = new URLSearchParams({ q: "a&b=c", empty: "" });
            p.append("sp ace", "1 2");
            u.searchParams.set("x", "3");
            u.searchParams.delete("y");
            const parts = {};
            for (const k of ["href", "origin", "protocol", "username", "password", "host", "hostname", "port", "pathname", "search", "hash"]) parts[k] = u[k];
            const v = new URL("http://h/p");
            v.pathname = "/new path";
            v.hash = "h";
            return {
                parts,
                all: new URL("http://h/?x=1&x=2").searchParams.getAll("x"),
                p: p.toString(),
                parsed: [...new URLSearchParams("?a=1&b=%zz&c")],
                v: v.href,
                json: JSON.stringify({ u: new URL("http://h/") }),
                invalid: URL.canParse("not a url"),
            };
        }"#,
    )
    .await;
    assert_eq!(
        json(ok(&outcome)),
        serde_json::json!({
            "parts": {
                "href": "https://user:pw@example.com:8443/a%20b/c?x=3#frag",
                "origin": "https://example.com:8443",
                "protocol": "https:",
                "username": "user",
                "password": "pw",
                "host": "example.com:8443",
                "hostname": "example.com",
                "port": "8443",
                "pathname": "/a%20b/c",
                "search": "?x=3",
                "hash": "#frag",
            },
            "all": ["1", "2"],
            "p": "q=a%26b%3Dc&empty=&sp+ace=1+2",
            "parsed": [["a", "1"], ["b", "%zz"], ["c", ""]],
            "v": "http://h/new%20path#h",
            "json": r#"{"u":"http://h/"}"#,
            "invalid": false,
        })
    );
    let outcome = run_js("export default () => new URL('relative/only');").await;
    assert!(
        matches!(&outcome.result, Err(crate::ScriptError::Exception { message, .. }) if message == "TypeError: Invalid URL: relative/only"),
        "{:?}",
        outcome.result
    );
}

#[tokio::test]
async fn timers() {
    let started = std::time::Instant::now();
    let outcome = run_js(
        r#"export default async () => {
            const order = [];
            const cancelled = setTimeout(() => order.push("cancelled"), 5);
            clearTimeout(cancelled);
            setTimeout((a) => order.push(a), 20, "late");
            setTimeout(() => order.push("early"), 1);
            await new Promise((resolve) => setTimeout(resolve, 40));
            let ticks = 0;
            await new Promise((resolve) => {
                const id = setInterval(() => { if (++ticks === 3) { clearInterval(id); resolve(); } }, 5);
            });
            queueMicrotask(() => order.push("micro"));
            await null;
            return { order, ticks };
        }"#,
    )
    .await;
    assert_eq!(json(ok(&outcome)), serde_json::json!({"order": ["early", "late", "micro"], "ticks": 3}));
    assert!(started.elapsed() >= std::time::Duration::from_millis(55));
}

#[tokio::test]
async fn errors_in_timer_callbacks_are_logged() {
    let outcome = run_js(
        r#"export default async () => {
            setTimeout(() => { throw new Error("in a timer"); }, 1);
            await new Promise((r) => setTimeout(r, 20));
            return "done";
        }"#,
    )
    .await;
    ok(&outcome);
    let got = lines(&outcome);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "error");
    assert!(got[0].1.starts_with("Uncaught Error: in a timer"), "{}", got[0].1);
}
