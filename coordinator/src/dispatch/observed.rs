//! The dispatch every coordinator puts outermost: it counts and times each invocation for
//! `/metrics`, whatever runs it (a node, the runtime in process, a cloud), traces it, and
//! publishes what its guest wrote to stdout and stderr.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderMap, Response};
use tracing::Instrument as _;

use nexus_runtime::LogSink;

use super::{Dispatch, DispatchFuture, Invocation, Target};
use crate::api::RequestId;
use crate::cloud::PlacementMode;
use crate::cluster::dispatch::NODE_HEADER;
use crate::events::{EventBus, EventKind};
use crate::metrics::Metrics;

/// Counts and times the invocations of the dispatch inside it.
pub struct ObservedDispatch {
    inner: Arc<dyn Dispatch>,
    metrics: Arc<Metrics>,
    events: Arc<dyn EventBus>,
}

impl ObservedDispatch {
    /// Observes `inner` into `metrics`, publishing guest output on `events`.
    pub fn new(inner: Arc<dyn Dispatch>, metrics: Arc<Metrics>, events: Arc<dyn EventBus>) -> Self {
        Self {
            inner,
            metrics,
            events,
        }
    }
}

/// The asynchronous invocation a request runs, as a request extension: its guest's output
/// is published under this id.
#[derive(Debug, Clone)]
pub struct AsyncInvocationId(pub String);

/// Publishes the guest output of `invocation` once it arrives, then hands it to whoever else
/// asked for it (a sink in the request's extensions, or the invocation's); answers the sink
/// the runtime is to deliver to.
fn publish_logs(invocation: &mut Invocation, events: &Arc<dyn EventBus>) -> LogSink {
    let also = invocation
        .request
        .extensions_mut()
        .remove::<LogSink>()
        .or_else(|| invocation.logs.take());
    let (sink, output) = LogSink::channel();
    let target = Arc::clone(&invocation.target);
    let extensions = invocation.request.extensions();
    let request_id = extensions.get::<RequestId>().map(|id| id.0.clone());
    let async_id = extensions.get::<AsyncInvocationId>().map(|id| id.0.clone());
    let agent = invocation.agent.map(|agent| agent.to_string());
    let events = Arc::clone(events);
    tokio::spawn(async move {
        let Ok(log) = output.await else { return };
        for (stream, text) in [("stdout", &log.stdout), ("stderr", &log.stderr)] {
            if text.is_empty() {
                continue;
            }
            events.publish(EventKind::GuestLog {
                project: target.project_id.to_string(),
                function: target.function.clone(),
                version: target.version,
                agent: agent.clone(),
                request_id: request_id.clone(),
                invocation: async_id.clone(),
                stream: stream.to_owned(),
                text: String::from_utf8_lossy(text).into_owned(),
                truncated: log.truncated,
            });
        }
        if let Some(also) = also {
            also.deliver(log);
        }
    });
    sink
}

impl Dispatch for ObservedDispatch {
    fn invoke(&self, invocation: Invocation) -> DispatchFuture<Response<Body>> {
        let (inner, metrics) = (Arc::clone(&self.inner), Arc::clone(&self.metrics));
        let mut invocation = invocation;
        invocation.logs = Some(publish_logs(&mut invocation, &self.events));
        let target = Arc::clone(&invocation.target);
        let span = tracing::info_span!(
            "invoke",
            otel.name = %format_args!("invoke {}", target.function),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            faas.invoked_name = %target.function,
            faas.invoked_provider = tracing::field::Empty,
            faas.version = target.version,
            http.response.status_code = tracing::field::Empty,
            nexus.project = %target.project_id,
            nexus.agent = invocation.agent.map(|agent| agent.to_string()),
        );
        nexus_telemetry::trace::inject(&span, invocation.request.headers_mut());
        let observed = async move {
            let started = Instant::now();
            let answered = inner.invoke(invocation).await;
            let (status, ran_on) = match &answered {
                Ok(response) => (
                    response.status().as_u16(),
                    ran_on(response.headers(), &target),
                ),
                Err(error) => (error.status.as_u16(), placed_on(&target)),
            };
            metrics.invoked(&target, status, ran_on, started.elapsed());
            let span = tracing::Span::current();
            span.record("faas.invoked_provider", provider(ran_on));
            span.record("http.response.status_code", i64::from(status));
            if status >= 500 {
                span.record("otel.status_code", "error");
            }
            answered
        };
        Box::pin(observed.instrument(span))
    }

    fn prepare(&self, target: Arc<Target>) -> DispatchFuture<()> {
        self.inner.prepare(target)
    }

    fn keep_warm(&self, target: Arc<Target>, period: std::time::Duration) -> DispatchFuture<()> {
        self.inner.keep_warm(target, period)
    }
}

/// Where an answered invocation of `target` ran, from the response's `nexus-node` header: a
/// cloud names itself (`aws-lambda:…`), an edge node by its id; in process there is none.
pub fn ran_on(headers: &HeaderMap, target: &Target) -> &'static str {
    let Some(node) = headers
        .get(NODE_HEADER)
        .and_then(|value| value.to_str().ok())
    else {
        return placed_on(target);
    };
    [
        PlacementMode::AwsLambda,
        PlacementMode::AzureFunctions,
        PlacementMode::Gcp,
    ]
    .into_iter()
    .map(PlacementMode::as_str)
    .find(|cloud| {
        node.strip_prefix(cloud)
            .is_some_and(|rest| rest.starts_with(':'))
    })
    .unwrap_or("edge")
}

/// The OpenTelemetry `faas.invoked_provider` of where an invocation ran.
fn provider(ran_on: &str) -> &'static str {
    match ran_on {
        "aws-lambda" => "aws",
        "azure-functions" => "azure",
        "gcp" => "gcp",
        _ => "sirsinexus",
    }
}

/// Where `target`'s placement sends it first.
fn placed_on(target: &Target) -> &'static str {
    match target.placement.mode {
        PlacementMode::Edge | PlacementMode::Auto => "edge",
        cloud => cloud.as_str(),
    }
}
