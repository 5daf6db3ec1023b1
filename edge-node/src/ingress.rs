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

use bytes::Bytes;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{HeaderName, HeaderValue, Request, Response, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use nexus_runtime::{GuestBody, GuestResponse, LoadedApp, LocalDispatch};
use tokio::net::TcpListener;

use crate::errors::EdgeError;
use crate::routing::{Router, full_url, spin_headers};

/// The ingress listener's limits.
pub type IngressConfig = nexus_http::ServerLimits;

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
        match self.route_and_run(request, client, "").await {
            Ok(response) => response.map(Either::Left),
            Err(error) => error
                .logged_response()
                .map(|body| Either::Right(Full::new(body))),
        }
    }

    /// Routes and runs one request for the app mounted at `prefix` (`""` for the root, else
    /// `/segment…` without a trailing slash).
    ///
    /// A mounted app sees itself at the root, exactly as under `spin up`: the prefix is
    /// stripped from the request path before routing and from the URI the guest gets, and is
    /// passed in `x-forwarded-prefix` (as proxies that strip a prefix do). `spin-full-url` is
    /// the URL the client asked for, prefix included.
    pub async fn route_and_run<B>(
        &self,
        mut request: Request<B>,
        client: SocketAddr,
        prefix: &str,
    ) -> Result<GuestResponse, EdgeError>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let host = request
            .headers()
            .get(http::header::HOST)
            .and_then(|host| host.to_str().ok());
        let path_and_query = request
            .uri()
            .path_and_query()
            .map_or("/", PathAndQuery::as_str);
        let full_url = full_url("http", host, path_and_query);
        if !prefix.is_empty() {
            unmount(&mut request, prefix)?;
        }
        let path = request.uri().path();
        let matched = self
            .router
            .route(path)
            .ok_or_else(|| EdgeError::not_found(path))?;
        let handler = self
            .app
            .component(matched.component_id())
            .ok_or_else(|| EdgeError::not_found(path))?;
        let routing_headers = spin_headers(&matched, &full_url, client);
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
        if !prefix.is_empty() {
            let prefix = HeaderValue::from_str(prefix)
                .map_err(|_| EdgeError::bad_request("invalid mount prefix"))?;
            headers.insert(FORWARDED_PREFIX, prefix);
        }
        *request.uri_mut() = uri;
        handler.handle(request).await.map_err(EdgeError::from)
    }
}

/// The prefix a mounted app was reached under.
pub const FORWARDED_PREFIX: HeaderName = HeaderName::from_static("x-forwarded-prefix");

/// Strips `prefix` from the request path, refusing a path that is not under it. The client's
/// own `x-forwarded-prefix` is dropped: only the mount may say where the app is.
fn unmount<B>(request: &mut Request<B>, prefix: &str) -> Result<(), EdgeError> {
    let uri = request.uri();
    let rest = uri
        .path()
        .strip_prefix(prefix)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .ok_or_else(|| EdgeError::not_found(uri.path()))?;
    let path_and_query = match (rest, uri.query()) {
        ("", None) => "/".to_owned(),
        ("", Some(query)) => format!("/?{query}"),
        (rest, None) => rest.to_owned(),
        (rest, Some(query)) => format!("{rest}?{query}"),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(
        PathAndQuery::try_from(path_and_query)
            .map_err(|_| EdgeError::bad_request("invalid request target"))?,
    );
    *request.uri_mut() =
        Uri::from_parts(parts).map_err(|_| EdgeError::bad_request("invalid request target"))?;
    request.headers_mut().remove(FORWARDED_PREFIX);
    Ok(())
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
    nexus_http::serve(listener, &config, shutdown, |client| {
        let app = Arc::clone(&app);
        service_fn(move |request: Request<Incoming>| {
            let app = Arc::clone(&app);
            async move { Ok::<_, Infallible>(app.handle(request, client).await) }
        })
    })
    .await
}
