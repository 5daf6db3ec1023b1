//! An edge runtime's metrics, `nexus_edge_*`: invocations by status and their durations, cold
//! starts (an app loaded for the request that needed it) and how long they took, and, sampled
//! at each scrape, the instance pool, the admission queue and the compile cache. A node serves
//! them at `/metrics`; the embedded platform adds them to the coordinator's.

use std::sync::Arc;
use std::time::Duration;

use nexus_runtime::Runtime;
use nexus_telemetry::metrics::{
    self, HistogramVec, IntCounterVec, Registry, Sampled, SampledCounter,
};

/// What an [`crate::AppHost`] counts.
pub struct EdgeMetrics {
    registry: Registry,
    invocations: IntCounterVec,
    durations: HistogramVec,
    cold_starts: IntCounterVec,
    cold_start_durations: HistogramVec,
    unloads: IntCounterVec,
}

impl EdgeMetrics {
    /// The metrics of `runtime`, in a registry of their own.
    pub fn new(runtime: &Arc<Runtime>) -> Self {
        let registry = Registry::new();
        let metrics = Self {
            invocations: metrics::counter(
                &registry,
                "nexus_edge_invocations_total",
                "Invocations this runtime answered, by HTTP status.",
                &["status"],
            ),
            durations: metrics::histogram(
                &registry,
                "nexus_edge_invocation_duration_seconds",
                "Time from a request's arrival to its response head, cold starts included.",
                &[],
            ),
            cold_starts: metrics::counter(
                &registry,
                "nexus_edge_cold_starts_total",
                "Invocations that waited for their app to be loaded (components read, checked and compiled or taken from the compile cache).",
                &["app"],
            ),
            cold_start_durations: metrics::histogram(
                &registry,
                "nexus_edge_cold_start_duration_seconds",
                "How long loading an app took.",
                &["app"],
            ),
            unloads: metrics::counter(
                &registry,
                "nexus_edge_idle_unloads_total",
                "Apps unloaded after idling (scale to zero); their next request is a cold start.",
                &[],
            ),
            registry,
        };
        let limits = runtime.limits().clone();
        let pool = Arc::clone(runtime);
        Sampled::register(
            &metrics.registry,
            "nexus_edge_instance_slots",
            "Instance slots, by use: busy (an instance runs) or free.",
            &["use"],
            move |gauges| {
                let free = pool.free_instance_slots();
                let total = usize::try_from(limits.max_instances).unwrap_or(usize::MAX);
                let gauge = |value: usize| i64::try_from(value).unwrap_or(i64::MAX);
                gauges.with_label_values(&["free"]).set(gauge(free));
                gauges
                    .with_label_values(&["busy"])
                    .set(gauge(total.saturating_sub(free)));
            },
        );
        let compiled = Arc::clone(runtime);
        metrics::sampled_gauge(
            &metrics.registry,
            "nexus_edge_compiled_components",
            "Components whose compiled code this runtime holds in memory.",
            move || i64::try_from(compiled.cached_components()).unwrap_or(i64::MAX),
        );
        let queue = Arc::clone(runtime);
        metrics::sampled_gauge(
            &metrics.registry,
            "nexus_edge_queued_invocations",
            "Invocations waiting for an instance slot.",
            move || i64::from(queue.queued_invocations()),
        );
        for (name, help, hit) in [
            (
                "nexus_edge_compile_cache_hits_total",
                "Components whose compiled code was read from disk.",
                true,
            ),
            (
                "nexus_edge_compile_cache_misses_total",
                "Components compiled and written to disk.",
                false,
            ),
        ] {
            let cache = Arc::clone(runtime);
            SampledCounter::register(&metrics.registry, name, help, move || {
                let count = cache
                    .compile_cache_stats()
                    .map_or(0, |stats| if hit { stats.hits } else { stats.misses });
                u64::try_from(count).unwrap_or(u64::MAX)
            });
        }
        metrics
    }

    /// Adds `nexus_edge_loaded_apps`, read from `loaded` at each scrape.
    pub(crate) fn observe_loaded_apps(&self, loaded: impl Fn() -> usize + Send + Sync + 'static) {
        metrics::sampled_gauge(
            &self.registry,
            "nexus_edge_loaded_apps",
            "Deployments loaded (or loading) in this runtime: zero once every app idled out.",
            move || i64::try_from(loaded()).unwrap_or(i64::MAX),
        );
    }

    /// `apps` apps were unloaded after idling.
    pub(crate) fn unloaded(&self, apps: usize) {
        self.unloads
            .with_label_values::<&str>(&[])
            .inc_by(u64::try_from(apps).unwrap_or(u64::MAX));
    }

    /// The registry, to render or to add to.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// An invocation answered `status` after `took`.
    pub(crate) fn invoked(&self, status: u16, took: Duration) {
        self.invocations
            .with_label_values(&[&status.to_string()])
            .inc();
        self.durations
            .with_label_values::<&str>(&[])
            .observe(took.as_secs_f64());
    }

    /// App `app` was loaded for a request, in `took`.
    pub(crate) fn loaded(&self, app: &str, took: Duration) {
        self.cold_start_durations
            .with_label_values(&[app])
            .observe(took.as_secs_f64());
    }

    /// A request waited for app `app` to load.
    pub(crate) fn cold_start(&self, app: &str) {
        self.cold_starts.with_label_values(&[app]).inc();
    }
}
