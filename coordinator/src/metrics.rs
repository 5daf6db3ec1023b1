//! The coordinator's metrics, served at `/metrics` in the Prometheus text format: invocations
//! by project, function, version, status and where they ran, their durations, asynchronous
//! retries and dead letters, and (sampled at each scrape) the cluster's nodes and scheduler
//! queues. The embedded platform's runtime adds its own (`nexus_edge_*`) to the same registry.
//!
//! `project` labels carry the project's id, as events do: it never changes, a name may.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nexus_telemetry::metrics::{self, HistogramVec, IntCounterVec, Registry, Sampled};

use crate::cluster::autoscale::desired_nodes;
use crate::cluster::scheduler::Scheduler;
use crate::cluster::{NodeRegistry, Priority};
use crate::dispatch::Target;

/// The coordinator's metrics, in a registry of its own.
pub struct Metrics {
    registry: Registry,
    /// Other parts' registries shown with this one (the embedded platform's runtime).
    included: Mutex<Vec<Registry>>,
    invocations: IntCounterVec,
    durations: HistogramVec,
    retries: IntCounterVec,
    dead_letters: IntCounterVec,
}

impl Default for Metrics {
    fn default() -> Self {
        let registry = Registry::new();
        Self {
            invocations: metrics::counter(
                &registry,
                "nexus_invocations_total",
                "Invocations answered, by function version, HTTP status and where they ran (edge, aws-lambda, azure-functions, gcp).",
                &["project", "function", "version", "status", "target"],
            ),
            durations: metrics::histogram(
                &registry,
                "nexus_invocation_duration_seconds",
                "Time from dispatch to the function's response head.",
                &["project", "function", "target"],
            ),
            retries: metrics::counter(
                &registry,
                "nexus_async_retries_total",
                "Attempts of asynchronous invocations that failed and were scheduled again.",
                &["project", "function"],
            ),
            dead_letters: metrics::counter(
                &registry,
                "nexus_async_dead_letters_total",
                "Asynchronous invocations moved to the dead-letter list.",
                &["project", "function"],
            ),
            registry,
            included: Mutex::default(),
        }
    }
}

impl Metrics {
    /// The registry to render, or to add other metrics to.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Shows `registry`'s metrics with these.
    pub fn include(&self, registry: Registry) {
        self.included
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(registry);
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = metrics::render(&self.registry);
        for registry in self
            .included
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
        {
            text.push_str(&metrics::render(registry));
        }
        text
    }

    /// An invocation of `target` answered `status` after `took`, having run on `ran_on`.
    pub(crate) fn invoked(&self, target: &Target, status: u16, ran_on: &str, took: Duration) {
        let project = target.project_id.to_string();
        let version = target.version.to_string();
        let status = status.to_string();
        self.invocations
            .with_label_values(&[&project, &target.function, &version, &status, ran_on])
            .inc();
        self.durations
            .with_label_values(&[&project, &target.function, ran_on])
            .observe(took.as_secs_f64());
    }

    /// An attempt of an asynchronous invocation of `function` failed and will run again.
    pub(crate) fn retried(&self, project: &str, function: &str) {
        self.retries.with_label_values(&[project, function]).inc();
    }

    /// An asynchronous invocation of `function` was dead-lettered.
    pub(crate) fn dead_lettered(&self, project: &str, function: &str) {
        self.dead_letters
            .with_label_values(&[project, function])
            .inc();
    }

    /// Adds the cluster's nodes, sampled at each scrape: how many are in each lease state,
    /// and each schedulable node's slots in use and free.
    pub fn observe_nodes(&self, nodes: &Arc<NodeRegistry>) {
        let registry = Arc::clone(nodes);
        Sampled::register(
            &self.registry,
            "nexus_nodes",
            "Edge nodes known to this coordinator, by lease state (active, draining, lost).",
            &["state"],
            move |gauges| {
                for (state, count) in registry.count_by_state() {
                    gauges.with_label_values(&[state]).set(count);
                }
            },
        );
        let registry = Arc::clone(nodes);
        Sampled::register(
            &self.registry,
            "nexus_node_instance_slots",
            "Instance slots of each schedulable node, by use: busy (invocations this coordinator has running there) or free (as the node last reported).",
            &["node", "region", "use"],
            move |gauges| {
                for (node, region, busy, free) in registry.slot_use() {
                    gauges
                        .with_label_values(&[&node, &region, "busy"])
                        .set(i64::from(busy));
                    gauges
                        .with_label_values(&[&node, &region, "free"])
                        .set(i64::from(free));
                }
            },
        );
    }

    /// Adds `nexus_edge_nodes_desired`, the autoscaling signal, from `nodes` and `scheduler`
    /// at each scrape, for `target` utilization of the nodes' slots.
    pub fn observe_autoscaling(
        &self,
        nodes: &Arc<NodeRegistry>,
        scheduler: Scheduler,
        target: f64,
    ) {
        let nodes = Arc::clone(nodes);
        metrics::sampled_gauge(
            &self.registry,
            "nexus_edge_nodes_desired",
            "Edge nodes the cluster should have for its work now: slots in use and invocations waiting (here and on the nodes), over the average node's slots at the target utilization; at least 1.",
            move || {
                let mut demand = nodes.demand();
                let waiting: usize = Priority::ALL
                    .iter()
                    .map(|priority| scheduler.queued(*priority))
                    .sum();
                demand.queued += u64::try_from(waiting).unwrap_or(u64::MAX);
                i64::try_from(desired_nodes(demand, target)).unwrap_or(i64::MAX)
            },
        );
    }

    /// Adds the depth of `scheduler`'s queues by priority class, sampled at each scrape.
    pub fn observe_scheduler(&self, scheduler: Scheduler) {
        Sampled::register(
            &self.registry,
            "nexus_scheduler_queue_depth",
            "Invocations waiting for an instance slot, by priority class.",
            &["priority"],
            move |gauges| {
                for priority in Priority::ALL {
                    let depth = scheduler.queued(priority);
                    gauges
                        .with_label_values(&[priority.as_str()])
                        .set(i64::try_from(depth).unwrap_or(i64::MAX));
                }
            },
        );
    }
}
