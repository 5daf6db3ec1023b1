//! Durable asynchronous invocations on real processes: 10,000 accepted against a coordinator
//! on Postgres with its invocations announced on a Redis Stream and two edge nodes; the
//! coordinator and one node are killed with SIGKILL mid-run and started again. Every accepted
//! invocation reaches a final state, none is lost, and a repeat runs under the same id.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use http::{Request, StatusCode};
use http_body_util::Full;
use nexus_tests::postgres::FreshDatabase;
use nexus_tests::{HttpClient, redis_url};
use tokio::sync::RwLock;

use super::processes::{Coordinator, Edge};

const INVOCATIONS: usize = 10_000;
/// Accepted before the crash.
const BEFORE_CRASH: usize = 3_000;
const CONCURRENCY: usize = 32;

/// Submits invocation `n` (its idempotency key is `job-n`) until the coordinator accepts it,
/// riding out the coordinator's absence; its id.
async fn submit(client: &HttpClient, base: &RwLock<String>, n: usize, deadline: Instant) -> String {
    loop {
        let request = Request::post(format!("{}/shop/hello/", base.read().await))
            .header("prefer", "respond-async")
            .header("idempotency-key", format!("job-{n}"))
            .body(Full::from(format!("job {n}")))
            .unwrap();
        match client.try_send(request).await {
            Ok(response) if response.status == StatusCode::ACCEPTED => {
                return response.json()["id"].as_str().unwrap().to_owned();
            }
            Ok(response) => assert!(
                response.status.is_server_error()
                    || response.status == StatusCode::TOO_MANY_REQUESTS,
                "{}: {}",
                response.status,
                response.text()
            ),
            Err(_) => {}
        }
        assert!(
            Instant::now() < deadline,
            "invocation {n} was never accepted"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every invocation of project `shop`, by id, with its status and attempts.
pub(super) async fn statuses(coordinator: &Coordinator) -> BTreeMap<String, (String, i64)> {
    let mut all = BTreeMap::new();
    let mut before: Option<String> = None;
    loop {
        let mut path = "/v1/projects/shop/invocations?limit=1000".to_owned();
        if let Some(cursor) = &before {
            path.push_str(&format!("&before={cursor}"));
        }
        let request = Request::get(format!("{}{path}", coordinator.base))
            .header(
                "authorization",
                format!("Bearer {}", coordinator.access_token),
            )
            .body(Full::default())
            .unwrap();
        let page = coordinator.client.send(request).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.text());
        let page = page.json();
        for entry in page["invocations"].as_array().unwrap() {
            all.insert(
                entry["id"].as_str().unwrap().to_owned(),
                (
                    entry["status"].as_str().unwrap().to_owned(),
                    entry["attempts"].as_i64().unwrap(),
                ),
            );
        }
        match page["next"].as_str() {
            Some(next) => before = Some(next.to_owned()),
            None => return all,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_accepted_async_invocation_reaches_a_final_state_across_crashes() {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let (queue, stream) = (
        redis_url(),
        format!("nexus-test:invocations:{}", uuid::Uuid::new_v4()),
    );
    let args = [
        "--invocation-queue",
        queue.as_str(),
        "--invocation-stream",
        stream.as_str(),
    ];
    let coordinator_state = state.path().join("coordinator");
    let coordinator = Coordinator::start_with(&database, &coordinator_state, &args).await;
    let node_a = Edge::start(&coordinator, "a", &state.path().join("a")).await;
    let _node_b = Edge::start(&coordinator, "b", &state.path().join("b")).await;
    coordinator.deploy_component("hello", "hello").await;

    let deadline = Instant::now() + Duration::from_secs(300);
    let base = Arc::new(RwLock::new(coordinator.base.clone()));
    let accepted = Arc::new(AtomicUsize::new(0));
    let client = HttpClient::default();
    let submitting = tokio::spawn({
        let (base, accepted) = (Arc::clone(&base), Arc::clone(&accepted));
        async move {
            futures::stream::iter(0..INVOCATIONS)
                .map(|n| {
                    let (client, base, accepted) = (&client, &base, &accepted);
                    async move {
                        let id = submit(client, base, n, deadline).await;
                        accepted.fetch_add(1, Ordering::Relaxed);
                        (n, id)
                    }
                })
                .buffer_unordered(CONCURRENCY)
                .collect::<Vec<_>>()
                .await
        }
    });

    // Mid-run: the coordinator and one node die with SIGKILL, with invocations queued,
    // running and arriving.
    while accepted.load(Ordering::Relaxed) < BEFORE_CRASH {
        assert!(
            Instant::now() < deadline,
            "the first invocations were not accepted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let crashed_base = coordinator.base.clone();
    coordinator.kill().await;
    node_a.kill().await;
    let coordinator =
        Coordinator::restart_at(&crashed_base, &database, &coordinator_state, &args).await;
    let _node_a = Edge::start(&coordinator, "a2", &state.path().join("a2")).await;
    *base.write().await = coordinator.base.clone();

    let submitted = submitting.await.unwrap();
    let by_key: BTreeMap<usize, String> = submitted.into_iter().collect();
    assert_eq!(by_key.len(), INVOCATIONS);
    let ids: BTreeSet<&String> = by_key.values().collect();
    assert_eq!(ids.len(), INVOCATIONS, "each key names one invocation");

    // Every one reaches a final state.
    let all = loop {
        let all = statuses(&coordinator).await;
        if all
            .values()
            .all(|(status, _)| status != "queued" && status != "running")
        {
            break all;
        }
        assert!(Instant::now() < deadline, "invocations never finished");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    // None lost, none doubled: the project holds exactly the accepted ones, all succeeded.
    assert_eq!(all.keys().collect::<BTreeSet<_>>(), ids);
    let failed: Vec<_> = all
        .iter()
        .filter(|(_, (status, _))| status != "succeeded")
        .collect();
    assert!(failed.is_empty(), "not succeeded: {failed:?}");
    let repeated = all.values().filter(|(_, attempts)| *attempts > 1).count();
    println!("{INVOCATIONS} accepted, all succeeded; {repeated} ran more than once under their id");
}
