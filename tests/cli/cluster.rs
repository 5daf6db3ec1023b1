//! A cluster of real processes on loopback: `nexus coordinator --cluster` on Postgres and
//! `nexus-edge` nodes. Requests spread evenly, survive a node killed with SIGKILL, avoid a
//! drained node; a restarted node reuses its compiled components; accepted asynchronous
//! invocations survive crashes ([`durability`]); the autoscaling signal follows the load
//! ([`autoscale`]); idle apps scale to zero but for a `min_warm` pool ([`warm`]); a node cut
//! off from the coordinator keeps serving its own ingress and forwards what it did once back
//! ([`store_forward`]).
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test reports failures by panicking"
)]

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use http::{Request, StatusCode};
use http_body_util::Full;
use nexus_tests::HttpClient;
use nexus_tests::postgres::FreshDatabase;
use tokio::process::Command;

#[path = "cluster/processes.rs"]
mod processes;

#[path = "cluster/durability.rs"]
mod durability;

#[path = "cluster/autoscale.rs"]
mod autoscale;

#[path = "cluster/warm.rs"]
mod warm;

#[path = "cluster/store_forward.rs"]
mod store_forward;

use nexus_tests::PrivateRedis;
use processes::{Coordinator, Edge, served_by};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_spread_evenly_and_survive_a_node_killed_mid_run() {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::start(&database, &state.path().join("coordinator")).await;
    let mut edges = Vec::new();
    for name in ["a", "b", "c"] {
        edges.push(Edge::start(&coordinator, name, &state.path().join(name)).await);
    }
    coordinator.deploy().await;

    let mut counts: HashMap<String, u32> = HashMap::new();
    for _ in 0..300 {
        *counts
            .entry(served_by(&coordinator.invoke().await))
            .or_default() += 1;
    }
    assert_eq!(counts.len(), 3, "{counts:?}");
    for (node, count) in &counts {
        assert!(
            (90..=110).contains(count),
            "node {node} served {count} of 300: {counts:?}"
        );
    }

    let mut victim = edges.remove(0);
    victim.child.start_kill().unwrap();
    victim.child.wait().await.unwrap();
    let mut survivors = HashMap::<String, u32>::new();
    for _ in 0..100 {
        let response = coordinator.invoke().await;
        *survivors.entry(served_by(&response)).or_default() += 1;
    }
    assert!(!survivors.contains_key(&victim.id), "{survivors:?}");
    assert_eq!(survivors.len(), 2, "{survivors:?}");
    // A request that is not idempotent succeeds as well once the node is known lost.
    let post = Request::post(format!("{}/shop/echo/order", coordinator.base))
        .body(Full::from("one order"))
        .unwrap();
    let ordered = coordinator.client.send(post).await;
    assert_eq!(ordered.status, StatusCode::OK, "{}", ordered.text());
    assert_eq!(coordinator.node_states().await[&victim.id], "lost");
}

/// Thousands of invocations, with and without request bodies, over the one connection to the
/// node: none fails and the node is never lost. (h2 closes a connection after resetting 1,024
/// streams on its own account, as it does when a frame arrives for a stream already dropped;
/// both sides read each invocation stream to its end so that none is.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_invocations_keep_the_connection_to_the_node() {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::start(&database, &state.path().join("coordinator")).await;
    let edge = Edge::start(&coordinator, "a", &state.path().join("a")).await;
    coordinator.deploy().await;
    let callers: Vec<_> = (0..32)
        .map(|caller| {
            let (client, base, node) = (
                coordinator.client.clone(),
                coordinator.base.clone(),
                edge.id.clone(),
            );
            tokio::spawn(async move {
                for call in 0..100 {
                    let request = if (caller + call) % 2 == 0 {
                        Request::get(format!("{base}/shop/echo/hello")).body(Full::default())
                    } else {
                        Request::post(format!("{base}/shop/echo/order"))
                            .header("idempotency-key", format!("{caller}-{call}"))
                            .body(Full::from("one order"))
                    };
                    let response = client.send(request.unwrap()).await;
                    assert_eq!(served_by(&response), node, "call {call} of caller {caller}");
                }
            })
        })
        .collect();
    for caller in callers {
        caller.await.unwrap();
    }
    assert_eq!(coordinator.node_states().await[&edge.id], "active");
}

/// Request bodies reach the node whole at every size: sent with the invocation's head, past
/// the first window the node grants, and streamed rather than held (over 1 MiB) across several
/// windows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_of_every_size_reach_the_node_whole() {
    let (_database, _state, coordinator, edge) = one_node_with_hello().await;
    for size in [0, 1, 65_535, 65_536, 1024 * 1024 + 1, 5 * 1024 * 1024] {
        let request = Request::post(format!("{}/shop/echo/upload", coordinator.base))
            .body(Full::from(vec![b'x'; size]))
            .unwrap();
        let response = coordinator.client.send(request).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{size}: {}",
            response.text()
        );
        assert_eq!(served_by(&response), edge.id);
        assert_eq!(response.json()["body_len"], size, "{size}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drained_node_finishes_and_takes_no_more_work() {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::start(&database, &state.path().join("coordinator")).await;
    let a = Edge::start(&coordinator, "a", &state.path().join("a")).await;
    let b = Edge::start(&coordinator, "b", &state.path().join("b")).await;
    coordinator.deploy().await;

    let refused = coordinator.nodes("not-the-token").await;
    assert_eq!(
        refused.status,
        StatusCode::UNAUTHORIZED,
        "{}",
        refused.text()
    );
    let listed = nexus_nodes(&coordinator, &[]).await;
    assert!(listed.contains(&a.id) && listed.contains(&b.id), "{listed}");
    let drained: serde_json::Value =
        serde_json::from_str(&nexus_nodes(&coordinator, &["drain", &a.id, "--json"]).await)
            .unwrap();
    assert_eq!(drained["node"]["state"], "draining");
    for _ in 0..20 {
        assert_eq!(served_by(&coordinator.invoke().await), b.id);
    }
    let states = coordinator.node_states().await;
    assert_eq!(states[&a.id], "draining");
    assert_eq!(states[&b.id], "active");
    let ready = coordinator.client.get(&format!("{}/readyz", a.base)).await;
    assert_eq!(ready.status, StatusCode::SERVICE_UNAVAILABLE);

    let bad_priority = Request::get(format!("{}/shop/echo/", coordinator.base))
        .header("nexus-priority", "urgent")
        .body(Full::default())
        .unwrap();
    let refused = coordinator.client.send(bad_priority).await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.text()
    );
    let critical = Request::get(format!("{}/shop/echo/", coordinator.base))
        .header("nexus-priority", "critical")
        .body(Full::default())
        .unwrap();
    assert_eq!(served_by(&coordinator.client.send(critical).await), b.id);

    b.stop().await;
    let unplaced = coordinator.invoke().await;
    assert_eq!(
        unplaced.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        unplaced.text()
    );
    assert_eq!(unplaced.json()["error"]["code"], "no_node_available");
    assert!(unplaced.headers.contains_key("retry-after"));
}

/// `nexus nodes ARGS` against the coordinator; its standard output.
async fn nexus_nodes(coordinator: &Coordinator, args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_nexus"))
        .arg("nodes")
        .args(args)
        .args(["--coordinator", &coordinator.base])
        .env("NEXUS_NODE_TOKEN", &coordinator.token)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "nexus nodes {args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// A coordinator with `hello` deployed and one node, `a`, whose state is under `node/` of the
/// returned directory.
async fn one_node_with_hello() -> (FreshDatabase, tempfile::TempDir, Coordinator, Edge) {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::start(&database, &state.path().join("coordinator")).await;
    let edge = Edge::start(&coordinator, "a", &state.path().join("node")).await;
    coordinator.deploy().await;
    (database, state, coordinator, edge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_node_reuses_its_components_and_compiled_code() {
    let (_database, state, coordinator, edge) = one_node_with_hello().await;
    let node_state = state.path().join("node");
    served_by(&coordinator.invoke().await);
    let client = HttpClient::default();
    assert!(
        edge.metric(&client, "nexus_edge_compile_cache_misses_total")
            .await
            >= 1
    );
    edge.stop().await;

    let edge = Edge::start(&coordinator, "a", &node_state).await;
    let response = coordinator.invoke().await;
    assert_eq!(served_by(&response), edge.id);
    assert!(
        edge.metric(&client, "nexus_edge_compile_cache_hits_total")
            .await
            >= 1
    );
    assert_eq!(
        edge.metric(&client, "nexus_edge_compile_cache_misses_total")
            .await,
        0,
        "the restarted node compiled again"
    );
}

/// Once a node has loaded a function, its invocations need nothing from disk: the component
/// bytes are compiled into memory, so the hot path does no file-system call per invocation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loaded_function_runs_without_reading_its_artifacts_again() {
    let (_database, state, coordinator, edge) = one_node_with_hello().await;
    let node_state = state.path().join("node");
    assert_eq!(served_by(&coordinator.invoke().await), edge.id);
    let artifacts = node_state.join("artifacts");
    let mut removed = 0;
    for entry in std::fs::read_dir(&artifacts).unwrap() {
        std::fs::remove_file(entry.unwrap().path()).unwrap();
        removed += 1;
    }
    assert!(removed >= 1, "the node kept no artifact in {artifacts:?}");
    for _ in 0..3 {
        assert_eq!(served_by(&coordinator.invoke().await), edge.id);
    }
    // A node that looked for the bytes again would have fetched and stored them again.
    assert_eq!(
        std::fs::read_dir(&artifacts).unwrap().count(),
        0,
        "the node went back to its artifacts"
    );
}

/// The 99th percentile of `latencies`.
fn p99(mut latencies: Vec<Duration>) -> Duration {
    latencies.sort();
    latencies[(latencies.len() * 99 / 100).min(latencies.len() - 1)]
}

/// A call to `shop/slow` that sleeps `ms` at `priority`.
fn slow_call(base: &str, ms: u32, priority: &str) -> Request<Full<bytes::Bytes>> {
    Request::get(format!("{base}/shop/slow/?ms={ms}"))
        .header("nexus-priority", priority)
        .body(Full::default())
        .unwrap()
}

async fn critical_latencies(coordinator: &Coordinator, count: usize) -> Vec<Duration> {
    let mut latencies = Vec::with_capacity(count);
    for _ in 0..count {
        let request = slow_call(&coordinator.base, 100, "critical");
        let started = Instant::now();
        let response = coordinator.client.send(request).await;
        latencies.push(started.elapsed());
        assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    }
    latencies
}

/// Waits until the node reports `expected` invocations running.
async fn until_in_flight(edge: &Edge, client: &HttpClient, expected: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let running = edge
            .metric(client, "nexus_edge_invocations_in_flight")
            .await;
        if running == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{running} invocations running, waited for {expected}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Low calls are slow (1 s) and few per second, so the flood holds every slot `low` may take
/// without loading the CPU: what it could delay is admission, which is what this measures.
/// Without a share kept back for higher classes a critical call waits up to a second for a slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_low_priority_work_does_not_delay_critical_work() {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::start(&database, &state.path().join("coordinator")).await;
    let edge = Edge::start_with(
        &coordinator,
        "a",
        &state.path().join("a"),
        &["--instance-slots", "4"],
    )
    .await;
    coordinator.deploy_component("sleep", "slow").await;
    let quiet = p99(critical_latencies(&coordinator, 30).await);

    let flooding = Arc::new(AtomicBool::new(true));
    let mut flood = Vec::new();
    for _ in 0..12 {
        let (client, base, flooding) = (
            coordinator.client.clone(),
            coordinator.base.clone(),
            Arc::clone(&flooding),
        );
        flood.push(tokio::spawn(async move {
            let mut served = 0u32;
            while flooding.load(Ordering::Relaxed) {
                let request = slow_call(&base, 1000, "low");
                if client.send(request).await.status == StatusCode::OK {
                    served += 1;
                }
            }
            served
        }));
    }
    // 12 callers on the 3 slots low work may fill: 9 always wait in the low queue.
    until_in_flight(&edge, &coordinator.client, 3).await;
    let loaded = p99(critical_latencies(&coordinator, 30).await);
    flooding.store(false, Ordering::Relaxed);
    let mut low_served = 0;
    for task in flood {
        low_served += task.await.unwrap();
    }
    eprintln!("critical p99 {quiet:?} quiet, {loaded:?} under {low_served} low calls");
    assert!(
        low_served >= 6,
        "only {low_served} low requests ran: no flood"
    );
    assert!(
        loaded <= quiet * 2,
        "critical p99 {loaded:?} under a low-priority flood, {quiet:?} without"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_selector_keeps_a_function_on_nodes_with_its_labels() {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::start(&database, &state.path().join("coordinator")).await;
    let gpu = Edge::start_with(
        &coordinator,
        "gpu",
        &state.path().join("gpu"),
        &["--label", "gpu=true"],
    )
    .await;
    let _plain = Edge::start(&coordinator, "plain", &state.path().join("plain")).await;
    coordinator.deploy().await;
    let select = |selector: &'static str| {
        let token = coordinator.access_token.clone();
        let coordinator = &coordinator;
        async move {
            let body = format!(r#"{{"node_selector":{selector}}}"#);
            let changed = coordinator
                .send_json(
                    http::Method::PATCH,
                    "/v1/projects/shop/functions/echo",
                    &body,
                    Some(&token),
                )
                .await;
            assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
        }
    };
    select(r#"{"gpu":"true"}"#).await;
    for _ in 0..20 {
        assert_eq!(served_by(&coordinator.invoke().await), gpu.id);
    }
    select(r#"{"gpu":"false"}"#).await;
    let unplaced = coordinator.invoke().await;
    assert_eq!(
        unplaced.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        unplaced.text()
    );
    assert_eq!(unplaced.json()["error"]["code"], "no_matching_node");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_messages_run_one_at_a_time_across_nodes() {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::start(&database, &state.path().join("coordinator")).await;
    let redis = ["--kv", &nexus_tests::redis_url()].map(str::to_owned);
    let redis: Vec<&str> = redis.iter().map(String::as_str).collect();
    let _a = Edge::start_with(&coordinator, "a", &state.path().join("a"), &redis).await;
    let _b = Edge::start_with(&coordinator, "b", &state.path().join("b"), &redis).await;
    let agent = counter_agent(&coordinator, "tally").await;
    let token = coordinator.access_token.clone();
    let path = format!("/v1/projects/shop/agents/{agent}/messages");

    // The counter reads, adds one and writes back in Redis, which both nodes share: two
    // messages that overlapped would answer the same count.
    let answers =
        futures::future::join_all((0..200).map(|_| coordinator.post_json(&path, "", Some(&token))))
            .await;
    let mut counts = Vec::new();
    let mut nodes = HashMap::<String, u32>::new();
    for answer in &answers {
        *nodes.entry(served_by(answer)).or_default() += 1;
        counts.push(answer.text().parse::<u32>().unwrap());
    }
    counts.sort_unstable();
    counts.dedup();
    assert_eq!(counts.len(), 200, "messages overlapped");
    assert_eq!(counts.first().zip(counts.last()), Some((&1, &200)));
    assert_eq!(nodes.len(), 2, "both nodes ran messages: {nodes:?}");
    // The project's own store is not the agent's.
    let plain = coordinator
        .client
        .get(&format!("{}/shop/counter/", coordinator.base))
        .await;
    assert_eq!(plain.status, StatusCode::OK, "{}", plain.text());
    assert_eq!(plain.text(), "1");
}

/// Deploys `counter` (every path, the `default` store) as `shop/counter` and creates an agent
/// `name` of it; the agent's id.
async fn counter_agent(coordinator: &Coordinator, name: &str) -> String {
    coordinator
        .deploy_bytes(
            "counter",
            "application/x-tar",
            nexus_tests::app_tar(nexus_tests::COUNTER_APP, &[("counter.wasm", "counter")]),
        )
        .await;
    coordinator.create_agent(name, "counter").await
}

/// Sends one message to the agent at `path`; a message that fails while a restarted part of
/// the cluster comes back is sent again, until `deadline`.
async fn message_until_answered(
    coordinator: &Coordinator,
    path: &str,
    deadline: Instant,
) -> String {
    loop {
        let token = coordinator.access_token.clone();
        let answer = coordinator.post_json(path, "", Some(&token)).await;
        if answer.status == StatusCode::OK {
            return answer.text();
        }
        assert!(
            Instant::now() < deadline,
            "no answer: {} {}",
            answer.status,
            answer.text()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_context_survives_restarts_of_its_node_redis_and_the_coordinator() {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let socket = state.path().join("redis.sock");
    let redis = PrivateRedis::start(&socket);
    let cache = redis.url();
    // The context is recorded in Postgres (the cluster's own database), cached in Redis.
    let kv = ["--kv", database.url(), "--kv-cache", &cache];
    let coordinator_state = state.path().join("coordinator");
    let coordinator = Coordinator::start_with(&database, &coordinator_state, &kv).await;
    let node = Edge::start_with(&coordinator, "a", &state.path().join("a"), &kv).await;
    let agent = counter_agent(&coordinator, "durable").await;
    let path = format!("/v1/projects/shop/agents/{agent}/messages");
    let deadline = || Instant::now() + Duration::from_secs(20);
    assert_eq!(
        message_until_answered(&coordinator, &path, deadline()).await,
        "1"
    );

    // Each count was written before its answer: killing any part loses none.
    node.kill().await;
    let node = Edge::start_with(&coordinator, "b", &state.path().join("b"), &kv).await;
    assert_eq!(
        message_until_answered(&coordinator, &path, deadline()).await,
        "2"
    );

    redis.kill();
    let _redis = PrivateRedis::start(&socket);
    assert_eq!(
        message_until_answered(&coordinator, &path, deadline()).await,
        "3"
    );

    coordinator.kill().await;
    node.kill().await;
    let coordinator = Coordinator::restart(&database, &coordinator_state, &kv).await;
    let _node = Edge::start_with(&coordinator, "c", &state.path().join("c"), &kv).await;
    assert_eq!(
        message_until_answered(&coordinator, &path, deadline()).await,
        "4"
    );
    let request = Request::get(format!(
        "{}/v1/projects/shop/agents/{agent}/context/count",
        coordinator.base
    ))
    .header(
        "authorization",
        format!("Bearer {}", coordinator.access_token),
    )
    .body(Full::default())
    .unwrap();
    let read = coordinator.client.send(request).await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    assert_eq!(read.text(), "4");
}
