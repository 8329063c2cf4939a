//! cubby-demo: the demo web app of Cubby's built-in `minimal` image.
//!
//! Owns startup: configuration from the environment, the SQLite visit
//! counter, and the HTTP listener on 0.0.0.0:$PORT (axum on a
//! single-threaded tokio runtime: small, and every connection is served
//! however many arrive at once). Routes live in `routes`. SIGTERM keeps its
//! default disposition (terminate): no handler is installed and it is
//! unblocked at startup, so the process exits promptly.

mod config;
mod db;
mod error;
mod routes;

use std::net::SocketAddr;
use std::sync::Arc;

use nix::sys::signal::{SigSet, Signal};

use crate::config::Config;
use crate::db::VisitCounter;
use crate::error::DemoError;
use crate::routes::App;

fn main() {
    if let Err(err) = run() {
        let mut message = err.to_string();
        let mut source = std::error::Error::source(&err);
        while let Some(cause) = source {
            message.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        eprintln!("cubby-demo: {message}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), DemoError> {
    // Unblock before any thread exists so every thread inherits the mask.
    let mut term = SigSet::empty();
    term.add(Signal::SIGTERM);
    term.add(Signal::SIGINT);
    // Failure only means the mask stays as inherited; nothing to recover.
    let _ = term.thread_unblock();

    let config = Config::from_env()?;
    let counter = VisitCounter::open(&config.db_path)?;
    let addr = SocketAddr::from(([0, 0, 0, 0], config.port));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .max_blocking_threads(4)
        .build()
        .map_err(|source| DemoError::Runtime { source })?;
    runtime.block_on(async move {
        let listener =
            tokio::net::TcpListener::bind(addr).await.map_err(|err| DemoError::Bind { addr, source: err })?;
        let app = Arc::new(App { counter, greeting: config.greeting, port: config.port });
        eprintln!("cubby-demo: listening on {addr} (pid {}, db {})", std::process::id(), config.db_path.display());
        axum::serve(listener, routes::router(app)).await.map_err(|err| DemoError::Bind { addr, source: err })
    })
}
