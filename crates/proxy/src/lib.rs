//! Cubby's reverse proxy: the front door of every container URL.
//!
//! A request's `Host` names a container (`{label}.{domain}`); the
//! [`Resolver`] says where that container's app listens, or that it is
//! stopped or unknown. The proxy forwards over pooled keep-alive
//! connections, adds `X-Forwarded-*` headers, and answers 404 or 503 with a
//! clear message otherwise. It knows nothing about containers beyond the
//! [`Resolver`] seam.

mod error_page;
mod forward;
mod host;
mod server;

use std::net::SocketAddr;

pub use host::label_of;
pub use server::{Proxy, ProxyConfig};

/// Where a request for a label should go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// Forward to this address.
    Forward(SocketAddr),
    /// The container exists but is not running.
    Stopped { name: String },
    /// No container answers at this label.
    NotFound,
}

/// Looks up the target of a URL label (the host without the domain).
pub trait Resolver: Send + Sync + 'static {
    fn resolve(&self, label: &str) -> Resolution;
}
