//! Scale to zero on the nodes, and a warm pool: with `min_warm: 1` exactly one of two nodes
//! keeps the function's version loaded while every other app on both unloads after idling.

use std::time::{Duration, Instant};

use http::StatusCode;
use nexus_tests::HttpClient;
use nexus_tests::postgres::FreshDatabase;

use crate::processes::{Coordinator, Edge};

/// Polls until `accept` takes the sum of `name` over `edges`.
async fn sum_until(client: &HttpClient, edges: &[&Edge], name: &str, accept: impl Fn(u64) -> bool) {
    let give_up = Instant::now() + Duration::from_secs(30);
    loop {
        let mut sum = 0;
        for edge in edges {
            sum += edge.metric(client, name).await;
        }
        if accept(sum) {
            return;
        }
        assert!(
            Instant::now() < give_up,
            "{name} stayed at {sum} over the nodes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn min_warm_pins_one_node_while_everything_else_scales_to_zero() {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::start(&database, &state.path().join("coordinator")).await;
    let idle = ["--unload-idle-after", "1"];
    let a = Edge::start_with(&coordinator, "a", &state.path().join("a"), &idle).await;
    let b = Edge::start_with(&coordinator, "b", &state.path().join("b"), &idle).await;
    coordinator.deploy_component("hello", "warm").await;
    coordinator.deploy_component("headers", "idle").await;
    let client = HttpClient::default();
    let edges = [&a, &b];

    let token = coordinator.access_token.clone();
    let set = coordinator
        .send_json(
            http::Method::PATCH,
            "/v1/projects/shop/functions/warm",
            r#"{"min_warm":1}"#,
            Some(&token),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());

    // One node keeps `warm`; the rest idles out, compiled code included.
    sum_until(&client, &edges, "nexus_edge_loaded_apps", |apps| apps == 1).await;
    sum_until(
        &client,
        &edges,
        "nexus_edge_compiled_components",
        |compiled| compiled == 1,
    )
    .await;
    let a_apps = a.metric(&client, "nexus_edge_loaded_apps").await;
    let b_apps = b.metric(&client, "nexus_edge_loaded_apps").await;
    assert_eq!(a_apps + b_apps, 1);

    // Deploys loaded both versions on both nodes: three of the four went.
    sum_until(
        &client,
        &edges,
        "nexus_edge_idle_unloads_total",
        |unloads| unloads >= 3,
    )
    .await;

    // Both still answer, the idle function after loading again on whichever node runs it.
    for path in ["/shop/warm/", "/shop/idle/"] {
        let answer = client.get(&format!("{}{path}", coordinator.base)).await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.text());
    }
    // The idle function is loaded again. `warm` may have gone to the other node too, which
    // can still count as warm for a heartbeat after it unloaded: then three are loaded.
    sum_until(&client, &edges, "nexus_edge_loaded_apps", |apps| apps >= 2).await;
}
