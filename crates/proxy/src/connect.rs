//! Opening the proxy's connections to apps: from a socket the [`Resolver`]
//! hands over (made inside the container's network namespace), or from the
//! host. Either way with `TCP_NODELAY` and a bounded wait. The pool of the
//! upstream client and each client connection's [`Affinity`](crate::affinity)
//! keep the connections; this runs once per new one.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};

use crate::Resolver;

/// The upstream client's connector.
#[derive(Clone)]
pub(crate) struct Connector {
    resolver: Arc<dyn Resolver>,
    timeout: Duration,
}

impl Connector {
    pub(crate) fn new(resolver: Arc<dyn Resolver>, timeout: Duration) -> Self {
        Self { resolver, timeout }
    }

    /// A new connection to `addr`, within the connect timeout.
    pub(crate) async fn connect(&self, addr: SocketAddr) -> io::Result<TokioIo<TcpStream>> {
        match tokio::time::timeout(self.timeout, connect(Arc::clone(&self.resolver), addr)).await {
            Ok(stream) => Ok(TokioIo::new(stream?)),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("connecting to {addr} took longer than {} s", self.timeout.as_secs()),
            )),
        }
    }
}

/// Upstream URIs are built from socket addresses (`http://10.0.0.2:8080/`).
fn address_of(uri: &Uri) -> io::Result<SocketAddr> {
    uri.authority().and_then(|a| a.as_str().parse().ok()).ok_or_else(|| {
        io::Error::new(io::ErrorKind::InvalidInput, format!("upstream `{uri}` is not an address and port"))
    })
}

async fn connect(resolver: Arc<dyn Resolver>, addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = match resolver.upstream_socket(addr).await {
        Some(socket) => TcpSocket::from_std_stream(std::net::TcpStream::from(socket)).connect(addr).await?,
        None => TcpStream::connect(addr).await?,
    };
    stream.set_nodelay(true)?;
    Ok(stream)
}

impl tower_service::Service<Uri> for Connector {
    type Response = TokioIo<TcpStream>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TokioIo<TcpStream>>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = self.clone();
        Box::pin(async move { connector.connect(address_of(&uri)?).await })
    }
}

#[cfg(test)]
mod tests {
    use super::address_of;

    #[test]
    fn upstream_addresses_come_from_the_authority() {
        assert_eq!(address_of(&"http://10.0.0.2:8080/x".parse().unwrap()).unwrap(), "10.0.0.2:8080".parse().unwrap());
        assert_eq!(address_of(&"http://[::1]:80/".parse().unwrap()).unwrap(), "[::1]:80".parse().unwrap());
        assert!(address_of(&"http://example.com/".parse().unwrap()).is_err());
        assert!(address_of(&"/relative".parse().unwrap()).is_err());
    }
}
