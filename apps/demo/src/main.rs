//! cubby-demo: the demo web app of Cubby's built-in `minimal` image.
//!
//! Owns startup: configuration from the environment, the SQLite visit
//! counter, the tiny_http listener on 0.0.0.0:$PORT and the worker threads.
//! Routes live in `routes` (plus `sse` and `ws`). SIGTERM keeps its default
//! disposition (terminate): no handler is installed and it is unblocked at
//! startup, so the process exits promptly.

mod config;
mod db;
mod error;
mod routes;
mod sse;
mod ws;

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use tiny_http::Server;

use crate::config::Config;
use crate::db::VisitCounter;
use crate::error::DemoError;
use crate::routes::App;

/// Threads pulling requests off the listener.
const WORKERS: usize = 4;

fn main() {
    if let Err(err) = run() {
        eprintln!("cubby-demo: {err}");
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
    let server = Server::http(addr).map_err(|err| DemoError::Bind { addr, reason: err.to_string() })?;
    let server = Arc::new(server);
    let app = Arc::new(App { counter, greeting: config.greeting, port: config.port });
    eprintln!("cubby-demo: listening on {addr} (pid {}, db {})", std::process::id(), config.db_path.display());

    let workers: Vec<_> = (0..WORKERS)
        .filter_map(|i| {
            let (server, app) = (Arc::clone(&server), Arc::clone(&app));
            thread::Builder::new()
                .name(format!("worker-{i}"))
                .spawn(move || serve(&server, &app))
                .map_err(|err| eprintln!("cubby-demo: cannot start worker {i}: {err}"))
                .ok()
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    Ok(())
}

fn serve(server: &Server, app: &App) {
    loop {
        match server.recv() {
            Ok(req) => routes::handle(app, req),
            Err(err) => {
                // Accept errors (e.g. out of fds) are transient; back off.
                eprintln!("cubby-demo: accept: {err}");
                thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
