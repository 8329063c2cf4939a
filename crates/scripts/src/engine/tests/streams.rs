//! Streams: ReadableStream, WritableStream and TransformStream as code
//! written for Workers uses them (readers, async iteration, tee, pipes,
//! text streams), stream bodies read whole, and a handler that answers with
//! a stream: its head comes back while the script still runs, then its
//! chunks as it makes them.

use std::time::Duration;

use super::*;

#[tokio::test]
async fn readable_writable_and_transform_streams_behave_as_on_the_web() {
    let outcome = run_js(
        r#"export default async () => {
            const out = {};
            let pulls = 0;
            const counting = new ReadableStream({
                pull(c) { pulls++; if (pulls > 3) c.close(); else c.enqueue(pulls); },
            });
            out.iterated = [];
            for await (const n of counting) out.iterated.push(n);

            const [a, b] = ReadableStream.from(["x", "y"]).tee();
            out.tee = [await Array.fromAsync(a), await Array.fromAsync(b)];

            const upper = new TransformStream({ transform(chunk, c) { c.enqueue(chunk.toUpperCase()); }, flush(c) { c.enqueue("!"); } });
            const written = [];
            await ReadableStream.from(["a", "b"]).pipeThrough(upper).pipeTo(new WritableStream({ write(chunk) { written.push(chunk); } }));
            out.piped = written;

            // A multi-byte character split across chunks comes out whole.
            const euro = new TextEncoder().encode("€uro");
            const text = ReadableStream.from([euro.slice(0, 2), euro.slice(2)]).pipeThrough(new TextDecoderStream());
            out.decoded = (await Array.fromAsync(text)).join("");
            const bytes = ReadableStream.from(["hé"]).pipeThrough(new TextEncoderStream());
            out.encoded = [...(await Array.fromAsync(bytes))[0]];

            const failing = new ReadableStream({ start(c) { c.enqueue(1); c.error(new Error("boom")); } });
            const reader = failing.getReader();
            try { await reader.read(); out.errored = "read"; } catch (e) { out.errored = e.message; }

            let cancelled = null;
            const cancellable = new ReadableStream({ cancel(reason) { cancelled = reason; } });
            await cancellable.cancel("enough");
            out.cancelled = cancelled;
            out.locked = (() => { const s = new ReadableStream(); s.getReader(); try { s.getReader(); return "twice"; } catch (e) { return e.name; } })();
            try { new ReadableStream({ type: "bytes" }); out.bytes = "made"; } catch (e) { out.bytes = e.name; }

            // Iteration to the end lets go of the stream; promises from a
            // sync iterable are awaited; a cancelled transform fails writes.
            const done = ReadableStream.from([Promise.resolve("p")]);
            out.awaited = await Array.fromAsync(done);
            out.unlocked = !done.locked;
            const t = new TransformStream();
            const writer = t.writable.getWriter();
            await t.readable.cancel(new Error("no reader"));
            try { await writer.write("x"); out.afterCancel = "written"; } catch (e) { out.afterCancel = e.message; }
            return out;
        }"#,
    )
    .await;
    let v = json(ok(&outcome));
    assert_eq!(v["iterated"], serde_json::json!([1, 2, 3]), "{v}");
    assert_eq!(v["tee"], serde_json::json!([["x", "y"], ["x", "y"]]));
    assert_eq!(v["piped"], serde_json::json!(["A", "B", "!"]));
    assert_eq!(v["decoded"], "€uro");
    assert_eq!(v["encoded"], serde_json::json!([104, 195, 169]));
    assert_eq!(v["errored"], "boom", "an errored stream rejects its reads");
    assert_eq!(v["cancelled"], "enough");
    assert_eq!((v["locked"].as_str(), v["bytes"].as_str()), (Some("TypeError"), Some("TypeError")));
    assert_eq!((&v["awaited"], &v["unlocked"]), (&serde_json::json!(["p"]), &serde_json::json!(true)), "{v}");
    assert_eq!(v["afterCancel"], "no reader", "{v}");
}

#[tokio::test]
async fn bodies_are_streams_and_streams_are_bodies() {
    let mut inv = invocation(
        r#"export default async (request) => {
            const chunks = [];
            for await (const chunk of request.body) chunks.push(new TextDecoder().decode(chunk));
            const made = new Response(ReadableStream.from([new TextEncoder().encode("one "), new TextEncoder().encode("two")]));
            const copy = made.clone();
            const whole = new Response("whole");
            const peeked = (await whole.body.getReader().read()).value.length;
            return { request: chunks.join(""), text: await made.text(), copy: await copy.text(),
                     bodyOfBytes: peeked, stillBytes: await whole.text() };
        }"#,
    );
    inv.request.method = "POST".into();
    inv.request.body = bytes::Bytes::from_static(b"posted body");
    let v = json(ok(&run(inv).await));
    assert_eq!(
        v,
        serde_json::json!({"request": "posted body", "text": "one two", "copy": "one two", "bodyOfBytes": 5, "stillBytes": "whole"})
    );
}

#[tokio::test]
async fn a_streamed_answer_arrives_while_the_script_still_runs() {
    // The script sends one event, then waits far longer than the test: only
    // a streamed answer lets the test read the event.
    let mut inv = invocation(
        r#"export default () => {
            const encoder = new TextEncoder();
            let step = 0;
            const body = new ReadableStream({
                async pull(c) {
                    step++;
                    if (step === 1) c.enqueue(encoder.encode("data: first\n\n"));
                    else if (step === 2) { await new Promise((r) => setTimeout(r, 20)); c.enqueue(encoder.encode("data: second\n\n")); }
                    else { await new Promise((r) => setTimeout(r, 600000)); c.close(); }
                },
            });
            return new Response(body, { headers: { "content-type": "text/event-stream" } });
        }"#,
    );
    inv.limits.timeout = Duration::from_secs(600);
    let outcome = tokio::time::timeout(Duration::from_secs(60), run(inv)).await.expect("the head comes before the end");
    let mut response = outcome.result.expect("a response");
    assert_eq!((response.status, header(&response, "content-type")), (200, Some("text/event-stream")));
    let stream = response.stream.as_mut().expect("a streamed body");
    assert_eq!(stream.next().await.as_deref(), Some(&b"data: first\n\n"[..]));
    assert_eq!(stream.next().await.as_deref(), Some(&b"data: second\n\n"[..]));
    // Dropping the stream (the client went away) stops the script: the
    // test ends instead of waiting ten minutes for it.
    drop(response);
}

#[tokio::test]
async fn a_streamed_answer_ends_at_the_size_limit_and_on_a_bad_chunk() {
    for (source, expected) in [
        (
            "export default () => new Response(new ReadableStream({ pull(c) { c.enqueue(new Uint8Array(1024)); } }));",
            64 * 1024,
        ),
        (
            "export default () => new Response(ReadableStream.from([new Uint8Array(3), 'not bytes', new Uint8Array(5)]));",
            3,
        ),
    ] {
        let mut inv = invocation(source);
        inv.limits.max_response_bytes = 64 * 1024;
        let mut response = run(inv).await.result.expect("a head");
        let stream = response.stream.as_mut().expect("a streamed body");
        let mut total = 0;
        while let Some(chunk) = tokio::time::timeout(Duration::from_secs(60), stream.next()).await.expect("it ends") {
            total += chunk.len();
        }
        assert_eq!(total, expected, "{source}");
    }
}
