//! An OTLP collector for the tests: the collector's gRPC `TraceService` on loopback, keeping
//! every span it is sent; and an HTTP server that remembers the `traceparent` it is called with.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::routing::get;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use tokio::net::TcpListener;
use tokio::sync::{Mutex, mpsc};

/// OTLP's span kinds, as the wire carries them.
pub const SERVER: i32 = SpanKind::Server as i32;
pub const CLIENT: i32 = SpanKind::Client as i32;
pub const CONSUMER: i32 = SpanKind::Consumer as i32;

const WAIT: Duration = Duration::from_secs(60);

/// A span as exported, ids in hex.
#[derive(Debug, Clone)]
pub struct Span {
    pub service: String,
    pub name: String,
    pub kind: i32,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub attributes: Vec<(String, String)>,
}

impl Span {
    /// The attribute `key`, as text.
    pub fn attribute(&self, key: &str) -> Option<String> {
        self.attributes
            .iter()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value.clone())
    }
}

pub struct Collector {
    address: SocketAddr,
    received: Mutex<(mpsc::UnboundedReceiver<Span>, Vec<Span>)>,
}

struct Service(mpsc::UnboundedSender<Span>);

#[tonic::async_trait]
impl TraceService for Service {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        for resource_spans in request.into_inner().resource_spans {
            let resource = resource_spans.resource.unwrap_or_default().attributes;
            let service = text(&resource, "service.name").unwrap_or_default();
            for span in resource_spans
                .scope_spans
                .into_iter()
                .flat_map(|scope| scope.spans)
            {
                let _ = self.0.send(Span {
                    service: service.clone(),
                    name: span.name,
                    kind: span.kind,
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent_span_id: hex::encode(&span.parent_span_id),
                    attributes: span
                        .attributes
                        .iter()
                        .filter_map(|pair| {
                            Some((
                                pair.key.clone(),
                                text(std::slice::from_ref(pair), &pair.key)?,
                            ))
                        })
                        .collect(),
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Attribute `key` of `attributes` as text, whatever its type.
fn text(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes
        .iter()
        .find(|pair| pair.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match value {
        Value::StringValue(text) => text.clone(),
        Value::BoolValue(flag) => flag.to_string(),
        Value::IntValue(number) => number.to_string(),
        Value::DoubleValue(number) => number.to_string(),
        other => format!("{other:?}"),
    })
}

impl Collector {
    /// A collector on a loopback port of its own.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (sender, receiver) = mpsc::unbounded_channel();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(Service(sender)))
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        Self {
            address,
            received: Mutex::new((receiver, Vec::new())),
        }
    }

    /// `http://address`, for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every span received, once `done` holds for them.
    pub async fn spans_until(&self, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
        let mut received = self.received.lock().await;
        let (receiver, spans) = &mut *received;
        tokio::time::timeout(WAIT, async {
            while !done(spans) {
                spans.push(receiver.recv().await.expect("the collector stopped"));
            }
        })
        .await
        .unwrap_or_else(|_| panic!("the spans never arrived; received: {spans:#?}"));
        spans.clone()
    }
}

/// An HTTP server that answers `ok` and remembers the `traceparent` of each request.
pub struct TraceparentEcho {
    address: SocketAddr,
    received: Mutex<mpsc::UnboundedReceiver<String>>,
}

impl TraceparentEcho {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (sender, receiver) = mpsc::unbounded_channel();
        let router = Router::new().route(
            "/",
            get(move |headers: HeaderMap| {
                let sender = sender.clone();
                async move {
                    let traceparent = headers
                        .get("traceparent")
                        .map(|value| value.to_str().unwrap().to_owned())
                        .unwrap_or_default();
                    let _ = sender.send(traceparent);
                    "ok"
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            address,
            received: Mutex::new(receiver),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}/", self.address)
    }

    /// The `traceparent` of the next request.
    pub async fn received(&self) -> String {
        tokio::time::timeout(WAIT, self.received.lock().await.recv())
            .await
            .expect("nothing called")
            .unwrap()
    }
}
