//! The node's own HTTP ingress: clients call `/{project}/{function}[@alias]/…` on the node
//! itself, as they would the coordinator's trigger, and the node serves it from its routing
//! table, whether or not it can reach a coordinator. A call answered now is run here and
//! recorded in the outbox as an event; `Prefer: respond-async` is answered `202` once the
//! invocation is in the outbox on disk, and a coordinator runs it once the outbox has been
//! forwarded, under the id the client was given.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Either, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use nexus_proto::node::v1::{FinishedInvocation, QueuedInvocation};
use nexus_proto::route::split_trigger_path;
use nexus_proto::wire;
use nexus_runtime::GuestBody;
use tokio::net::TcpListener;

use super::edge_service::EdgeServer;
use super::outbox::{Outbox, OutboxError};
use super::routes::{RouteTable, Routed};
use crate::errors::EdgeError;

/// The largest request body an asynchronous invocation keeps, as on the coordinator.
pub const MAX_ASYNC_BODY_BYTES: usize = 1024 * 1024;
/// How long reading an asynchronous invocation's body may take.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest idempotency key, as on the coordinator.
const MAX_KEY_CHARS: usize = 255;
/// The response header naming the version that served the request.
const VERSION_HEADER: HeaderName = HeaderName::from_static("nexus-version");
const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// What the ingress answers with: the guest's body, or a document of the node's own.
type Answer = Response<Either<GuestBody, Full<Bytes>>>;

/// Serves the routing table's functions.
pub struct NodeIngress {
    edge: Arc<EdgeServer>,
    routes: Arc<RouteTable>,
    outbox: Arc<Outbox>,
}

impl NodeIngress {
    /// Runs calls on `edge`, by `routes`, keeping what must reach a coordinator in `outbox`.
    pub fn new(edge: Arc<EdgeServer>, routes: Arc<RouteTable>, outbox: Arc<Outbox>) -> Self {
        Self {
            edge,
            routes,
            outbox,
        }
    }

    /// Serves on `listener` until `shutdown`, then lets the calls in flight finish.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        limits: nexus_http::ServerLimits,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        nexus_http::serve(listener, &limits, shutdown, move |client| {
            let ingress = Arc::clone(&self);
            service_fn(move |request: Request<Incoming>| {
                let ingress = Arc::clone(&ingress);
                async move { Ok::<_, Infallible>(ingress.answer(request, client).await) }
            })
        })
        .await
    }

    async fn answer(&self, request: Request<Incoming>, client: SocketAddr) -> Answer {
        match self.run(request, client).await {
            Ok(response) => response,
            Err(error) => error
                .logged_response()
                .map(|body| Either::Right(Full::new(body))),
        }
    }

    async fn run(
        &self,
        request: Request<Incoming>,
        client: SocketAddr,
    ) -> Result<Answer, EdgeError> {
        let path = request.uri().path().to_owned();
        let (project, function, alias, prefix_len) =
            split_trigger_path(&path).ok_or_else(EdgeError::function_not_found)?;
        let routed = self
            .routes
            .resolve(project, function, alias)
            .ok_or_else(EdgeError::function_not_found)?;
        let prefix = &path[..prefix_len];
        if wire::prefers_respond_async(request.headers()) {
            return self.accept(&routed, request, prefix, client).await;
        }
        let deployment = self.edge.known(&routed.deployment).ok_or_else(|| {
            EdgeError::load_failed(&format_args!(
                "version {} of {} is not on this node",
                routed.version, routed.function
            ))
        })?;
        let started = Instant::now();
        let answered = self.edge.invoke(&deployment, request, client, prefix).await;
        let status = match &answered {
            Ok((response, _)) => response.status(),
            Err(error) => error.status(),
        };
        self.outbox.record(FinishedInvocation {
            project_id: routed.project_id.clone(),
            function: routed.function.clone(),
            version: routed.version,
            status: u32::from(status.as_u16()),
            duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
            finished_at_ms: unix_millis(),
        });
        let (response, in_flight) = answered?;
        let mut response = response.map(|body| {
            // The invocation counts in the node's load until its body is sent or dropped.
            let body = body.map_frame(move |frame| {
                let _in_flight = &in_flight;
                frame
            });
            Either::Left(body.boxed_unsync())
        });
        response
            .headers_mut()
            .insert(VERSION_HEADER, HeaderValue::from(routed.version));
        Ok(response)
    }

    /// Keeps the request in the outbox and answers `202` with the id a coordinator will know
    /// it by.
    async fn accept(
        &self,
        routed: &Routed,
        request: Request<Incoming>,
        prefix: &str,
        client: SocketAddr,
    ) -> Result<Answer, EdgeError> {
        let (parts, body) = request.into_parts();
        let idempotency_key = match parts.headers.get(IDEMPOTENCY_KEY) {
            None => String::new(),
            Some(key) => match key.to_str() {
                Ok(key) if !key.is_empty() && key.chars().count() <= MAX_KEY_CHARS => {
                    key.to_owned()
                }
                _ => {
                    return Err(EdgeError::bad_request(format!(
                        "an idempotency key is text of 1 to {MAX_KEY_CHARS} characters"
                    )));
                }
            },
        };
        let body = tokio::time::timeout(
            BODY_TIMEOUT,
            Limited::new(body, MAX_ASYNC_BODY_BYTES).collect(),
        )
        .await
        .map_err(|_| EdgeError::bad_request("the request body took too long"))?
        .map_err(|_| EdgeError::payload_too_large(MAX_ASYNC_BODY_BYTES))?
        .to_bytes();
        let accepted = self
            .outbox
            .accept(QueuedInvocation {
                id: uuid::Uuid::new_v4().to_string(),
                project_id: routed.project_id.clone(),
                function_id: routed.function_id.clone(),
                function: routed.function.clone(),
                version: routed.version,
                idempotency_key,
                method: parts.method.to_string(),
                uri: parts
                    .uri
                    .path_and_query()
                    .map_or_else(|| parts.uri.path().to_owned(), ToString::to_string),
                prefix: prefix.to_owned(),
                headers: wire::headers_to_wire(&parts.headers),
                body,
                client_address: client.to_string(),
                accepted_at_ms: unix_millis(),
            })
            .await
            .map_err(|error| match error {
                OutboxError::Full => EdgeError::outbox_full(),
                error => EdgeError::internal(&error),
            })?;
        let url = format!("/v1/invocations/{}", accepted.id);
        let body = serde_json::json!({"id": accepted.id, "status": "queued", "url": url});
        let mut response = Response::new(Either::Right(Full::new(Bytes::from(body.to_string()))));
        *response.status_mut() = StatusCode::ACCEPTED;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(location) = HeaderValue::from_str(&url) {
            headers.insert(header::LOCATION, location);
        }
        headers.insert(
            HeaderName::from_static("preference-applied"),
            HeaderValue::from_static("respond-async"),
        );
        headers.insert(VERSION_HEADER, HeaderValue::from(routed.version));
        if accepted.replay {
            headers.insert(
                HeaderName::from_static("nexus-idempotent-replay"),
                HeaderValue::from_static("true"),
            );
        }
        Ok(response)
    }
}

fn unix_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}
