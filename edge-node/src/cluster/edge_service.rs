//! The node's `EdgeService`: invocations from the coordinator, run on the [`AppHost`] with
//! streamed bodies both ways; drain; prefetch.

use std::collections::{BTreeSet, HashMap};
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use http_body_util::{BodyExt as _, StreamBody};
use hyper::body::Frame;
use nexus_proto::Digest;
use nexus_proto::node::v1::edge_service_server::EdgeService;
use nexus_proto::node::v1::{
    BodyEnd, DrainRequest, DrainResponse, GuestLog, InvokeError, InvokeHead, InvokeRequest,
    InvokeResponse, PrefetchRequest, PrefetchResponse, ResponseHead, invoke_request,
    invoke_response,
};
use nexus_proto::{ResolvedApp, wire};
use nexus_runtime::{AgentContext, LogSink};
use tokio::sync::Notify;
use tonic::{Request, Response, Status, Streaming};

use super::CoordinatorClient;
use super::artifacts::ArtifactStore;
use crate::errors::EdgeError;
use crate::hosting::{AppHost, Deployment};
use crate::ingress::ServedApp;

/// What a node is doing, for its heartbeats and for drain.
#[derive(Debug, Default)]
pub struct NodeLoad {
    in_flight: AtomicU32,
    finished: AtomicU64,
    draining: AtomicBool,
    idle: Notify,
}

impl NodeLoad {
    /// Invocations running now.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Whether the node has stopped taking invocations.
    pub fn draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Counts an invocation in until the guard drops; `None` while draining.
    fn enter(self: &Arc<Self>) -> Option<InFlight> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if self.draining() {
            drop(InFlight(Arc::clone(self)));
            return None;
        }
        Some(InFlight(Arc::clone(self)))
    }

    /// Stops taking invocations and waits until none runs.
    pub async fn drain(&self) -> u64 {
        let before = self.finished.load(Ordering::Acquire);
        self.draining.store(true, Ordering::Release);
        loop {
            let idle = self.idle.notified();
            if self.in_flight() == 0 {
                break;
            }
            idle.await;
        }
        self.finished.load(Ordering::Acquire) - before
    }
}

/// One invocation in flight, until its response body has been sent or dropped.
pub struct InFlight(Arc<NodeLoad>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.finished.fetch_add(1, Ordering::AcqRel);
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

/// The components this node has compiled, reported in heartbeats.
#[derive(Debug, Default)]
pub struct WarmSet {
    /// The digests, and a count of changes: each coordinator's lease tells its coordinator
    /// what changed since the count it last saw.
    digests: Mutex<(BTreeSet<Digest>, u64)>,
}

impl WarmSet {
    fn add(&self, app: &ResolvedApp) {
        let mut warm = self.lock();
        for component in app.components.values() {
            if warm.0.insert(component.source) {
                warm.1 += 1;
            }
        }
    }

    /// Forgets `digests`: their compiled code is gone.
    pub fn remove(&self, digests: &[Digest]) {
        let mut warm = self.lock();
        for digest in digests {
            if warm.0.remove(digest) {
                warm.1 += 1;
            }
        }
    }

    /// Every warm digest, and whether the set changed since `seen`, which it moves on.
    pub fn changes_since(&self, seen: &AtomicU64) -> (Vec<String>, bool) {
        let warm = self.lock();
        let changed = seen.swap(warm.1, Ordering::Relaxed) != warm.1;
        (warm.0.iter().map(Digest::to_string).collect(), changed)
    }

    /// Every warm digest.
    pub fn all(&self) -> Vec<String> {
        self.lock().0.iter().map(Digest::to_string).collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, (BTreeSet<Digest>, u64)> {
        self.digests
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Serves `EdgeService`.
pub struct EdgeServer {
    host: Arc<AppHost>,
    artifacts: Arc<ArtifactStore>,
    coordinators: Arc<[CoordinatorClient]>,
    deployments: Mutex<HashMap<Arc<str>, Arc<Deployment>>>,
    load: Arc<NodeLoad>,
    warm: Arc<WarmSet>,
}

type ResponseStream = Pin<Box<dyn Stream<Item = Result<InvokeResponse, Status>> + Send>>;

impl EdgeServer {
    /// Runs apps on `host`, with components from `artifacts` (fetched from one of
    /// `coordinators`).
    pub fn new(
        host: Arc<AppHost>,
        artifacts: Arc<ArtifactStore>,
        coordinators: Arc<[CoordinatorClient]>,
        load: Arc<NodeLoad>,
        warm: Arc<WarmSet>,
    ) -> Self {
        Self {
            host,
            artifacts,
            coordinators,
            deployments: Mutex::default(),
            load,
            warm,
        }
    }

    /// The deployment a message names: known already, or described by it.
    fn deployment(
        &self,
        message: Option<nexus_proto::node::v1::Deployment>,
    ) -> Result<Arc<Deployment>, EdgeError> {
        let message = message.ok_or_else(|| EdgeError::bad_request("no deployment named"))?;
        let mut deployments = self.lock_deployments();
        if let Some(known) = deployments.get(message.id.as_str()) {
            return Ok(Arc::clone(known));
        }
        if message.app.is_empty() {
            return Err(EdgeError::load_failed(&format_args!(
                "deployment {} is unknown to this node",
                message.id
            )));
        }
        let app: ResolvedApp = serde_json::from_slice(&message.app).map_err(|error| {
            EdgeError::load_failed(&format_args!("deployment {}: {error}", message.id))
        })?;
        let deployment = Arc::new(Deployment {
            id: message.id.as_str().into(),
            namespace: message.namespace.into(),
            app: Arc::new(app),
        });
        deployments.insert(Arc::clone(&deployment.id), Arc::clone(&deployment));
        Ok(deployment)
    }

    /// Takes the record of a deployment, unless the node holds it already.
    pub fn learn(
        &self,
        message: nexus_proto::node::v1::Deployment,
    ) -> Result<Arc<Deployment>, EdgeError> {
        self.deployment(Some(message))
    }

    /// The deployment `id`, if the node holds its record.
    pub fn known(&self, id: &str) -> Option<Arc<Deployment>> {
        self.lock_deployments().get(id).cloned()
    }

    /// The ids of the deployments whose records the node holds.
    pub fn known_deployments(&self) -> Vec<String> {
        self.lock_deployments()
            .keys()
            .map(ToString::to_string)
            .collect()
    }

    /// The records of those of `ids` the node holds, as the coordinator sends them.
    pub fn deployment_messages(
        &self,
        ids: impl IntoIterator<Item = String>,
    ) -> Vec<nexus_proto::node::v1::Deployment> {
        let deployments = self.lock_deployments();
        let mut seen = BTreeSet::new();
        ids.into_iter()
            .filter(|id| seen.insert(id.clone()))
            .filter_map(|id| deployments.get(id.as_str()).cloned())
            .filter_map(|deployment| {
                Some(nexus_proto::node::v1::Deployment {
                    id: deployment.id.to_string(),
                    namespace: deployment.namespace.to_string(),
                    app: serde_json::to_vec(deployment.app.as_ref()).ok()?.into(),
                })
            })
            .collect()
    }

    fn lock_deployments(&self) -> std::sync::MutexGuard<'_, HashMap<Arc<str>, Arc<Deployment>>> {
        self.deployments
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Runs `request` on `deployment` mounted at `prefix`, as the coordinator's invocations
    /// run: counted in the node's load (the [`InFlight`] until the response body is done),
    /// observed, its components fetched if need be.
    pub async fn invoke<B>(
        &self,
        deployment: &Deployment,
        request: http::Request<B>,
        client: SocketAddr,
        prefix: &str,
    ) -> Result<(nexus_runtime::GuestResponse, InFlight), EdgeError>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let in_flight = self.load.enter().ok_or_else(EdgeError::draining)?;
        let response = self
            .host
            .observe(deployment, request, |request, cold_start| async move {
                let (app, cold) = self.ready(deployment).await?;
                if cold {
                    self.host.cold_started(deployment, &cold_start);
                }
                app.route_and_run(request, client, prefix).await
            })
            .await?;
        Ok((response, in_flight))
    }

    /// The deployment's app: fetches what its components need and loads it. Once it is loaded,
    /// invocations need nothing from disk, so they skip the checks (a `stat` per component).
    /// Also answers whether this call waited for the app to load.
    async fn ready(&self, deployment: &Deployment) -> Result<(Arc<ServedApp>, bool), EdgeError> {
        if let Some(app) = self.host.loaded_app(&deployment.id) {
            return Ok((app, false));
        }
        for component in deployment.app.components.values() {
            self.artifacts
                .ensure(&component.source, &self.coordinators)
                .await
                .map_err(|error| EdgeError::artifact_unavailable(&error))?;
        }
        let app = self.host.app(deployment).await?;
        self.warm.add(&deployment.app);
        Ok((app, true))
    }

    async fn run(
        &self,
        head: InvokeHead,
        body: &RequestSlot,
        logs: LogSink,
    ) -> Result<ResponseStream, EdgeError> {
        let deployment = self.deployment(head.deployment)?;
        let (method, uri) = wire::request_line(&head.method, &head.uri)
            .map_err(|e| EdgeError::bad_request(e.to_string()))?;
        let headers = wire::headers_from_wire(head.headers)
            .map_err(|e| EdgeError::bad_request(e.to_string()))?;
        let mut request = http::Request::new(request_body(Arc::clone(body)));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        if !head.agent.is_empty() {
            request
                .extensions_mut()
                .insert(AgentContext(head.agent.into()));
        }
        request.extensions_mut().insert(logs);
        let client = head
            .client_address
            .parse()
            .unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
        let (response, in_flight) = self
            .invoke(&deployment, request, client, &head.prefix)
            .await?;
        Ok(response_stream(response, in_flight))
    }
}

#[tonic::async_trait]
impl EdgeService for EdgeServer {
    type InvokeStream = ResponseStream;

    async fn invoke(
        &self,
        request: Request<Streaming<InvokeRequest>>,
    ) -> Result<Response<Self::InvokeStream>, Status> {
        let mut incoming = request.into_inner();
        let head = match incoming.message().await? {
            Some(InvokeRequest {
                part: Some(invoke_request::Part::Head(head)),
            }) => head,
            _ => {
                return Err(Status::invalid_argument(
                    "an invocation starts with its head",
                ));
            }
        };
        let incoming: RequestSlot = Arc::new(Mutex::new(Some(incoming)));
        let (sink, logs) = LogSink::channel();
        let stream = match self.run(head, &incoming, sink).await {
            Ok(stream) => stream,
            Err(error) => Box::pin(futures::stream::once(
                async move { Ok(error_message(&error)) },
            )),
        };
        // Once the response is out, the guest's output, when its instance has ended.
        let stream = stream.chain(
            futures::stream::once(async move {
                let log = tokio::time::timeout(MAX_LOG_WAIT, logs).await.ok()?.ok()?;
                (!log.is_empty()).then(|| Ok(log_message(log)))
            })
            .filter_map(std::future::ready),
        );
        // The response ends only after the request has: see `wire::finish`.
        let finished = futures::stream::once(async move {
            let unread = incoming
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .take();
            if let Some(mut unread) = unread {
                wire::finish(&mut unread).await;
            }
        })
        .filter_map(|()| std::future::ready(None));
        Ok(Response::new(Box::pin(stream.chain(finished))))
    }

    async fn drain(&self, _: Request<DrainRequest>) -> Result<Response<DrainResponse>, Status> {
        let finished = self.load.drain().await;
        tracing::info!(finished, "drained");
        Ok(Response::new(DrainResponse { finished }))
    }

    async fn prefetch(
        &self,
        request: Request<PrefetchRequest>,
    ) -> Result<Response<PrefetchResponse>, Status> {
        let request = request.into_inner();
        let keep_warm = Duration::from_millis(request.keep_warm_ms);
        for message in request.deployments {
            let deployment = self
                .deployment(Some(message))
                .map_err(|error| Status::invalid_argument(error.message()))?;
            self.ready(&deployment)
                .await
                .map_err(|error| Status::failed_precondition(error.message()))?;
            if !keep_warm.is_zero() {
                self.host
                    .keep_warm(&deployment, keep_warm)
                    .await
                    .map_err(|error| Status::failed_precondition(error.message()))?;
            }
        }
        Ok(Response::new(PrefetchResponse {
            warm_digests: self.warm.all(),
        }))
    }
}

/// How long a response's stream stays open for its guest's output after its end: an
/// instance outlives its response only within its deadline.
const MAX_LOG_WAIT: Duration = Duration::from_secs(600);

fn log_message(log: nexus_runtime::GuestLog) -> InvokeResponse {
    InvokeResponse {
        part: Some(invoke_response::Part::Log(GuestLog {
            stdout: log.stdout,
            stderr: log.stderr,
            truncated: log.truncated,
        })),
    }
}

fn error_message(error: &EdgeError) -> InvokeResponse {
    InvokeResponse {
        part: Some(invoke_response::Part::Error(InvokeError {
            status: u32::from(error.status().as_u16()),
            code: error.code().to_owned(),
            message: error.message().to_owned(),
            retry_after_ms: error.retry_after().map_or(0, |after| {
                u32::try_from(after.as_millis()).unwrap_or(u32::MAX)
            }),
            not_started: error.ran_nothing(),
        })),
    }
}

/// Why a request body from the coordinator stopped.
#[derive(Debug, thiserror::Error)]
enum IncomingBodyError {
    #[error("the request body was cut off")]
    CutOff,
    #[error("unexpected message in a request body")]
    Unexpected,
    #[error("the request body failed: {0}")]
    Stream(#[from] Status),
}

type IncomingBody =
    StreamBody<Pin<Box<dyn Stream<Item = Result<Frame<Bytes>, IncomingBodyError>> + Send>>>;

/// The rest of an invocation's request stream, shared by the guest's request body and the
/// response, which reads what the guest left once it is done.
type RequestSlot = Arc<Mutex<Option<Streaming<InvokeRequest>>>>;

/// The request body the rest of the stream carries; it ends at `end`, and a stream that stops
/// before it fails the body rather than truncate it. Complete, the stream goes back to `slot`.
fn request_body(slot: RequestSlot) -> IncomingBody {
    let frames = futures::stream::unfold(slot, |slot| async move {
        let taken = slot
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .take();
        let mut stream = taken?;
        let frame = match stream.message().await {
            Ok(Some(InvokeRequest {
                part: Some(invoke_request::Part::Body(chunk)),
            })) => Ok(Frame::data(chunk)),
            Ok(Some(InvokeRequest {
                part: Some(invoke_request::Part::End(BodyEnd {})),
            })) => {
                put_back(&slot, stream);
                return None;
            }
            Ok(Some(_)) => Err(IncomingBodyError::Unexpected),
            Ok(None) => Err(IncomingBodyError::CutOff),
            Err(status) => Err(IncomingBodyError::Stream(status)),
        };
        if frame.is_ok() {
            put_back(&slot, stream);
        }
        Some((frame, slot))
    });
    StreamBody::new(Box::pin(frames))
}

fn put_back(slot: &RequestSlot, stream: Streaming<InvokeRequest>) {
    *slot.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(stream);
}

/// The head, the body's chunks, then `end`; a body that fails midway ends with an error
/// instead. The invocation counts as in flight until this stream is done or dropped.
fn response_stream(response: nexus_runtime::GuestResponse, in_flight: InFlight) -> ResponseStream {
    let (parts, body) = response.into_parts();
    let head = InvokeResponse {
        part: Some(invoke_response::Part::Head(ResponseHead {
            status: u32::from(parts.status.as_u16()),
            headers: wire::headers_to_wire(&parts.headers),
        })),
    };
    let body = futures::stream::unfold(Some((Box::pin(body), in_flight)), |state| async move {
        let (mut body, in_flight) = state?;
        loop {
            let part = match body.frame().await {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) if data.is_empty() => continue,
                    Ok(data) => {
                        let message = invoke_response::Part::Body(data);
                        return Some((
                            Ok(InvokeResponse {
                                part: Some(message),
                            }),
                            Some((body, in_flight)),
                        ));
                    }
                    // Trailers are not carried.
                    Err(_trailers) => continue,
                },
                Some(Err(error)) => invoke_response::Part::Error(InvokeError {
                    status: 502,
                    code: "guest_body_failed".to_owned(),
                    message: error.to_string(),
                    retry_after_ms: 0,
                    not_started: false,
                }),
                None => invoke_response::Part::End(BodyEnd {}),
            };
            return Some((Ok(InvokeResponse { part: Some(part) }), None));
        }
    });
    Box::pin(futures::stream::once(async move { Ok(head) }).chain(body))
}
