//! `nexus_edge_nodes_desired`, the signal an autoscaler follows: one node while idle, more
//! while every slot is busy and invocations wait, one again once they are done.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use http::StatusCode;
use nexus_tests::HttpClient;
use nexus_tests::postgres::FreshDatabase;

use crate::processes::{Coordinator, Edge, metric};

const DESIRED: &str = "nexus_edge_nodes_desired";

/// Polls the coordinator's signal until `accept` takes it; the value taken.
async fn desired_until(
    client: &HttpClient,
    coordinator: &Coordinator,
    what: &str,
    accept: impl Fn(u64) -> bool,
) -> u64 {
    let give_up = Instant::now() + Duration::from_secs(20);
    loop {
        let desired = metric(client, &coordinator.base, DESIRED).await;
        if accept(desired) {
            return desired;
        }
        assert!(
            Instant::now() < give_up,
            "{what}: the signal stayed at {desired}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_desired_node_count_rises_with_busy_slots_and_queues_and_falls_back() {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::start(&database, &state.path().join("coordinator")).await;
    let _edge = Edge::start_with(
        &coordinator,
        "small",
        &state.path().join("small"),
        &["--instance-slots", "2"],
    )
    .await;
    coordinator.deploy_component("sleep", "sleep").await;
    let client = HttpClient::default();
    assert_eq!(metric(&client, &coordinator.base, DESIRED).await, 1);

    // Six calls of 2 s on one node of two slots: 2 busy and 4 waiting, over 2 × 0.7 per node.
    let calls = tokio::spawn({
        let (client, url) = (
            client.clone(),
            format!("{}/shop/sleep/?ms=2000", coordinator.base),
        );
        async move {
            futures::stream::iter(0..6)
                .map(|_| client.get(&url))
                .buffer_unordered(6)
                .collect::<Vec<_>>()
                .await
        }
    });
    let busy = desired_until(&client, &coordinator, "under load", |desired| desired >= 3).await;
    assert!(busy <= 5, "more than (2 + 4) / 1.4 rounded up: {busy}");
    for answer in calls.await.unwrap() {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    desired_until(&client, &coordinator, "once idle", |desired| desired == 1).await;
}
