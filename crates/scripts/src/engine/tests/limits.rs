//! Time and memory limits, and isolation between runs.

use std::time::{Duration, Instant};

use super::*;
use crate::ScriptError;

fn with_timeout(source: &str, timeout: Duration) -> Invocation {
    let mut inv = invocation(source);
    inv.limits.timeout = timeout;
    inv
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_loop_times_out_while_others_complete() {
    let limit = Duration::from_millis(200);
    let busy =
        tokio::spawn(run(with_timeout("export default () => { console.log('spinning'); while (true) {} };", limit)));
    // Give the busy loop a head start, then run a normal script beside it.
    tokio::time::sleep(Duration::from_millis(20)).await;
    let started = Instant::now();
    let normal =
        run_js("export default async () => { await new Promise((r) => setTimeout(r, 10)); return 'fine'; };").await;
    assert_eq!(text(ok(&normal)), "\"fine\"");
    assert!(
        started.elapsed() < Duration::from_millis(150),
        "the normal run waited for the busy one: {:?}",
        started.elapsed()
    );

    let outcome = busy.await.unwrap();
    assert_eq!(outcome.result, Err(ScriptError::Timeout { limit }));
    assert_eq!(outcome.logs.len(), 1);
    assert!(outcome.duration >= limit);
    assert!(outcome.duration < limit + Duration::from_millis(500), "{:?}", outcome.duration);
    assert!(ScriptError::Timeout { limit }.to_string().contains("time limit of 200 ms"));
}

#[tokio::test]
async fn busy_loops_in_odd_places_time_out() {
    let limit = Duration::from_millis(100);
    for source in [
        // At module evaluation.
        "while (true) {}\nexport default () => 1;",
        // In a promise job.
        "export default async () => { await null; for (;;) {} };",
        // In a timer callback.
        "export default () => new Promise(() => setTimeout(() => { for (;;) {} }, 1));",
        // Catching the interrupt does not help.
        "export default () => { for (;;) { try { while (true) {} } catch (e) {} } };",
        // Neither does a regex.
        "export default () => /(a+)+b/.test('a'.repeat(40));",
    ] {
        let outcome = run(with_timeout(source, limit)).await;
        assert_eq!(outcome.result, Err(ScriptError::Timeout { limit }), "{source}");
    }
}

#[tokio::test]
async fn never_settling_promise_times_out() {
    let limit = Duration::from_millis(150);
    let outcome = run(with_timeout("export default () => new Promise(() => {});", limit)).await;
    assert_eq!(outcome.result, Err(ScriptError::Timeout { limit }));
    let outcome =
        run(with_timeout("export default async () => { await new Promise((r) => setTimeout(r, 60_000)); };", limit))
            .await;
    assert_eq!(outcome.result, Err(ScriptError::Timeout { limit }));
    assert!(outcome.duration < Duration::from_secs(2));
}

#[tokio::test]
async fn memory_bomb_is_out_of_memory() {
    let limit = 16 * 1024 * 1024;
    for source in [
        r#"export default () => { let a = []; while (true) a.push("x".repeat(1e6)); };"#,
        r#"export default () => { let a = []; while (true) a.push({ n: a.length, s: "y" + a.length }); };"#,
        r#"const a = []; while (true) a.push(new Uint8Array(1 << 20));
export default () => a.length;"#,
        r#"export default () => { const a = []; while (true) a.push(new Array(1e5).fill(a.length)); };"#,
    ] {
        let mut inv = invocation(source);
        inv.limits.memory_bytes = limit;
        let outcome = run(inv).await;
        assert_eq!(outcome.result, Err(ScriptError::OutOfMemory { limit }), "{source}");
    }
    // A script may catch the failed allocation and carry on.
    let mut inv = invocation(
        r#"export default () => {
            try { let a = []; while (true) a.push("x".repeat(1e6)); } catch (e) { return `caught ${e.message}`; }
        };"#,
    );
    inv.limits.memory_bytes = limit;
    assert_eq!(text(ok(&run(inv).await)), "\"caught out of memory\"");
    // And the next run is unaffected.
    assert_eq!(text(ok(&run_js("export default () => 1;").await)), "1");
}

#[tokio::test]
async fn error_messages_show_sizes() {
    assert_eq!(
        ScriptError::OutOfMemory { limit: 16 << 20 }.to_string(),
        "the script used more than its memory limit of 16 MiB; keep less data in memory"
    );
    assert!(ScriptError::ResponseTooLarge { limit: 1000 }.to_string().contains("limit of 1000 bytes"));
    assert!(ScriptError::ResponseTooLarge { limit: 64 << 10 }.to_string().contains("limit of 64 KiB"));
}

#[tokio::test]
async fn abandoned_work_is_freed_with_the_runtime() {
    // The handler answers while a fetch, a cubby call, timers and pending
    // promises are still alive; all of it goes with the runtime.
    let mut inv = invocation(
        r#"export default async (request, ctx) => {
            globalThis.keep = [fetch("https://slow.example.com/"), ctx.cubby.project.get(), new Promise(() => {})];
            setTimeout(() => console.log("never"), 10_000);
            setInterval(() => {}, 5);
            await new Promise((r) => setTimeout(r, 20));
            return "answered";
        }"#,
    );
    inv.host = Arc::new(NeverAnswers::default());
    let outcome = run(inv).await;
    assert_eq!(text(ok(&outcome)), "\"answered\"");
    // Same, cut by the timeout instead.
    let mut inv = with_timeout(
        "export default async (r, ctx) => { await Promise.all([fetch('https://slow.example.com/'), ctx.cubby.project.get()]); };",
        Duration::from_millis(100),
    );
    inv.host = Arc::new(NeverAnswers::default());
    let outcome = run(inv).await;
    assert_eq!(outcome.result, Err(ScriptError::Timeout { limit: Duration::from_millis(100) }));
    // And a timeout too large to add to now is no crash.
    let inv = with_timeout("export default () => 1;", Duration::MAX);
    assert_eq!(text(ok(&run(inv).await)), "1");
}

#[tokio::test]
async fn deep_recursion_is_an_exception() {
    let outcome = run_js("function f(n) { return f(n + 1) + 1; }\nexport default () => f(0);").await;
    match &outcome.result {
        Err(ScriptError::Exception { message, .. }) => {
            assert!(message.contains("stack"), "{message}");
        }
        other => panic!("expected a stack overflow exception, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_call_stops_the_script() {
    // A script that would spin for 10 s; the caller gives up after 50 ms.
    let inv = with_timeout("export default () => { while (true) {} };", Duration::from_secs(10));
    let gave_up = tokio::time::timeout(Duration::from_millis(50), run(inv)).await;
    assert!(gave_up.is_err());
    // The thread notices at its next interrupt check; nothing observable is
    // left but a free CPU, so check that another run is prompt.
    let started = Instant::now();
    ok(&run_js("export default () => 1;").await);
    assert!(started.elapsed() < Duration::from_secs(1));
}

#[test]
fn run_outside_tokio_is_an_internal_error() {
    let outcome = futures::executor::block_on(run(invocation("export default () => 1;")));
    assert!(
        matches!(&outcome.result, Err(ScriptError::Internal { message }) if message.contains("tokio")),
        "{:?}",
        outcome.result
    );
}

/// Per-call overhead of a hello-world run: median of 200 sequential calls.
/// Run in release for meaningful numbers:
/// `cargo test -p cubby-scripts --release hello_world_overhead -- --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hello_world_overhead() {
    let source = "export default () => ({ hello: 'world' });";
    let mut times = Vec::with_capacity(200);
    for _ in 0..200 {
        let started = Instant::now();
        let outcome = run_js(source).await;
        times.push(started.elapsed());
        ok(&outcome);
    }
    times.sort();
    println!(
        "hello-world run: median {:?}, p90 {:?}, min {:?}, max {:?} over {} calls",
        times[times.len() / 2],
        times[times.len() * 9 / 10],
        times[0],
        times[times.len() - 1],
        times.len()
    );
}
