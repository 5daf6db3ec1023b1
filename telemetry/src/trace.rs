//! Traces: `tracing` spans exported over OTLP/gRPC when the standard variables name an
//! endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`; headers,
//! timeout, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES` and `OTEL_BSP_*` as the
//! OpenTelemetry SDK reads them), and off otherwise. W3C trace context (`traceparent`,
//! `tracestate`) is read from every request a process serves ([`set_parent`]) and written into
//! every request it sends on ([`inject`]), so one trace follows an invocation from the client
//! through the coordinator, the edge node and the guest to what the guest calls.

use opentelemetry::global;
use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::SpanExporter;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// The W3C trace context headers.
pub const TRACE_HEADERS: [&str; 2] = ["traceparent", "tracestate"];

/// Spans of the crates that carry the exports themselves, never exported (they would feed back).
const NOT_EXPORTED: &str = "h2=off,hyper=off,hyper_util=off,tonic=off,tower=off,opentelemetry_sdk=off,opentelemetry-otlp=off";

/// The process's tracing: logs to stderr, and spans to the OTLP endpoint when one is set.
/// Keep it until the process ends, then [`Tracing::shutdown`] to send the last spans.
#[must_use = "spans still queued are sent only by Tracing::shutdown"]
pub struct Tracing {
    provider: Option<SdkTracerProvider>,
}

/// Whether spans are exported: an OTLP endpoint is set, and `OTEL_SDK_DISABLED` is not `true`
/// nor `OTEL_TRACES_EXPORTER` `none`.
pub fn export_configured() -> bool {
    let is = |name: &str, value: &str| {
        std::env::var(name).is_ok_and(|set| set.trim().eq_ignore_ascii_case(value))
    };
    let set = |name: &str| std::env::var(name).is_ok_and(|set| !set.trim().is_empty());
    if is("OTEL_SDK_DISABLED", "true") || is("OTEL_TRACES_EXPORTER", "none") {
        return false;
    }
    set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") || set("OTEL_EXPORTER_OTLP_ENDPOINT")
}

/// Installs the process's subscriber: logs to stderr filtered by `RUST_LOG` (else
/// `default_filter`), and, when [`export_configured`], every `info` span of the process
/// exported as `service` (unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` names it).
/// Must be called within a Tokio runtime, which must outlive the returned [`Tracing`].
pub fn init(service: &'static str, default_filter: &str) -> Tracing {
    global::set_text_map_propagator(TraceContextPropagator::new());
    let logs = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let (provider, failed) = if export_configured() {
        match SpanExporter::builder().with_tonic().build() {
            Ok(exporter) => (
                Some(
                    SdkTracerProvider::builder()
                        .with_resource(resource(service))
                        .with_batch_exporter(exporter)
                        .build(),
                ),
                None,
            ),
            Err(error) => (None, Some(error)),
        }
    } else {
        (None, None)
    };
    let spans = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(service))
            .with_filter(EnvFilter::new(format!("info,{NOT_EXPORTED}")))
    });
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(logs),
        )
        .with(spans)
        .init();
    if let Some(error) = failed {
        tracing::warn!(%error, "traces are not exported: the OTLP exporter could not be set up");
    }
    Tracing { provider }
}

/// The resource of this process's spans: `service` unless the environment names the service
/// (`OTEL_SERVICE_NAME` first, as the specification says, then `OTEL_RESOURCE_ATTRIBUTES`).
fn resource(service: &'static str) -> Resource {
    let builder = Resource::builder();
    let named_by_attributes = std::env::var("OTEL_RESOURCE_ATTRIBUTES").is_ok_and(|attributes| {
        attributes.split(',').any(|pair| {
            pair.split_once('=')
                .is_some_and(|(key, _)| key.trim() == "service.name")
        })
    });
    match std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|name| !name.trim().is_empty())
    {
        Some(name) => builder.with_service_name(name),
        None if named_by_attributes => builder,
        None => builder.with_service_name(service),
    }
    .build()
}

impl Tracing {
    /// Sends the spans still queued and stops exporting (waits at most 5 s).
    pub async fn shutdown(self) {
        if let Some(provider) = self.provider {
            // Blocking: off the runtime's threads, whose tasks carry the export.
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }

    /// Sends the spans queued so far (a Lambda host, before its sandbox may freeze).
    pub async fn flush(&self) {
        if let Some(provider) = self.provider.clone() {
            let _ = tokio::task::spawn_blocking(move || provider.force_flush()).await;
        }
    }
}

/// Makes `span` a child of the trace context in `headers`, if they carry one. Must be called
/// before the span is first entered.
pub fn set_parent(span: &tracing::Span, headers: &http::HeaderMap) {
    if !headers.contains_key(TRACE_HEADERS[0]) {
        return;
    }
    let parent =
        global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)));
    // Fails only when spans are not exported or this one is filtered out: nothing to join.
    let _ = span.set_parent(parent);
}

/// Writes `span`'s trace context into `headers`, replacing any there: whoever receives them
/// continues the trace under `span`. Writes nothing when spans are not exported.
pub fn inject(span: &tracing::Span, headers: &mut http::HeaderMap) {
    let context = span.context();
    global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&context, &mut HeaderInjector(headers));
    });
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

struct HeaderInjector<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(key.as_bytes()),
            http::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}
