//! Engine tests with real QuickJS: `basics` (requests, responses, errors),
//! `services` (console, crypto, URL, timers, encodings), `host` (ctx.cubby
//! and fetch through FakeHost), `limits` (time, memory, isolation) and
//! `modules` (imports from the project's files).

mod basics;
mod host;
mod limits;
mod modules;
mod platform;
mod services;
mod signing;
mod streams;
mod webcrypto;
mod wpt_url;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;

use super::{Invocation, Limits, Outcome, ScriptRequest, ScriptResponse, run};
use crate::fake::FakeHost;

/// A host whose calls never answer; it counts the calls that reach it.
#[derive(Default)]
pub(super) struct NeverAnswers(pub(super) std::sync::atomic::AtomicUsize);

impl crate::ScriptHost for NeverAnswers {
    fn cubby(
        &self,
        _: &str,
        _: &str,
        _: Option<String>,
        _: crate::AnswerRoom,
    ) -> futures::future::BoxFuture<'static, Result<(u16, String), crate::CubbyCallError>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Box::pin(futures::future::pending())
    }

    fn fetch(
        &self,
        _: crate::FetchRequest,
    ) -> futures::future::BoxFuture<'static, Result<crate::FetchResponse, crate::FetchError>> {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Box::pin(futures::future::pending())
    }
}

/// An invocation of `source` with a GET request, default limits and a fresh
/// FakeHost.
pub(super) fn invocation(source: &str) -> Invocation {
    Invocation {
        module: crate::ModuleCode::new("test/handler.js", source),
        modules: Arc::new(crate::NoModules),
        request: ScriptRequest {
            method: "GET".to_owned(),
            url: "http://acme.exec.localhost:8080/hello?x=1&y=two%20words".to_owned(),
            headers: vec![
                ("Host".to_owned(), "acme.exec.localhost:8080".to_owned()),
                ("X-Custom".to_owned(), "a".to_owned()),
                ("x-custom".to_owned(), "b".to_owned()),
            ],
            body: Bytes::new(),
        },
        params: BTreeMap::new(),
        env: BTreeMap::new(),
        project: "p123".to_owned(),
        limits: Limits::default(),
        host: Arc::new(FakeHost::new()),
    }
}

/// Runs `source` with [`invocation`]'s defaults.
pub(super) async fn run_js(source: &str) -> Outcome {
    run(invocation(source)).await
}

/// The response of a run that must succeed.
pub(super) fn ok(outcome: &Outcome) -> &ScriptResponse {
    match &outcome.result {
        Ok(response) => response,
        Err(e) => panic!("expected a response, got {e:?}; logs: {:?}", outcome.logs),
    }
}

/// The body as UTF-8.
pub(super) fn text(response: &ScriptResponse) -> &str {
    std::str::from_utf8(&response.body).expect("utf-8 body")
}

/// The body as JSON.
pub(super) fn json(response: &ScriptResponse) -> serde_json::Value {
    serde_json::from_slice(&response.body).expect("JSON body")
}

/// The first value of header `name`.
pub(super) fn header<'a>(response: &'a ScriptResponse, name: &str) -> Option<&'a str> {
    response.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}
