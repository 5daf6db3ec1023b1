//! What operators see, end to end with real processes: a real Prometheus server scrapes the
//! coordinator's and an edge node's `/metrics` and answers queries over its HTTP API; an OTLP
//! collector (the collector's gRPC `TraceService`) receives the spans of the coordinator, the
//! node and the guest's outbound call, which form one trace with W3C trace context carried
//! across every hop.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test reports failures by panicking"
)]

use http::{Request, StatusCode};
use http_body_util::Full;
use nexus_tests::HttpClient;
use nexus_tests::postgres::FreshDatabase;

#[path = "cluster/processes.rs"]
#[allow(dead_code, reason = "the cluster tests use the rest")]
mod processes;

#[path = "observability/collector.rs"]
mod collector;

#[path = "observability/prometheus.rs"]
mod prometheus;

use collector::{Collector, Span};
use processes::{Coordinator, Edge};
use prometheus::Prometheus;

/// The sum of the values of `metric`'s series whose labels include every one of `labels`
/// (`name="value"`), in the Prometheus text format of `text`.
fn sample(text: &str, metric: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (name, rest) = series.split_once('{').unwrap_or((series, ""));
            (name == metric && labels.iter().all(|label| rest.contains(label)))
                .then(|| value.parse::<f64>().unwrap())
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_coordinator_and_a_node_and_answers_queries() {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::start(&database, &state.path().join("coordinator")).await;
    coordinator.deploy().await;
    coordinator.deploy_component("bad-trap", "trap").await;
    // The node joins after the deploys: its first request loads the app, a cold start.
    let edge = Edge::start(&coordinator, "a", &state.path().join("a")).await;
    let client = HttpClient::default();
    for _ in 0..3 {
        let echoed = coordinator.invoke().await;
        assert_eq!(echoed.status, StatusCode::OK, "{}", echoed.text());
    }
    let trapped = client
        .get(&format!("{}/shop/trap/", coordinator.base))
        .await;
    assert_eq!(trapped.status, StatusCode::INTERNAL_SERVER_ERROR);

    let scraped = client.get(&format!("{}/metrics", coordinator.base)).await;
    assert_eq!(scraped.status, StatusCode::OK);
    assert!(
        scraped.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
    );
    let text = scraped.text();
    let echo = [
        r#"function="echo""#,
        r#"version="1""#,
        r#"status="200""#,
        r#"target="edge""#,
    ];
    assert_eq!(
        sample(&text, "nexus_invocations_total", &echo),
        3.0,
        "{text}"
    );
    let trap = [r#"function="trap""#, r#"status="500""#];
    assert_eq!(
        sample(&text, "nexus_invocations_total", &trap),
        1.0,
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "nexus_invocation_duration_seconds_count",
            &[r#"function="echo""#]
        ),
        3.0,
        "{text}"
    );
    assert_eq!(sample(&text, "nexus_nodes", &[r#"state="active""#]), 1.0);
    assert_eq!(
        sample(
            &text,
            "nexus_node_instance_slots",
            &[r#"node="a""#, r#"use="busy""#]
        ),
        0.0
    );
    assert!(
        text.contains("nexus_scheduler_queue_depth{priority=\"normal\"} 0"),
        "{text}"
    );
    let node = client.get(&format!("{}/metrics", edge.base)).await.text();
    assert_eq!(
        sample(&node, "nexus_edge_cold_starts_total", &[]),
        2.0,
        "{node}"
    );
    assert_eq!(
        sample(&node, "nexus_edge_invocations_total", &[r#"status="200""#]),
        3.0,
        "{node}"
    );

    let prometheus = Prometheus::start(state.path(), &[&coordinator.base, &edge.base]).await;
    let answered = prometheus
        .value_of(r#"sum(nexus_invocations_total{function="echo",status="200",target="edge"})"#)
        .await;
    assert_eq!(answered, 3.0);
    assert_eq!(
        prometheus
            .value_of("sum(nexus_edge_cold_starts_total)")
            .await,
        2.0
    );
    assert_eq!(
        prometheus
            .value_of(r#"sum(nexus_nodes{state="active"})"#)
            .await,
        1.0
    );
}

/// `env` as the process helpers take it.
fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect()
}

/// Asks `coordinator` for `path` with `headers`.
async fn get(coordinator: &Coordinator, path: &str, headers: &[(&str, &str)]) -> serde_json::Value {
    let mut request = Request::get(format!("{}{path}", coordinator.base));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = coordinator
        .client
        .send(request.body(Full::default()).unwrap())
        .await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    serde_json::from_slice(&response.body).unwrap_or_else(|_| response.text().into())
}

/// The `outbound` fixture, allowed to call this machine.
const OUTBOUND_APP: &str = r#"spin_manifest_version = 2

[application]
name = "outbound-app"

[[trigger.http]]
route = "/..."
component = "outbound"

[component.outbound]
source = "outbound.wasm"
allowed_outbound_hosts = ["http://127.0.0.1:*"]
"#;

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_trace_runs_from_the_client_through_the_coordinator_and_node_to_the_guests_call() {
    let collector = Collector::start().await;
    let endpoint = collector.endpoint();
    let otel = |service: &str| {
        [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
            ("OTEL_SERVICE_NAME", service.to_owned()),
        ]
    };
    let (coordinator_env, edge_env) = (otel("nexus-coordinator"), otel("nexus-edge"));
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::start_with_env(
        &database,
        &state.path().join("coordinator"),
        &[],
        &pairs(&coordinator_env),
    )
    .await;
    let _edge = Edge::start_with_env(
        &coordinator,
        "a",
        &state.path().join("a"),
        &[],
        &pairs(&edge_env),
    )
    .await;
    coordinator.deploy().await;
    coordinator
        .deploy_bytes(
            "out",
            "application/x-tar",
            nexus_tests::app_tar(OUTBOUND_APP, &[("outbound.wasm", "outbound")]),
        )
        .await;
    let upstream = collector::TraceparentEcho::start().await;

    // The guest sees the node's span as its caller.
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let echoed = get(
        &coordinator,
        "/shop/echo/traced",
        &[("traceparent", &traceparent)],
    )
    .await;
    let seen = echoed["headers"]["traceparent"]
        .as_str()
        .unwrap()
        .to_owned();
    // The guest's outbound call carries the trace on, under a span of its own.
    let other_trace = "0af7651916cd43dd8448eb211c80319c";
    let outbound_parent = format!("00-{other_trace}-b7ad6b7169203331-01");
    let called = get(
        &coordinator,
        "/shop/out/",
        &[
            ("traceparent", &outbound_parent),
            ("x-target-url", &upstream.url()),
        ],
    )
    .await;
    assert!(
        called.as_str().unwrap().starts_with("status=200"),
        "{called}"
    );
    let received = upstream.received().await;
    // Queued, then run by a worker: the attempt continues the trace of the request.
    let queued_trace = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";
    let queued = coordinator
        .client
        .send(
            Request::post(format!("{}/shop/echo/later", coordinator.base))
                .header(
                    "traceparent",
                    format!("00-{queued_trace}-1111111111111111-01"),
                )
                .header("prefer", "respond-async")
                .body(Full::default())
                .unwrap(),
        )
        .await;
    assert_eq!(queued.status, StatusCode::ACCEPTED, "{}", queued.text());

    let (server, client) = (collector::SERVER, collector::CLIENT);
    let expected = [
        ("nexus-coordinator", server, CLIENT_TRACE),
        ("nexus-coordinator", client, CLIENT_TRACE),
        ("nexus-edge", server, CLIENT_TRACE),
        ("nexus-edge", server, other_trace),
        ("nexus-edge", client, other_trace),
        ("nexus-coordinator", collector::CONSUMER, queued_trace),
        ("nexus-edge", server, queued_trace),
    ];
    let spans = collector
        .spans_until(|spans| {
            expected.iter().all(|(service, kind, trace)| {
                spans.iter().any(|span| {
                    span.service == *service && span.kind == *kind && span.trace_id == *trace
                })
            })
        })
        .await;
    let find = |service: &str, kind: i32, trace: &str| -> &Span {
        spans
            .iter()
            .find(|span| span.service == service && span.kind == kind && span.trace_id == trace)
            .unwrap_or_else(|| {
                panic!("no {service} span of kind {kind} in trace {trace}: {spans:#?}")
            })
    };
    let trigger = find("nexus-coordinator", server, CLIENT_TRACE);
    assert_eq!(trigger.parent_span_id, CLIENT_SPAN);
    assert_eq!(trigger.name, "GET /shop/echo");
    assert_eq!(trigger.attribute("faas.trigger"), Some("http".into()));
    let invoke = find("nexus-coordinator", client, CLIENT_TRACE);
    assert_eq!(invoke.parent_span_id, trigger.span_id);
    assert_eq!(invoke.attribute("faas.invoked_name"), Some("echo".into()));
    assert_eq!(
        invoke.attribute("faas.invoked_provider"),
        Some("sirsinexus".into())
    );
    let node = find("nexus-edge", server, CLIENT_TRACE);
    assert_eq!(node.parent_span_id, invoke.span_id);
    assert_eq!(node.attribute("faas.trigger"), Some("http".into()));
    assert_eq!(node.attribute("faas.coldstart"), Some("false".into()));
    assert_eq!(
        node.attribute("http.response.status_code"),
        Some("200".into())
    );
    assert_eq!(seen, format!("00-{CLIENT_TRACE}-{}-01", node.span_id));

    let guest_call = find("nexus-edge", client, other_trace);
    let caller = spans
        .iter()
        .find(|span| span.span_id == guest_call.parent_span_id)
        .expect("the outbound call's parent was exported");
    assert_eq!(caller.service, "nexus-edge");
    assert_eq!(caller.kind, server);
    assert_eq!(
        guest_call.attribute("http.request.method"),
        Some("GET".into())
    );
    assert_eq!(
        received,
        format!("00-{other_trace}-{}-01", guest_call.span_id)
    );

    let accepted = find("nexus-coordinator", server, queued_trace);
    let attempt = find("nexus-coordinator", collector::CONSUMER, queued_trace);
    assert_eq!(attempt.parent_span_id, accepted.span_id);
    assert_eq!(attempt.attribute("faas.trigger"), Some("pubsub".into()));
    let dispatched = find("nexus-coordinator", client, queued_trace);
    assert_eq!(dispatched.parent_span_id, attempt.span_id);
    let ran = find("nexus-edge", server, queued_trace);
    assert_eq!(ran.parent_span_id, dispatched.span_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_guest_prints_on_a_node_reaches_the_coordinators_event_stream() {
    use futures::StreamExt as _;
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::start(&database, &state.path().join("coordinator")).await;
    let _edge = Edge::start(&coordinator, "a", &state.path().join("a")).await;
    coordinator.deploy_component("logger", "log").await;
    let url = format!(
        "{}/ws/events?project=shop&type=guest_log&access_token={}",
        coordinator.base.replacen("http://", "ws://", 1),
        coordinator.access_token
    );
    let (mut events, _) = tokio_tungstenite::connect_async(url).await.unwrap();

    let logged = coordinator
        .client
        .get(&format!(
            "{}/shop/log/?out=from+the+node&err=and+its+stderr",
            coordinator.base
        ))
        .await;
    assert_eq!(logged.status, StatusCode::OK, "{}", logged.text());
    let mut seen = std::collections::BTreeMap::new();
    tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while seen.len() < 2 {
            let frame = events.next().await.unwrap().unwrap();
            let event: serde_json::Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
            assert_eq!(event["type"], "guest_log", "{event}");
            assert_eq!(event["function"], "log");
            assert_eq!(
                event["request_id"],
                logged.headers["x-request-id"].to_str().unwrap()
            );
            seen.insert(
                event["stream"].as_str().unwrap().to_owned(),
                event["text"].as_str().unwrap().to_owned(),
            );
        }
    })
    .await
    .unwrap_or_else(|_| panic!("guest output missing; seen {seen:?}"));
    assert_eq!(seen["stdout"], "from the node\n");
    assert_eq!(seen["stderr"], "and its stderr\n");
}

/// The `headers` fixture as a one-component app: the guest echoes the headers it receives.
const HEADERS_APP: &str = r#"spin_manifest_version = 2

[application]
name = "echo-app"

[[trigger.http]]
route = "/..."
component = "headers"

[component.headers]
source = "headers.wasm"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_goes_on_in_a_cloud_function_the_placement_calls() {
    use nexus::bundle::{BundleOptions, BundleTarget, write_bundle};
    let collector = Collector::start().await;
    let otel = |service: &str| {
        [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50".to_owned()),
            ("OTEL_SERVICE_NAME", service.to_owned()),
            ("NEXUS_SECRET_SHOP_KEY", "function-key".to_owned()),
            ("NEXUS_SECRET_SHOP_TOKEN", "invoke-token".to_owned()),
        ]
    };
    let coordinator_env = otel("nexus-coordinator");
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::start_with_env(
        &database,
        &state.path().join("coordinator"),
        &[],
        &pairs(&coordinator_env),
    )
    .await;
    coordinator
        .deploy_bytes(
            "echo",
            "application/x-tar",
            nexus_tests::app_tar(HEADERS_APP, &[("headers.wasm", "headers")]),
        )
        .await;
    let project = coordinator
        .send_json(
            http::Method::GET,
            "/v1/projects/shop",
            "",
            Some(&coordinator.access_token),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The same app as an Azure function app, served by `nexus-edge azure`.
    let app = state.path().join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("spin.toml"), HEADERS_APP).unwrap();
    std::fs::copy(
        nexus_tests::component_path("headers"),
        app.join("headers.wasm"),
    )
    .unwrap();
    let bundle = state.path().join("bundle");
    let options = BundleOptions {
        target: BundleTarget::Azure,
        deployment: None,
        namespace: Some(project),
        edge_binary: None,
    };
    write_bundle(&app.join("spin.toml"), &bundle, &options).unwrap();
    let handler_env = otel("nexus-edge-azure");
    let mut handler = tokio::process::Command::new(processes::edge_binary())
        .arg("azure")
        .current_dir(&bundle)
        .env("FUNCTIONS_CUSTOMHANDLER_PORT", "0")
        .env("NEXUS_INVOKE_TOKEN", "invoke-token")
        .env("NEXUS_STATE_DIR", state.path().join("azure"))
        .env("NEXUS_KV", "memory")
        .envs(pairs(&handler_env))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let handler_base = processes::announced_address(&mut handler, "Listening on ").await;
    let placed = coordinator
        .send_json(
            http::Method::PATCH,
            "/v1/projects/shop/functions/echo",
            &format!(
                r#"{{"placement":"azure-functions","cloud":{{"azure_functions":{{"url":"{handler_base}","key_secret":"shop-key","invoke_token_secret":"shop-token"}}}}}}"#
            ),
            Some(&coordinator.access_token),
        )
        .await;
    assert_eq!(placed.status, StatusCode::OK, "{}", placed.text());

    let trace = "7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e";
    let echoed = get(
        &coordinator,
        "/shop/echo/in-the-cloud",
        &[("traceparent", &format!("00-{trace}-2222222222222222-01"))],
    )
    .await;
    let seen = echoed["headers"]["traceparent"]
        .as_str()
        .unwrap()
        .to_owned();

    let (server, client) = (collector::SERVER, collector::CLIENT);
    let spans = collector
        .spans_until(|spans| {
            [("nexus-coordinator", client), ("nexus-edge-azure", server)]
                .iter()
                .all(|(service, kind)| {
                    spans.iter().any(|span| {
                        span.service == *service && span.kind == *kind && span.trace_id == trace
                    })
                })
        })
        .await;
    let find = |service: &str, kind: i32| -> &Span {
        spans
            .iter()
            .find(|span| span.service == service && span.kind == kind && span.trace_id == trace)
            .unwrap()
    };
    let invoke = find("nexus-coordinator", client);
    assert_eq!(
        invoke.attribute("faas.invoked_provider"),
        Some("azure".into())
    );
    let cloud = find("nexus-edge-azure", server);
    assert_eq!(cloud.parent_span_id, invoke.span_id);
    assert_eq!(cloud.attribute("faas.coldstart"), Some("true".into()));
    assert_eq!(seen, format!("00-{trace}-{}-01", cloud.span_id));
}
