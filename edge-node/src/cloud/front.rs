//! The HTTP front of a cloud host: a function app's custom handler (`nexus-edge azure`, the
//! app under the route prefix `/api`) or a Cloud Run service (`nexus-edge cloud-run`, the app at
//! the root). The platform forwards each request unchanged; the handler answers it directly.
//!
//! The coordinator calls the same front, and says which agent an invocation is for, which
//! deployment and tenant it means and the mount it was reached under, in `nexus-*` headers that
//! count only next to the coordinator's own token ([`INVOKE_TOKEN_HEADER`] matching
//! `NEXUS_INVOKE_TOKEN`); from anyone else they are dropped before the app sees the request.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use http::header::HeaderName;
use http::uri::PathAndQuery;
use http::{HeaderMap, Request, Response, Uri};
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use nexus_runtime::AgentContext;
use tokio::net::TcpListener;

use super::CloudHost;
use crate::errors::EdgeError;
use crate::ingress::ResponseBody;

/// The variable holding the coordinator's token; direct invocations are off without it.
pub const INVOKE_TOKEN_VARIABLE: &str = "NEXUS_INVOKE_TOKEN";
/// The coordinator's token on its requests.
pub const INVOKE_TOKEN_HEADER: HeaderName = HeaderName::from_static("nexus-invoke-token");
/// The agent a coordinator's invocation is for.
pub const AGENT_HEADER: HeaderName = HeaderName::from_static("nexus-agent");
/// The deployment the coordinator means; must be the bundle's.
pub const DEPLOYMENT_HEADER: HeaderName = HeaderName::from_static("nexus-deployment");
/// The tenant the coordinator means; must be the bundle's.
pub const NAMESPACE_HEADER: HeaderName = HeaderName::from_static("nexus-namespace");
/// The mount the client reached the function under (`/{project}/{function}`).
pub const PREFIX_HEADER: HeaderName = HeaderName::from_static("nexus-prefix");

/// What the handler serves, where, and whom it trusts.
pub struct HttpHandler {
    host: CloudHost,
    route_prefix: &'static str,
    invoke_token: Option<String>,
}

impl HttpHandler {
    /// Serves `host` with its app mounted at `route_prefix` (`""`: the root); the
    /// coordinator's requests carry `invoke_token` (none: no direct invocations).
    pub fn new(host: CloudHost, route_prefix: &'static str, invoke_token: Option<String>) -> Self {
        Self {
            host,
            route_prefix,
            invoke_token: invoke_token.filter(|token| !token.is_empty()),
        }
    }

    /// Serves requests from `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        limits: nexus_http::ServerLimits,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let handler = Arc::new(self);
        nexus_http::serve(listener, &limits, shutdown, |client| {
            let handler = Arc::clone(&handler);
            service_fn(move |request: Request<Incoming>| {
                let handler = Arc::clone(&handler);
                async move { Ok::<_, Infallible>(handler.handle(request, client).await) }
            })
        })
        .await
    }

    async fn handle(&self, request: Request<Incoming>, peer: SocketAddr) -> Response<ResponseBody> {
        match self.route(request, peer).await {
            Ok(response) => response.map(Either::Left),
            Err(error) => error
                .logged_response()
                .map(|body| Either::Right(Full::new(body))),
        }
    }

    async fn route(
        &self,
        mut request: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<nexus_runtime::GuestBody>, EdgeError> {
        let client = forwarded_client(request.headers()).unwrap_or(peer);
        let control = take_control_headers(request.headers_mut());
        let mut prefix = self.route_prefix.to_owned();
        if let Some(token) = &control.token {
            let expected = self.invoke_token.as_deref().ok_or_else(|| {
                EdgeError::unauthorized("this handler takes no direct invocations")
            })?;
            if !constant_time_eq(token.as_bytes(), expected.as_bytes()) {
                return Err(EdgeError::unauthorized(
                    "the invoke token is not this handler's",
                ));
            }
            if let Some(deployment) = &control.deployment
                && deployment != self.host.deployment()
            {
                return Err(EdgeError::wrong_deployment(
                    deployment,
                    self.host.deployment(),
                ));
            }
            if let Some(namespace) = &control.namespace
                && namespace != self.host.namespace()
            {
                return Err(EdgeError::wrong_deployment(
                    &format!("tenant {namespace}"),
                    &format!("tenant {}", self.host.namespace()),
                ));
            }
            if let Some(agent) = control.agent {
                request.extensions_mut().insert(AgentContext(agent.into()));
            }
            if let Some(mount) = control.prefix {
                remount(&mut request, self.route_prefix, &mount)?;
                prefix = mount;
            }
        }
        self.host.serve(request, client, &prefix).await
    }
}

/// The `nexus-*` headers of a request, removed from it.
#[derive(Debug, Default)]
struct ControlHeaders {
    token: Option<String>,
    agent: Option<String>,
    deployment: Option<String>,
    namespace: Option<String>,
    prefix: Option<String>,
}

fn take_control_headers(headers: &mut HeaderMap) -> ControlHeaders {
    let mut take = |name: &HeaderName| {
        let value = headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        headers.remove(name);
        value
    };
    ControlHeaders {
        token: take(&INVOKE_TOKEN_HEADER),
        agent: take(&AGENT_HEADER),
        deployment: take(&DEPLOYMENT_HEADER),
        namespace: take(&NAMESPACE_HEADER),
        prefix: take(&PREFIX_HEADER),
    }
}

/// Replaces `route_prefix` at the start of the path with `mount`, so that the app sees the
/// mount the client used, as on an edge node.
fn remount<B>(request: &mut Request<B>, route_prefix: &str, mount: &str) -> Result<(), EdgeError> {
    let invalid = || EdgeError::bad_request("invalid mount prefix");
    if !mount.starts_with('/') || mount.ends_with('/') {
        return Err(invalid());
    }
    let uri = request.uri();
    let rest = uri
        .path()
        .strip_prefix(route_prefix)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .ok_or_else(|| EdgeError::not_found(uri.path()))?;
    let path_and_query = match uri.query() {
        Some(query) => format!("{mount}{rest}?{query}"),
        None => format!("{mount}{rest}"),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = Some(PathAndQuery::try_from(path_and_query).map_err(|_| invalid())?);
    *request.uri_mut() = Uri::from_parts(parts).map_err(|_| invalid())?;
    Ok(())
}

/// The client the Functions front end saw (`X-Forwarded-For`, whose first entry may carry a
/// port).
fn forwarded_client(headers: &HeaderMap) -> Option<SocketAddr> {
    let first = headers
        .get("x-forwarded-for")?
        .to_str()
        .ok()?
        .split(',')
        .next()?
        .trim();
    first.parse::<SocketAddr>().ok().or_else(|| {
        first
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 0))
    })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_headers_are_taken_out_of_the_request() {
        let mut headers = HeaderMap::new();
        headers.insert(AGENT_HEADER, "a1".parse().unwrap());
        headers.insert(INVOKE_TOKEN_HEADER, "t".parse().unwrap());
        headers.insert("accept", "*/*".parse().unwrap());
        let control = take_control_headers(&mut headers);
        assert_eq!(control.agent.as_deref(), Some("a1"));
        assert_eq!(control.token.as_deref(), Some("t"));
        assert_eq!(headers.len(), 1);
    }

    #[test]
    fn a_remounted_request_keeps_its_rest_and_query() {
        let mut request = Request::get("/api/hello/x?y=1").body(()).unwrap();
        remount(&mut request, "/api", "/lab/hello").unwrap();
        assert_eq!(request.uri(), "/lab/hello/hello/x?y=1");
        let mut outside = Request::get("/other").body(()).unwrap();
        assert_eq!(
            remount(&mut outside, "/api", "/lab").unwrap_err().status(),
            http::StatusCode::NOT_FOUND
        );
        assert!(remount(&mut request, "/api", "lab/").is_err());
        // At the root (Cloud Run), the whole path is the app's.
        let mut root = Request::get("/hello?y=1").body(()).unwrap();
        remount(&mut root, "", "/lab/hello").unwrap();
        assert_eq!(root.uri(), "/lab/hello/hello?y=1");
    }

    #[test]
    fn the_forwarded_client_may_carry_a_port() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-forwarded-for",
            "203.0.113.7:5123, 10.0.0.1".parse().unwrap(),
        );
        assert_eq!(
            forwarded_client(&headers),
            Some("203.0.113.7:5123".parse().unwrap())
        );
        headers.insert("x-forwarded-for", "2001:db8::1".parse().unwrap());
        assert_eq!(
            forwarded_client(&headers),
            Some("[2001:db8::1]:0".parse().unwrap())
        );
    }
}
