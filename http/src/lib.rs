//! The HTTP server loop every SirsiNexus listener uses (the edge ingress, the coordinator API):
//! HTTP/1.1 and HTTP/2 on one port, a cap on concurrent connections, a cap on the header
//! section and a time limit to receive it, TLS when configured (the peer's certificates in
//! every request's extensions), and a graceful shutdown that lets in-flight requests finish.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::service::Service;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use rustls_pki_types::CertificateDer;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;

/// The multi-threaded runtime every SirsiNexus server runs on (a worker per core it may use).
///
/// Tokio's LIFO slot runs a task woken by the running task next, ahead of the run queue and of
/// the I/O driver. With it, one core served about half the requests at 32 connections, at a
/// higher p99 (`hello`, `make bench`). Turning it off needs `tokio_unstable` (set in
/// `.cargo/config.toml`); a build without that flag keeps the slot.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    #[cfg(tokio_unstable)]
    builder.disable_lifo_slot();
    builder.build()
}

/// Connections served at once by default; further clients wait in the listen backlog.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Time allowed by default to receive a request's headers.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest header section accepted by default.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;

/// The limits of a listener.
#[derive(Debug, Clone)]
pub struct ServerLimits {
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Time allowed to receive a request's headers.
    pub header_read_timeout: Duration,
    /// Largest header section accepted.
    pub max_header_bytes: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
        }
    }
}

/// The certificates the client presented on a TLS connection, leaf first; in the extensions
/// of every request it sends.
#[derive(Debug, Clone)]
pub struct PeerCertificates(pub Arc<[CertificateDer<'static>]>);

/// Serves connections from `listener` with the service `make_service` makes for each client,
/// until `shutdown` resolves; then waits for in-flight requests.
pub async fn serve<S, B>(
    listener: TcpListener,
    limits: &ServerLimits,
    shutdown: impl Future<Output = ()>,
    make_service: impl FnMut(SocketAddr) -> S,
) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    serve_with(listener, limits, None, shutdown, make_service).await
}

/// [`serve`], over TLS when `tls` is given: the handshake has the header timeout to finish, and
/// a client whose handshake fails (a plain-TCP client, a refused certificate) is dropped.
pub async fn serve_with<S, B>(
    listener: TcpListener,
    limits: &ServerLimits,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()>,
    mut make_service: impl FnMut(SocketAddr) -> S,
) -> std::io::Result<()>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connections = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_buf_size(limits.max_header_bytes.max(8192));
    builder
        .http2()
        .max_header_list_size(u32::try_from(limits.max_header_bytes).unwrap_or(u32::MAX));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            () = &mut shutdown => break,
            permit = Arc::clone(&connections).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_closed) => break,
            },
        };
        let (stream, client) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        // Small responses must not wait for Nagle's algorithm.
        let _ = stream.set_nodelay(true);
        let (service, builder, watcher) =
            (make_service(client), builder.clone(), graceful.watcher());
        let (tls, handshake_timeout) = (tls.clone(), limits.header_read_timeout);
        tokio::spawn(async move {
            let served =
                match tls {
                    None => {
                        let connection =
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        watcher.watch(connection.into_owned()).await
                    }
                    Some(acceptor) => {
                        let stream =
                            match tokio::time::timeout(handshake_timeout, acceptor.accept(stream))
                                .await
                            {
                                Ok(Ok(stream)) => stream,
                                Ok(Err(error)) => {
                                    tracing::info!(%client, %error, "TLS handshake refused");
                                    return;
                                }
                                Err(_) => {
                                    tracing::info!(%client, "TLS handshake timed out");
                                    return;
                                }
                            };
                        let peer = stream.get_ref().1.peer_certificates().map(|certificates| {
                            PeerCertificates(
                                certificates
                                    .iter()
                                    .map(|certificate| certificate.clone().into_owned())
                                    .collect(),
                            )
                        });
                        let service = WithPeer { service, peer };
                        let connection =
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        watcher.watch(connection.into_owned()).await
                    }
                };
            if let Err(error) = served {
                tracing::debug!(%client, error = %error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    graceful.shutdown().await;
    Ok(())
}

/// Puts the client's certificates into each request.
struct WithPeer<S> {
    service: S,
    peer: Option<PeerCertificates>,
}

impl<S> Service<Request<Incoming>> for WithPeer<S>
where
    S: Service<Request<Incoming>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn call(&self, mut request: Request<Incoming>) -> Self::Future {
        if let Some(peer) = &self.peer {
            request.extensions_mut().insert(peer.clone());
        }
        self.service.call(request)
    }
}
