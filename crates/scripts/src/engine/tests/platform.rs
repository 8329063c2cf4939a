//! The web platform's smaller globals: events and cancellation (fetch
//! aborted by a signal), `performance`, `structuredClone`, `Blob`, `File`
//! and `FormData` with multipart bodies in and out.

use std::sync::Arc;

use bytes::Bytes;

use super::*;

#[tokio::test]
async fn events_abort_signals_performance_and_structured_clone() {
    let outcome = run_js(
        r#"export default async () => {
            const target = new EventTarget();
            const seen = [];
            const listener = (e) => seen.push(`${e.type}:${e.target === target}`);
            target.addEventListener("ping", listener);
            target.addEventListener("ping", listener); // once only
            target.addEventListener("ping", () => seen.push("once"), { once: true });
            target.dispatchEvent(new Event("ping"));
            target.dispatchEvent(new Event("ping"));
            target.removeEventListener("ping", listener);
            target.dispatchEvent(new Event("ping"));
            const cancel = new Event("x", { cancelable: true });
            target.addEventListener("x", (e) => e.preventDefault());
            const notCancelled = target.dispatchEvent(cancel);

            const controller = new AbortController();
            let reason = null;
            controller.signal.onabort = () => { reason = controller.signal.reason.name; };
            const before = controller.signal.aborted;
            controller.abort();
            let thrown = null;
            try { controller.signal.throwIfAborted(); } catch (e) { thrown = e.name; }
            const custom = AbortSignal.abort("because").reason;
            const timeout = AbortSignal.timeout(5);
            await new Promise((r) => setTimeout(r, 30));
            const any = AbortSignal.any([new AbortController().signal, timeout]);

            const t0 = performance.now();
            await new Promise((r) => setTimeout(r, 20));
            const elapsed = performance.now() - t0;

            const original = { when: new Date(0), list: [1, { deep: true }], map: new Map([["k", new Set([1])]]), bytes: new Uint8Array([1, 2]) };
            original.self = original;
            const copy = structuredClone(original);
            let fn = null;
            try { structuredClone({ f() {} }); } catch (e) { fn = e.name; }
            return {
                seen, notCancelled, before, reason, thrown, custom,
                timeout: [timeout.aborted, timeout.reason.name], any: [any.aborted, any.reason.name],
                elapsedOk: elapsed >= 15 && elapsed < 5000, origin: typeof performance.timeOrigin,
                clone: [copy !== original, copy.self === copy, copy.when.getTime(), copy.list[1].deep,
                        copy.map.get("k").has(1), copy.bytes[1], copy.bytes.buffer !== original.bytes.buffer],
                fn,
            };
        };"#,
    )
    .await;
    assert_eq!(
        json(ok(&outcome)),
        serde_json::json!({
            "seen": ["ping:true", "once", "ping:true"], "notCancelled": false, "before": false,
            "reason": "AbortError", "thrown": "AbortError", "custom": "because",
            "timeout": [true, "TimeoutError"], "any": [true, "TimeoutError"],
            "elapsedOk": true, "origin": "number",
            "clone": [true, true, 0, true, true, 2, true],
            "fn": "DataCloneError",
        })
    );
}

#[tokio::test]
async fn an_aborted_fetch_rejects_with_the_signals_reason() {
    let host = Arc::new(NeverAnswers::default());
    let mut inv = invocation(
        r#"export default async () => {
            const early = new AbortController();
            early.abort();
            let before = null;
            try { await fetch("https://api.example.com/", { signal: early.signal }); } catch (e) { before = e.name; }
            let later = null;
            try { await fetch("https://api.example.com/slow", { signal: AbortSignal.timeout(20) }); } catch (e) { later = e.name; }
            return { before, later };
        };"#,
    );
    inv.host = host.clone();
    let outcome = run(inv).await;
    assert_eq!(json(ok(&outcome)), serde_json::json!({"before": "AbortError", "later": "TimeoutError"}));
    // The signal aborted before the call: it never reached the host; the
    // later one did (and was given up on).
    assert_eq!(host.0.load(std::sync::atomic::Ordering::Relaxed), 1);
}

#[tokio::test]
async fn blobs_files_and_forms_round_trip_as_multipart() {
    let outcome = run_js(
        r#"export default async () => {
            const blob = new Blob(["héllo ", new Uint8Array([119, 111]), new Blob(["rld"])], { type: "Text/Plain" });
            const part = blob.slice(-5, -2);
            const file = new File(["a,b\n1,2\n"], "data.csv", { type: "text/csv", lastModified: 7 });
            const form = new FormData();
            form.append("name", "Ada \"Lovelace\"");
            form.append("upload", file);
            form.append("raw", new Blob([new Uint8Array([0, 255])]), "bytes.bin");
            form.append("tag", "a");
            form.append("tag", "b");
            form.set("name", "Ada");
            const request = new Request("https://x.example/", { method: "POST", body: form });
            const type = request.headers.get("content-type");
            const back = await request.formData();
            const upload = back.get("upload");
            const raw = back.get("raw");
            const urlencoded = await new Response("a=1&b=two+words", { headers: { "content-type": "application/x-www-form-urlencoded" } }).formData();
            let notAForm = null;
            try { await new Response("{}").formData(); } catch (e) { notAForm = e.name; }
            return {
                size: blob.size, type: blob.type, text: await blob.text(), part: await part.text(),
                file: [file.name, file.type, file.lastModified, file instanceof Blob],
                multipart: type.startsWith("multipart/form-data; boundary="),
                names: [...back.keys()], name: back.get("name"), tags: back.getAll("tag"),
                upload: [upload.name, upload.type, await upload.text()],
                raw: [raw.name, [...new Uint8Array(await raw.arrayBuffer())]],
                urlencoded: [urlencoded.get("a"), urlencoded.get("b")], notAForm,
                blobBody: (await new Response(new Blob(["x"], { type: "image/png" })).headers.get("content-type")),
            };
        };"#,
    )
    .await;
    assert_eq!(
        json(ok(&outcome)),
        serde_json::json!({
            "size": 12, "type": "text/plain", "text": "héllo world", "part": "wor",
            "file": ["data.csv", "text/csv", 7, true], "multipart": true,
            "names": ["name", "upload", "raw", "tag", "tag"], "name": "Ada", "tags": ["a", "b"],
            "upload": ["data.csv", "text/csv", "a,b\n1,2\n"], "raw": ["bytes.bin", [0, 255]],
            "urlencoded": ["1", "two words"], "notAForm": "TypeError", "blobBody": "image/png",
        })
    );
}

#[tokio::test]
async fn a_multipart_upload_from_a_browser_is_read_as_a_form() {
    // What curl -F sends (a browser's form is the same shape).
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nQ3 report\r\n\
                --XyZ\r\nContent-Disposition: form-data; name=\"doc\"; filename=\"r.txt\"\r\nContent-Type: text/plain\r\n\r\nline 1\r\nline 2\r\n\
                --XyZ--\r\n";
    let mut inv = invocation(
        r#"export default async (req) => {
            const form = await req.formData();
            const doc = form.get("doc");
            return { title: form.get("title"), doc: [doc.name, doc.type, await doc.text()] };
        };"#,
    );
    inv.request.method = "POST".into();
    inv.request.headers.push(("Content-Type".into(), "multipart/form-data; boundary=XyZ".into()));
    inv.request.body = Bytes::from(body);
    let outcome = run(inv).await;
    assert_eq!(
        json(ok(&outcome)),
        serde_json::json!({"title": "Q3 report", "doc": ["r.txt", "text/plain", "line 1\r\nline 2"]})
    );
}
