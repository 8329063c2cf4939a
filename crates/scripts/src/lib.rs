//! Exec scripts: runs one HTTP request through a project's JavaScript or
//! TypeScript handler, like a tiny Deno Deploy or Cloudflare Worker.
//!
//! The daemon stores the files, routes URLs to them, checks `@token`,
//! enforces `@concurrent` and keeps logs and secrets. This crate provides
//! the pieces, with plain types and no HTTP stack:
//!
//! - [`parse_magic`]: the `// @timeout`, `@token`, `@cors`, `@concurrent`, `@on`
//!   header of a script.
//! - [`strip_types`]: TypeScript to JavaScript (the caller caches it per
//!   file version).
//! - [`run`]: one request through one script, answering an [`Outcome`]
//!   (response or [`ScriptError`], plus the `console` log).
//! - [`ScriptHost`]: the daemon's side of `ctx.cubby` and `fetch`, with
//!   [`HttpFetcher`] as the real `fetch` (refusing the daemon's host and its
//!   containers) and [`FakeHost`] for tests.
//!
//! # Design
//!
//! - **Fresh runtime per call.** Every [`run`] makes a new QuickJS runtime
//!   and context and frees them at the end: no state is shared between
//!   requests, and a script that corrupts its globals hurts only itself.
//! - **JavaScript off the async workers.** [`run`] hands the invocation to
//!   a thread of its own (4 MiB stack, QuickJS held to 1 MiB of it), which
//!   drives the script's async work with `Handle::block_on` on the caller's
//!   runtime. A busy loop blocks that thread only; host futures (`fetch`,
//!   `ctx.cubby`, timers) are polled there too and use the runtime's I/O
//!   and timers. One thread per in-flight call: the daemon bounds how many
//!   calls it runs at once.
//! - **Limits.** Memory: the runtime allocates through a counting
//!   allocator that refuses past the limit ([`ScriptError::OutOfMemory`];
//!   it also tells QuickJS's "threw `null` because even the error object
//!   did not fit" apart from a script throwing `null`). Time: an interrupt
//!   handler that stops JavaScript at the deadline (for busy loops) and a
//!   `tokio::time::timeout_at` around the async part (for promises that
//!   never settle and slow fetches), both [`ScriptError::Timeout`].
//!   Response and log sizes are capped. Dropping the [`run`] future stops
//!   the script too.
//! - **A small native surface.** The Web-like API (`Request`, `Response`,
//!   `Headers`, `fetch`, `URL`, `console`, `crypto`, timers, `ctx.cubby`)
//!   is a JavaScript prelude over a few Rust natives that take and return
//!   strings and byte arrays; the natives are never reachable from
//!   `globalThis`. The prelude is compiled to bytecode once per process and
//!   loaded into each context (about 0.15 ms instead of 1.3 ms to parse).
//! - **Imports from the project only.** A script may `import` other files
//!   of its project's `scripts/` (relative paths, ES modules; see
//!   [`modules`]); packages are bundled into one file beforehand. Each
//!   module is compiled to bytecode on its first run and loaded from it
//!   after, while its file is unchanged.
//!
//! # Crates
//!
//! - `rquickjs`: safe bindings to QuickJS-ng, a small embeddable engine
//!   with a memory limit, an interrupt hook and cheap (sub-millisecond)
//!   runtimes, so one per request is affordable.
//! - `oxc`: a maintained, fast TypeScript parser and transformer in Rust,
//!   so type stripping needs neither Node nor a parser of our own.
//! - `reqwest` (rustls, no system proxy): a complete HTTP client with
//!   pluggable DNS resolution and redirect policy, the two hooks the
//!   destination checks need.

mod engine;
mod fake;
mod fetch;
mod host;
mod magic;
pub mod modules;
mod typescript;

pub use engine::{Invocation, Limits, LogLine, Outcome, ScriptError, ScriptRequest, ScriptResponse, run};
pub use fake::{CubbyCall, FakeHost};
pub use fetch::{Destinations, FetchError, HttpFetcher, MAX_FETCH_BODY, MAX_REDIRECTS, default_blocked};
pub use host::{AnswerRoom, CubbyCallError, FetchRequest, FetchResponse, ScriptHost};
pub use magic::{MAX_ON_EVENTS, MAX_TIMEOUT_MS, Magic, MagicError, MagicProblem, parse_magic};
pub use modules::{MapModules, ModuleCode, ModuleSource, NoModules};
pub use typescript::{TranspileError, TranspileProblem, strip_types};
