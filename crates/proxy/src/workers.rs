//! The proxy's threads: one single-threaded runtime per worker, each with
//! its own listening socket on the same address (`SO_REUSEPORT`, so the
//! kernel spreads new connections over them) and its own upstream pool.
//!
//! This is nginx's model. A request and its upstream exchange stay on one
//! thread from accept to the last byte, so nothing waits for another
//! thread to be scheduled, and a thread preempted by the kernel holds up
//! only its own connections. A work-stealing runtime shared with the API
//! cannot promise either: on a busy 2-core host its p99 was ~4 ms above
//! nginx's with the same throughput.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpSocket;
use tokio::sync::watch;

use crate::server::{Proxy, ProxyConfig};
use crate::{Resolver, ScriptRunner};

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen for the proxy on {addr}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start proxy worker {worker}")]
    Thread {
        worker: usize,
        #[source]
        source: std::io::Error,
    },
}

/// Listening sockets, bound before the proxy can serve (so the daemon
/// knows its port early and no connection is refused meanwhile: they wait
/// in the backlog).
#[derive(Debug)]
pub struct Listeners {
    addr: SocketAddr,
    sockets: Vec<std::net::TcpListener>,
}

/// Running proxy workers.
#[derive(Debug)]
pub struct Workers {
    addr: SocketAddr,
    done: Vec<tokio::sync::oneshot::Receiver<()>>,
}

/// A listening socket that other workers may share.
fn listen(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = if addr.is_ipv4() { TcpSocket::new_v4()? } else { TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    // Converted to std here and back in the worker's runtime: a tokio
    // socket belongs to the runtime that registered it.
    socket.listen(1024)?.into_std()
}

impl Listeners {
    /// Binds `workers` sockets (at least one) to `addr`; port 0 picks one
    /// port for all. Must be called inside a tokio runtime.
    pub fn bind(addr: SocketAddr, workers: usize) -> Result<Self, StartError> {
        // A plain bind first, which fails while anything holds the port:
        // with `SO_REUSEPORT` alone, a second daemon on the same address
        // would join this one's group and take part of its connections
        // instead of failing to start.
        let probe = std::net::TcpListener::bind(addr).map_err(|source| StartError::Listen { addr, source })?;
        let addr = probe.local_addr().map_err(|source| StartError::Listen { addr, source })?;
        drop(probe);
        let mut sockets = Vec::new();
        for _ in 0..workers.max(1) {
            sockets.push(listen(addr).map_err(|source| StartError::Listen { addr, source })?);
        }
        Ok(Self { addr, sockets })
    }

    /// The address the sockets listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Workers {
    /// Serves each of `listeners` on its own thread until `shutdown` turns
    /// true; then each stops accepting and lets its open connections
    /// finish.
    ///
    /// The resolver and script runner are called on the worker threads;
    /// work they start that outlives a request belongs on the caller's
    /// runtime.
    pub fn start(
        listeners: Listeners,
        tls: Option<(Listeners, Arc<rustls::ServerConfig>)>,
        config: &ProxyConfig,
        resolver: &Arc<dyn Resolver>,
        scripts: Option<&Arc<dyn ScriptRunner>>,
        shutdown: &watch::Receiver<bool>,
    ) -> Result<Self, StartError> {
        let mut done = Vec::new();
        // Each worker serves one plain socket and, with TLS, one TLS socket.
        let (mut tls_sockets, acceptor) = match tls {
            Some((l, config)) => (l.sockets.into_iter(), Some(tokio_rustls::TlsAcceptor::from(config))),
            None => (Vec::new().into_iter(), None),
        };
        for (worker, listener) in listeners.sockets.into_iter().enumerate() {
            let tls_listener = tls_sockets.next();
            let acceptor = acceptor.clone();
            let (tx, rx) = tokio::sync::oneshot::channel();
            let proxy = Proxy::new(config.clone(), Arc::clone(resolver), scripts.cloned());
            let mut stop = shutdown.clone();
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|source| StartError::Thread { worker, source })?;
            std::thread::Builder::new()
                .name(format!("proxy-{worker}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        let mut tls_stop = stop.clone();
                        let plain = async {
                            match tokio::net::TcpListener::from_std(listener) {
                                Ok(listener) => {
                                    Arc::clone(&proxy)
                                        .serve(listener, None, async move {
                                            let _ = stop.wait_for(|stopped| *stopped).await;
                                        })
                                        .await;
                                }
                                Err(e) => tracing::error!(worker, error = %e, "proxy worker cannot use its socket"),
                            }
                        };
                        let secure = async {
                            let (Some(listener), Some(acceptor)) = (tls_listener, acceptor) else { return };
                            match tokio::net::TcpListener::from_std(listener) {
                                Ok(listener) => {
                                    Arc::clone(&proxy)
                                        .serve(listener, Some(acceptor), async move {
                                            let _ = tls_stop.wait_for(|stopped| *stopped).await;
                                        })
                                        .await;
                                }
                                Err(e) => tracing::error!(worker, error = %e, "proxy worker cannot use its TLS socket"),
                            }
                        };
                        tokio::join!(plain, secure);
                    });
                    let _ = tx.send(());
                })
                .map_err(|source| StartError::Thread { worker, source })?;
            done.push(rx);
        }
        Ok(Self { addr: listeners.addr, done })
    }

    /// The address the workers listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until every worker has finished.
    pub async fn wait(self) {
        for rx in self.done {
            let _ = rx.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Listeners;

    #[tokio::test]
    async fn a_second_group_cannot_share_the_port() {
        let first = Listeners::bind("127.0.0.1:0".parse().unwrap(), 3).unwrap();
        assert_eq!(first.sockets.len(), 3);
        assert!(first.sockets.iter().all(|s| s.local_addr().unwrap() == first.local_addr()));
        // Another daemon (or anything else) asking for the same address is refused.
        assert!(Listeners::bind(first.local_addr(), 2).is_err());
        assert!(std::net::TcpListener::bind(first.local_addr()).is_err());
    }
}
