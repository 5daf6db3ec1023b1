//! Prometheus metrics: each process keeps its own [`Registry`] (no global state, so several
//! coordinators in one test process count apart), renders it for `/metrics`, and samples
//! gauges of live state (slots, queues, nodes) at scrape time with [`Sampled`].

use std::collections::HashMap;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Encoder as _, TextEncoder};

pub use prometheus::{
    Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry,
};

/// The `Content-Type` of [`render`]'s text.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Bucket bounds, in seconds, for invocation durations: 0.5 ms to 60 s.
pub const DURATION_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// Everything `registry` holds, in the Prometheus text exposition format.
pub fn render(registry: &Registry) -> String {
    let mut text = Vec::new();
    // Encoding to memory fails only on metric families the registry itself refuses to hold.
    if let Err(error) = TextEncoder::new().encode(&registry.gather(), &mut text) {
        return format!("# metrics could not be encoded: {error}\n");
    }
    String::from_utf8(text).unwrap_or_default()
}

/// A counter with `labels`, registered in `registry`.
///
/// # Panics
/// When `name` is not a valid metric name or is registered twice: a programming error, found
/// by the first test that builds the metrics.
#[expect(clippy::expect_used, reason = "names are constants; see # Panics")]
pub fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let counter = IntCounterVec::new(Opts::new(name, help), labels).expect("a valid counter");
    registry
        .register(Box::new(counter.clone()))
        .expect("a counter registered once");
    counter
}

/// A histogram of durations in seconds with `labels`, registered in `registry`.
///
/// # Panics
/// As [`counter`].
#[expect(clippy::expect_used, reason = "names are constants; see # Panics")]
pub fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(DURATION_BUCKETS.to_vec());
    let histogram = HistogramVec::new(opts, labels).expect("a valid histogram");
    registry
        .register(Box::new(histogram.clone()))
        .expect("a histogram registered once");
    histogram
}

/// Gauges whose values are read from live state each time they are scraped: `sample` sets
/// them (after every series was dropped, so a node or queue that went away leaves none).
pub struct Sampled<F> {
    gauges: IntGaugeVec,
    sample: F,
}

impl<F> Sampled<F>
where
    F: Fn(&IntGaugeVec) + Send + Sync + 'static,
{
    /// Registers gauges `name` with `labels` in `registry`, set by `sample` at every scrape.
    ///
    /// # Panics
    /// As [`counter`].
    #[expect(clippy::expect_used, reason = "names are constants; see # Panics")]
    pub fn register(registry: &Registry, name: &str, help: &str, labels: &[&str], sample: F) {
        let gauges = IntGaugeVec::new(Opts::new(name, help), labels).expect("a valid gauge");
        registry
            .register(Box::new(Self { gauges, sample }))
            .expect("a gauge registered once");
    }
}

impl<F> Collector for Sampled<F>
where
    F: Fn(&IntGaugeVec) + Send + Sync,
{
    fn desc(&self) -> Vec<&Desc> {
        self.gauges.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.gauges.reset();
        (self.sample)(&self.gauges);
        self.gauges.collect()
    }
}

/// One gauge without labels, read from `sample` at every scrape.
pub fn sampled_gauge(
    registry: &Registry,
    name: &str,
    help: &str,
    sample: impl Fn() -> i64 + Send + Sync + 'static,
) {
    Sampled::register(registry, name, help, &[], move |gauges| {
        gauges.with_label_values::<&str>(&[]).set(sample());
    });
}

/// A counter kept elsewhere (by a library that counts for itself), read at each scrape.
pub struct SampledCounter<F> {
    desc: Desc,
    sample: F,
}

impl<F> SampledCounter<F>
where
    F: Fn() -> u64 + Send + Sync + 'static,
{
    /// Registers counter `name` in `registry`, read from `sample` at every scrape.
    ///
    /// # Panics
    /// As [`counter`].
    #[expect(clippy::expect_used, reason = "names are constants; see # Panics")]
    pub fn register(registry: &Registry, name: &str, help: &str, sample: F) {
        let desc = Desc::new(name.to_owned(), help.to_owned(), Vec::new(), HashMap::new())
            .expect("a valid counter");
        registry
            .register(Box::new(Self { desc, sample }))
            .expect("a counter registered once");
    }
}

impl<F> Collector for SampledCounter<F>
where
    F: Fn() -> u64 + Send + Sync,
{
    fn desc(&self) -> Vec<&Desc> {
        vec![&self.desc]
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let mut counter = prometheus::proto::Counter::default();
        #[expect(clippy::cast_precision_loss, reason = "counts stay far below 2^53")]
        counter.set_value((self.sample)() as f64);
        let mut metric = prometheus::proto::Metric::default();
        metric.set_counter(counter);
        let mut family = MetricFamily::default();
        family.set_name(self.desc.fq_name.clone());
        family.set_help(self.desc.help.clone());
        family.set_field_type(prometheus::proto::MetricType::COUNTER);
        family.set_metric(vec![metric]);
        vec![family]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampled_gauges_show_only_what_the_last_sample_set() {
        let registry = Registry::new();
        let round = std::sync::atomic::AtomicI64::new(0);
        Sampled::register(
            &registry,
            "nexus_test_slots",
            "Slots.",
            &["node"],
            move |gauges| {
                let now = round.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let node = if now == 0 { "a" } else { "b" };
                gauges.with_label_values(&[node]).set(now + 7);
            },
        );
        let first = render(&registry);
        assert!(first.contains("nexus_test_slots{node=\"a\"} 7"), "{first}");
        let second = render(&registry);
        assert!(
            second.contains("nexus_test_slots{node=\"b\"} 8"),
            "{second}"
        );
        assert!(!second.contains("node=\"a\""), "{second}");
    }

    #[test]
    fn counters_and_histograms_render_in_the_text_format() {
        let registry = Registry::new();
        let calls = counter(&registry, "nexus_test_calls_total", "Calls.", &["status"]);
        let took = histogram(&registry, "nexus_test_seconds", "Time.", &[]);
        calls.with_label_values(&["200"]).inc_by(3);
        took.with_label_values::<&str>(&[]).observe(0.003);
        let text = render(&registry);
        assert!(
            text.contains("# TYPE nexus_test_calls_total counter"),
            "{text}"
        );
        assert!(
            text.contains("nexus_test_calls_total{status=\"200\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("nexus_test_seconds_bucket{le=\"0.005\"} 1"),
            "{text}"
        );
        assert!(text.contains("nexus_test_seconds_count 1"), "{text}");
    }

    #[test]
    fn sampled_counters_read_their_source_at_each_scrape() {
        let registry = Registry::new();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(4));
        let source = std::sync::Arc::clone(&hits);
        SampledCounter::register(&registry, "nexus_test_hits_total", "Hits.", move || {
            source.load(std::sync::atomic::Ordering::Relaxed)
        });
        assert!(
            render(&registry)
                .contains("# TYPE nexus_test_hits_total counter\nnexus_test_hits_total 4\n")
        );
        hits.store(9, std::sync::atomic::Ordering::Relaxed);
        assert!(render(&registry).contains("nexus_test_hits_total 9\n"));
    }
}
