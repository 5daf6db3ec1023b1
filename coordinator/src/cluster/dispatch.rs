//! Dispatch to edge nodes: place each invocation on a node whose labels match the function's
//! node selector (warm components first, then least load, then the preferred region), stream it
//! there over `EdgeService.Invoke`, and fail over
//! when a node cannot take it.

use std::collections::{BTreeMap, VecDeque};
use std::hash::{Hash as _, Hasher as _};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode};
use bytes::Bytes;
use futures::{Stream, StreamExt as _};
use http_body::Frame;
use http_body_util::StreamBody;
use nexus_proto::node::v1::{
    BodyEnd, Deployment, InvokeHead, InvokeRequest, InvokeResponse, PrefetchRequest,
    invoke_request, invoke_response,
};
use nexus_proto::wire;
use nexus_runtime::{GuestLog, LogSink};
use uuid::Uuid;

use super::registry::{Node, NodeRegistry, Occupied};
use super::scheduler::{Admission, Priority, Scheduler, SchedulerConfig};
use crate::dispatch::{Dispatch, DispatchFuture, Invocation, Replayable, Target};
use crate::error::ApiError;

/// A request body this small is kept so that the request can be sent again to another node.
const REPLAYABLE_BODY_BYTES: usize = 1024 * 1024;
/// Nodes tried for one invocation at most.
const MAX_ATTEMPTS: usize = 3;
/// How long a deploy waits for nodes to fetch and compile the new version.
const PREFETCH_TIMEOUT: Duration = Duration::from_secs(60);
/// The header that makes a request with a body safe to send again.
const IDEMPOTENCY_KEY: &str = "idempotency-key";

/// The response header naming the node that ran the invocation.
pub const NODE_HEADER: HeaderName = HeaderName::from_static("nexus-node");

/// Runs invocations on the cluster's edge nodes.
pub struct RemoteDispatch(Arc<Placement>);

struct Placement {
    registry: Arc<NodeRegistry>,
    scheduler: Scheduler,
    /// Nodes in this region are preferred when all else is equal.
    region: Option<String>,
    /// Rotates the choice among equally good nodes.
    turn: AtomicUsize,
}

impl RemoteDispatch {
    /// Dispatches to the nodes of `registry`, preferring `region`.
    pub fn new(
        registry: Arc<NodeRegistry>,
        region: Option<String>,
        scheduler: SchedulerConfig,
    ) -> Self {
        Self(Arc::new(Placement {
            registry,
            scheduler: Scheduler::new(scheduler),
            region,
            turn: AtomicUsize::new(0),
        }))
    }
}

impl RemoteDispatch {
    /// The scheduler admitting this dispatch's invocations (its queues, for metrics).
    pub fn scheduler(&self) -> Scheduler {
        self.0.scheduler.clone()
    }
}

impl Placement {
    /// The node for `target`, skipping `tried`: among the nodes whose labels match the
    /// function's node selector, those with a free slot and the components compiled; then the
    /// least loaded; then one in the preferred region. Equal nodes take turns. When no
    /// schedulable node matches the selector at all, `no_matching_node`; when every match has
    /// been tried, `no_node_available`.
    fn place(&self, target: &Target, tried: &[Uuid]) -> Result<Arc<Node>, ApiError> {
        let matching: Vec<Arc<Node>> = self
            .registry
            .schedulable()
            .into_iter()
            .filter(|node| matches(&node.labels, &target.node_selector))
            .collect();
        if matching.is_empty() && !target.node_selector.is_empty() {
            return Err(no_matching_node(&target.node_selector));
        }
        let candidates: Vec<(Arc<Node>, (bool, u64, bool))> = matching
            .into_iter()
            .filter(|node| !tried.contains(&node.id))
            .map(|node| {
                let in_flight = node.in_flight();
                let free = in_flight < node.slots;
                let warm = node.knows(target.version_id)
                    || node.is_warm(target.app.components.values().map(|c| &c.source));
                let load = u64::from(in_flight) * 1_000 / u64::from(node.slots.max(1));
                let elsewhere = self
                    .region
                    .as_ref()
                    .is_some_and(|region| *region != node.region);
                (node, (!(free && warm), load, elsewhere))
            })
            .collect();
        let best = candidates
            .iter()
            .map(|(_, key)| *key)
            .min()
            .ok_or_else(no_node_available)?;
        let mut equal: Vec<&Arc<Node>> = candidates
            .iter()
            .filter(|(_, key)| *key == best)
            .map(|(node, _)| node)
            .collect();
        equal.sort_by_key(|node| node.id);
        let turn = self.turn.fetch_add(1, Ordering::Relaxed);
        equal
            .get(turn % equal.len())
            .map(|node| Arc::clone(node))
            .ok_or_else(no_node_available)
    }

    async fn run(&self, invocation: Invocation) -> Result<Response<Body>, ApiError> {
        let Invocation {
            target,
            prefix,
            client,
            request,
            agent,
            logs,
        } = invocation;
        let (parts, body) = request.into_parts();
        let priority = priority_of(&parts.headers, target.priority)?;
        let schedulable = self.registry.schedulable();
        let capacity: usize = schedulable.iter().map(|node| node.slots as usize).sum();
        if capacity == 0 {
            return Err(no_node_available());
        }
        // Refused before admission: waiting would not make a matching node appear.
        if !schedulable
            .iter()
            .any(|node| matches(&node.labels, &target.node_selector))
        {
            return Err(no_matching_node(&target.node_selector));
        }
        self.scheduler.set_capacity(capacity);
        let admission = self
            .scheduler
            .admit(target.project_id.0, priority)
            .await
            .map_err(|rejected| {
                ApiError::from_runtime(
                    StatusCode::TOO_MANY_REQUESTS,
                    "overloaded",
                    format!("every edge node is busy: {rejected}"),
                    Some(rejected.retry_after()),
                )
            })?;
        let admission = Arc::new(admission);
        let safe_to_repeat = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS)
            || parts.headers.contains_key(IDEMPOTENCY_KEY);
        let mut body = Some(Replayable::read(body, REPLAYABLE_BODY_BYTES).await?);
        let head = InvokeHead {
            deployment: None,
            prefix,
            client_address: client.to_string(),
            method: parts.method.to_string(),
            uri: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), ToString::to_string),
            headers: wire::headers_to_wire(&parts.headers),
            priority: nexus_proto::node::v1::Priority::from(priority) as i32,
            agent: agent.map(|agent| agent.to_string()).unwrap_or_default(),
        };
        let mut tried = Vec::new();
        let mut last_error = None;
        while tried.len() < MAX_ATTEMPTS {
            let node = match self.place(&target, &tried) {
                Ok(node) => node,
                // After a failed attempt, that failure says more than "no other node".
                Err(unplaced) => {
                    last_error.get_or_insert(unplaced);
                    break;
                }
            };
            tried.push(node.id);
            let this_body = match &body {
                Some(Replayable::Whole(bytes)) => Replayable::Whole(bytes.clone()),
                Some(Replayable::Streaming(_)) | None => match body.take() {
                    Some(streaming) => streaming,
                    None => break,
                },
            };
            let held = Held {
                _node: node.occupy(),
                _admission: Arc::clone(&admission),
            };
            match self
                .attempt(
                    Arc::clone(&node),
                    &target,
                    head.clone(),
                    this_body,
                    held,
                    logs.clone(),
                )
                .await
            {
                Attempt::Answered(answer) => return answer,
                Attempt::Refused(error) => last_error = Some(error),
                Attempt::Failed(error) => {
                    self.registry
                        .lose(&node, "an invocation could not reach it");
                    if !safe_to_repeat {
                        return Err(error);
                    }
                    last_error = Some(error);
                }
            }
        }
        Err(last_error.unwrap_or_else(no_node_available))
    }

    async fn attempt(
        &self,
        node: Arc<Node>,
        target: &Target,
        mut head: InvokeHead,
        body: Replayable,
        held: Held,
        logs: Option<LogSink>,
    ) -> Attempt {
        let sends_record = !node.knows(target.version_id);
        head.deployment = Some(deployment_message(target, sends_record));
        let requests = RequestMessages::new(head, body);
        let failed = |status: tonic::Status| {
            Attempt::Failed(ApiError::from_runtime(
                StatusCode::BAD_GATEWAY,
                "node_failed",
                format!(
                    "the edge node failed during the invocation: {}",
                    status.message()
                ),
                None,
            ))
        };
        let mut responses = match node.client.clone().invoke(requests).await {
            Ok(response) => response.into_inner(),
            Err(status) => return failed(status),
        };
        let first = match responses.message().await {
            Ok(Some(first)) => first,
            Ok(None) => return failed(tonic::Status::unavailable("no answer")),
            Err(status) => return failed(status),
        };
        if sends_record {
            node.learned(target.version_id);
        }
        match first.part {
            Some(invoke_response::Part::Head(response_head)) => {
                node.add_warm(target.app.components.values().map(|c| c.source));
                let mut answer = response(response_head, responses, held, logs);
                if let (Ok(response), Ok(id)) =
                    (answer.as_mut(), HeaderValue::from_str(&node.id.to_string()))
                {
                    response.headers_mut().insert(NODE_HEADER, id);
                }
                Attempt::Answered(answer)
            }
            Some(invoke_response::Part::Error(error)) => {
                finish(&mut responses, logs.as_ref()).await;
                let status = wire::status(error.status).unwrap_or(StatusCode::BAD_GATEWAY);
                let retry_after = (error.retry_after_ms > 0)
                    .then(|| Duration::from_millis(u64::from(error.retry_after_ms)));
                let error_code = leak_code(&error.code);
                let api_error =
                    ApiError::from_runtime(status, error_code, error.message, retry_after);
                if error.not_started {
                    Attempt::Refused(api_error)
                } else {
                    Attempt::Answered(Err(api_error))
                }
            }
            _ => failed(tonic::Status::internal("the node answered out of order")),
        }
    }
}

fn no_node_available() -> ApiError {
    ApiError::from_runtime(
        StatusCode::SERVICE_UNAVAILABLE,
        "no_node_available",
        "no edge node can take the invocation now".to_owned(),
        Some(Duration::from_secs(1)),
    )
}

/// Whether a node with `labels` may run a function with `selector`: every entry of the
/// selector is a label of the node with the same value (an empty selector matches any node).
pub(super) fn matches(
    labels: &BTreeMap<String, String>,
    selector: &BTreeMap<String, String>,
) -> bool {
    selector
        .iter()
        .all(|(key, value)| labels.get(key) == Some(value))
}

/// No schedulable node carries the labels the function selects. Not worth retrying at once:
/// it lasts until such a node registers (or stops draining) or the selector changes.
fn no_matching_node(selector: &BTreeMap<String, String>) -> ApiError {
    let entries: Vec<String> = selector
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect();
    ApiError::from_runtime(
        StatusCode::SERVICE_UNAVAILABLE,
        "no_matching_node",
        format!(
            "no edge node matches the function's node selector {}",
            entries.join(",")
        ),
        None,
    )
}

/// What an invocation holds while it runs on a node: the node's slot as this coordinator
/// counts it and the scheduler's admission. Both are released when the response body has been
/// sent or dropped.
struct Held {
    _node: Occupied,
    _admission: Arc<Admission>,
}

/// The header that sets a request's priority class: `critical`, `high`, `normal` or `low`.
pub const PRIORITY_HEADER: &str = "nexus-priority";

/// The request's priority class: its `nexus-priority` header, else the function's.
fn priority_of(headers: &HeaderMap, function: Priority) -> Result<Priority, ApiError> {
    match headers.get(PRIORITY_HEADER) {
        None => Ok(function),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|text| text.parse().ok())
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "{PRIORITY_HEADER} must be critical, high, normal or low"
                ))
            }),
    }
}

/// The error codes a node sends are a fixed set; unknown ones are reported as `node_error`.
fn leak_code(code: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "route_not_found",
        "bad_request",
        "app_load_failed",
        "internal",
        "overloaded",
        "deadline_exceeded",
        "guest_trap",
        "guest_no_response",
        "body_too_large",
        "node_draining",
        "artifact_unavailable",
    ];
    KNOWN
        .iter()
        .find(|known| **known == code)
        .copied()
        .unwrap_or("node_error")
}

enum Attempt {
    /// The node answered: the function's response, or why it failed.
    Answered(Result<Response<Body>, ApiError>),
    /// The node ran nothing: another node may run it.
    Refused(ApiError),
    /// The node could not be reached or failed midway.
    Failed(ApiError),
}

pub(super) fn deployment_message(target: &Target, with_record: bool) -> Deployment {
    Deployment {
        id: target.version_id.to_string(),
        namespace: target.project_id.to_string(),
        app: if with_record {
            serde_json::to_vec(target.app.as_ref())
                .map(Bytes::from)
                .unwrap_or_default()
        } else {
            Bytes::new()
        },
    }
}

/// An invocation as messages: the head, the body's chunks, then `end`. A body that fails
/// stops the stream before `end`, so the node sees it cut off rather than complete.
struct RequestMessages {
    queued: VecDeque<InvokeRequest>,
    streaming: Option<axum::body::BodyDataStream>,
}

impl RequestMessages {
    fn new(head: InvokeHead, body: Replayable) -> Self {
        let mut queued = VecDeque::with_capacity(3);
        queued.push_back(InvokeRequest {
            part: Some(invoke_request::Part::Head(head)),
        });
        let streaming = match body {
            Replayable::Whole(bytes) => {
                if !bytes.is_empty() {
                    queued.push_back(body_message(bytes));
                }
                queued.push_back(end_message());
                None
            }
            Replayable::Streaming(body) => Some(body.into_data_stream()),
        };
        Self { queued, streaming }
    }
}

impl Stream for RequestMessages {
    type Item = InvokeRequest;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(message) = self.queued.pop_front() {
            return Poll::Ready(Some(message));
        }
        let Some(streaming) = self.streaming.as_mut() else {
            return Poll::Ready(None);
        };
        let message = match std::task::ready!(streaming.poll_next_unpin(cx)) {
            Some(Ok(data)) => return Poll::Ready(Some(body_message(data))),
            Some(Err(_)) => None,
            None => Some(end_message()),
        };
        self.streaming = None;
        Poll::Ready(message)
    }
}

fn body_message(data: Bytes) -> InvokeRequest {
    InvokeRequest {
        part: Some(invoke_request::Part::Body(data)),
    }
}

fn end_message() -> InvokeRequest {
    InvokeRequest {
        part: Some(invoke_request::Part::End(BodyEnd {})),
    }
}

/// Why a response body from a node stopped early.
#[derive(Debug, thiserror::Error)]
enum ResponseBodyError {
    #[error("the edge node's response was cut off")]
    CutOff,
    #[error("the function's response body failed: {0}")]
    Failed(String),
}

/// The function's response: the head as sent, the body streamed from the node. The node
/// counts as busy with the invocation until the body has been read or dropped.
fn response(
    head: nexus_proto::node::v1::ResponseHead,
    messages: tonic::Streaming<InvokeResponse>,
    held: Held,
    logs: Option<LogSink>,
) -> Result<Response<Body>, ApiError> {
    let invalid = |error: wire::InvalidHead| {
        ApiError::from_runtime(
            StatusCode::BAD_GATEWAY,
            "node_failed",
            error.to_string(),
            None,
        )
    };
    let status = wire::status(head.status).map_err(invalid)?;
    let headers = wire::headers_from_wire(head.headers).map_err(invalid)?;
    let frames = futures::stream::unfold(Some((messages, held, logs)), |state| async move {
        let (mut messages, held, logs) = state?;
        let frame = match messages.message().await {
            Ok(Some(InvokeResponse {
                part: Some(invoke_response::Part::Body(data)),
            })) => Ok(Frame::data(data)),
            Ok(Some(InvokeResponse {
                part: Some(invoke_response::Part::End(BodyEnd {})),
            })) => {
                finish(&mut messages, logs.as_ref()).await;
                return None;
            }
            Ok(Some(InvokeResponse {
                part: Some(invoke_response::Part::Error(error)),
            })) => Err(ResponseBodyError::Failed(error.message)),
            Ok(Some(_) | None) | Err(_) => Err(ResponseBodyError::CutOff),
        };
        let next = frame.is_ok().then_some((messages, held, logs));
        Some((frame, next))
    });
    let mut response = Response::new(Body::new(StreamBody::new(frames)));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    Ok(response)
}

/// Reads the rest of an invocation's stream ([`wire::finish`]), handing the guest's output,
/// which follows the response, to `logs`.
async fn finish(messages: &mut tonic::Streaming<InvokeResponse>, logs: Option<&LogSink>) {
    wire::finish_with(messages, |message| {
        if let (Some(invoke_response::Part::Log(log)), Some(logs)) = (message.part, logs) {
            logs.deliver(GuestLog {
                stdout: log.stdout,
                stderr: log.stderr,
                truncated: log.truncated,
            });
        }
    })
    .await;
}

impl Dispatch for RemoteDispatch {
    fn invoke(&self, invocation: Invocation) -> DispatchFuture<Response<Body>> {
        let placement = Arc::clone(&self.0);
        Box::pin(async move { placement.run(invocation).await })
    }

    /// Sends the version to every node now taking work that its node selector allows, which
    /// fetches and compiles its components (the warm pool). A node that fails is logged; its
    /// first request loads it.
    fn prepare(&self, target: Arc<Target>) -> DispatchFuture<()> {
        let nodes = self.0.nodes_for(&target);
        Box::pin(prefetch(nodes, target, Duration::ZERO))
    }

    /// Keeps the version loaded on `min_warm` of the nodes its selector allows: the same nodes
    /// each time while they stay (rendezvous hashing on the version and the node's name and
    /// address, which every replica a node joined sees alike), so the pinned pool neither
    /// wanders nor grows with the replicas.
    fn keep_warm(&self, target: Arc<Target>, period: Duration) -> DispatchFuture<()> {
        let mut nodes = self.0.nodes_for(&target);
        let rank = |node: &Arc<Node>| {
            let mut hasher = std::hash::DefaultHasher::new();
            (target.version_id, &node.name, &node.address).hash(&mut hasher);
            hasher.finish()
        };
        nodes.sort_by_cached_key(rank);
        nodes.truncate(usize::try_from(target.min_warm).unwrap_or(usize::MAX));
        Box::pin(prefetch(nodes, target, period))
    }
}

impl Placement {
    /// The nodes taking work now that `target`'s node selector allows.
    fn nodes_for(&self, target: &Target) -> Vec<Arc<Node>> {
        self.registry
            .schedulable()
            .into_iter()
            .filter(|node| matches(&node.labels, &target.node_selector))
            .collect()
    }
}

/// Has each of `nodes` load `target` (and keep it loaded for `keep_warm`, when not zero).
async fn prefetch(
    nodes: Vec<Arc<Node>>,
    target: Arc<Target>,
    keep_warm: Duration,
) -> Result<(), ApiError> {
    let keep_warm_ms = u64::try_from(keep_warm.as_millis()).unwrap_or(u64::MAX);
    let prefetches = nodes.into_iter().map(|node| {
        let target = Arc::clone(&target);
        async move {
            let request = PrefetchRequest {
                deployments: vec![deployment_message(&target, true)],
                keep_warm_ms,
            };
            let answer =
                tokio::time::timeout(PREFETCH_TIMEOUT, node.client.clone().prefetch(request)).await;
            match answer {
                Ok(Ok(answer)) => {
                    node.learned(target.version_id);
                    node.add_warm(
                        answer
                            .into_inner()
                            .warm_digests
                            .iter()
                            .filter_map(|digest| digest.parse().ok()),
                    );
                }
                Ok(Err(status)) => {
                    tracing::warn!(node = %node.id, error = %status.message(), "prefetch failed");
                }
                Err(_) => tracing::warn!(node = %node.id, "prefetch timed out"),
            }
        }
    });
    futures::future::join_all(prefetches).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
        entries
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect()
    }

    #[test]
    fn a_node_matches_when_it_has_every_selected_label_with_that_value() {
        let node = labels(&[("gpu", "true"), ("zone", "eu-1"), ("tier", "")]);
        for selector in [
            labels(&[]),
            labels(&[("gpu", "true")]),
            labels(&[("gpu", "true"), ("zone", "eu-1")]),
            labels(&[("tier", "")]),
            node.clone(),
        ] {
            assert!(matches(&node, &selector), "{selector:?}");
        }
        for selector in [
            labels(&[("gpu", "false")]),
            labels(&[("gpu", "TRUE")]),
            labels(&[("gpu", "true"), ("zone", "us-1")]),
            labels(&[("arch", "arm64")]),
            labels(&[("zone", "")]),
            labels(&[("tier", "gold")]),
        ] {
            assert!(!matches(&node, &selector), "{selector:?}");
        }
        // A node without labels runs only functions that select none.
        assert!(matches(&labels(&[]), &labels(&[])));
        assert!(!matches(&labels(&[]), &labels(&[("gpu", "true")])));
    }

    #[test]
    fn no_matching_node_names_the_selector_and_is_not_no_node_available() {
        let error = no_matching_node(&labels(&[("gpu", "true"), ("zone", "eu-1")]));
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(error.code, "no_matching_node");
        assert_eq!(
            error.message,
            "no edge node matches the function's node selector gpu=true,zone=eu-1"
        );
        assert_ne!(error.code, no_node_available().code);
    }
}
