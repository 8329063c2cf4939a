//! Fixtures for end-to-end tests and the bench: [`Daemon`] runs a real
//! `cubby serve` as root with a unique prefix, data dir, run dir and
//! subnet, and on drop stops it and purges everything it made, so tests can
//! run side by side and leave nothing behind.

mod daemon;
mod host;
mod http;
mod netns;

pub use daemon::{Daemon, DaemonOptions, own_session, require_root};
pub use host::{HostView, processes_mounting};
pub use http::{HttpResponse, http_get, http_request};
pub use netns::{Outcome, OutsideHost, in_netns, tcp_probe, udp_probe, udp_send};
