//! HTTP ingress: accepts connections, routes each request to a component as Spin does, and
//! returns the guest's response untouched.
//!
//! Modelled on `wasmtime serve`: a semaphore bounds connections, hyper serves HTTP/1.1 and
//! HTTP/2 with header-size and header-read-time limits, and shutdown is graceful (in-flight
//! requests finish, no new connections are accepted).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use nexus_runtime::{GuestBody, GuestResponse, LoadedApp, LocalDispatch};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::errors::EdgeError;
use crate::routing::{Router, full_url, spin_headers};

/// Default cap on open connections.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default time a client has to send a request's headers.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on the size of a request's header section.
pub const DEFAULT_MAX_HEADER_BYTES: usize = 64 * 1024;

/// Connection-level limits of the ingress.
#[derive(Debug, Clone)]
pub struct IngressConfig {
    /// Connections served at once; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Time allowed to receive a request's headers.
    pub header_read_timeout: Duration,
    /// Largest header section accepted.
    pub max_header_bytes: usize,
}

impl Default for IngressConfig {
    fn default() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
        }
    }
}

/// An app with its routes: what the ingress serves.
pub struct ServedApp {
    pub(crate) app: LoadedApp,
    pub(crate) router: Router,
    /// `host:port` the app is served on, for requests the app makes to itself.
    pub(crate) origin: OnceLock<Authority>,
}

impl ServedApp {
    /// Pairs a loaded app with the router built from the same record, and registers it as
    /// the app's handler for requests to itself.
    pub fn new(app: LoadedApp, router: Router) -> Arc<Self> {
        let served = Arc::new(Self {
            app,
            router,
            origin: OnceLock::new(),
        });
        let dispatcher: Weak<dyn LocalDispatch> =
            Arc::downgrade(&served) as Weak<dyn LocalDispatch>;
        served.app.set_local_dispatch(dispatcher);
        served
    }

    /// The router.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// Routes and runs one request. `client` is the peer address Spin reports in
    /// `spin-client-addr`.
    pub async fn handle(
        &self,
        request: Request<Incoming>,
        client: SocketAddr,
    ) -> Response<ResponseBody> {
        match self.route_and_run(request, client).await {
            Ok(response) => response.map(Either::Left),
            Err(error) => error
                .logged_response()
                .map(|body| Either::Right(Full::new(body))),
        }
    }

    pub(crate) async fn route_and_run<B>(
        &self,
        mut request: Request<B>,
        client: SocketAddr,
    ) -> Result<GuestResponse, EdgeError>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let path = request.uri().path();
        let matched = self
            .router
            .route(path)
            .ok_or_else(|| EdgeError::not_found(path))?;
        let handler = self
            .app
            .component(matched.component_id())
            .ok_or_else(|| EdgeError::not_found(path))?;
        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|host| host.to_str().ok());
        let path_and_query = request
            .uri()
            .path_and_query()
            .map_or("/", PathAndQuery::as_str);
        let routing_headers =
            spin_headers(&matched, &full_url("http", host, path_and_query), client);
        let uri = absolute_uri(&request)?;

        // Rebuilt rather than edited in place, as Spin's executors do, so the client's headers
        // keep their order (`HeaderMap::remove` moves the last name into the hole).
        let client_headers = std::mem::take(request.headers_mut());
        let headers = request.headers_mut();
        headers.reserve(client_headers.keys_len() + routing_headers.len());
        let mut kept_name = None;
        for (name, value) in client_headers {
            // Only a name's first value comes with the name. Clients must not be able to forge
            // the routing facts guests rely on, so their `spin-*` headers are dropped.
            if let Some(name) = name {
                kept_name = (!name.as_str().starts_with("spin-")).then_some(name);
            }
            if let Some(name) = &kept_name {
                headers.append(name.clone(), value);
            }
        }
        for (name, value) in routing_headers {
            headers.append(name, value);
        }
        *request.uri_mut() = uri;
        handler.handle(request).await.map_err(EdgeError::from)
    }
}

/// The response body: the guest's stream, or the edge's own error document.
pub type ResponseBody = Either<GuestBody, Full<Bytes>>;

/// `http://host/path?query` from the request-target and `Host`, as a guest expects to see it.
///
/// As Spin's `set_req_uri`: the scheme is the listener's (`http`) whatever an absolute-form
/// target says, the authority is the `Host` header or the target's, and a request whose `Host`
/// and target name different authorities is refused rather than shown to the guest.
fn absolute_uri<B>(request: &Request<B>) -> Result<Uri, EdgeError> {
    let host = request
        .headers()
        .get(http::header::HOST)
        .map(|host| {
            Authority::try_from(host.as_bytes())
                .map_err(|_| EdgeError::bad_request("invalid Host header"))
        })
        .transpose()?;
    let authority = match (host, request.uri().authority()) {
        (None, None) => return Err(EdgeError::bad_request("request has no Host header")),
        (Some(host), None) => host,
        (None, Some(target)) => target.clone(),
        (Some(host), Some(target)) if host == *target => host,
        (Some(_), Some(_)) => {
            return Err(EdgeError::bad_request(
                "the Host header does not match the authority of the request target",
            ));
        }
    };
    let path_and_query = request
        .uri()
        .path_and_query()
        .cloned()
        .unwrap_or_else(|| PathAndQuery::from_static("/"));
    Uri::builder()
        .scheme(Scheme::HTTP)
        .authority(authority)
        .path_and_query(path_and_query)
        .build()
        .map_err(|_| EdgeError::bad_request("invalid request target"))
}

/// Serves `app` on `listener` until `shutdown` resolves, then waits for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    app: Arc<ServedApp>,
    config: IngressConfig,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    if let Ok(address) = listener.local_addr()
        && let Ok(origin) = Authority::try_from(address.to_string())
    {
        let _ = app.origin.set(origin);
    }
    let connections = Arc::new(Semaphore::new(config.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout)
        .max_buf_size(config.max_header_bytes.max(8192));
    builder
        .http2()
        .max_header_list_size(u32::try_from(config.max_header_bytes).unwrap_or(u32::MAX));
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
        let app = Arc::clone(&app);
        let service = service_fn(move |request: Request<Incoming>| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(app.handle(request, client).await) }
        });
        let connection = builder
            .serve_connection(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%client, error = %error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    graceful.shutdown().await;
    Ok(())
}
