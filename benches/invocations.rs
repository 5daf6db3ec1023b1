//! Durable asynchronous invocations on the embedded platform as a cluster's coordinator runs
//! them (Postgres, invocations announced on a Redis Stream), each figure next to a peer
//! measured in the same run:
//!
//! - accepts per second: `Prefer: respond-async` through the trigger from 64 clients, every
//!   202 answered only once its invocation is committed; against the same requests answered at
//!   once (the function run synchronously), against one transaction per invocation straight
//!   on the store (what committing accepts in batches saves), and against `GET /healthz` (what
//!   the HTTP stack and the client in this process cost on their own); and full batches
//!   written straight on the store as the committers write them (what the database takes);
//! - how fast the workers then run what was accepted;
//! - how long after its time a one-shot schedule's invocation is queued (target: under a
//!   second), against how long an accepted invocation takes to be queued.
//!
//! Run with `cargo bench --bench invocations` (or `make bench`); needs the local Postgres and
//! Redis.
#![expect(
    clippy::unwrap_used,
    reason = "a benchmark reports failures by panicking"
)]

#[path = "support/api.rs"]
mod api;
mod support;

use std::time::{Duration, Instant};

use api::Client;
use futures::StreamExt as _;
use http::{Request, StatusCode};
use http_body_util::Full;
use nexus::{Embedded, EmbeddedConfig};
use nexus_store::{AsyncRetry, InvocationId, NewInvocation, StoredRequest};
use nexus_tests::postgres::FreshDatabase;
use nexus_tests::{HttpClient, redis_url};
use support::print_row;

const ACCEPTS: usize = 20_000;
const CLIENTS: usize = 64;
const DIRECT: usize = 5_000;
const SCHEDULES: usize = 20;
/// As the accept committers run: this many transactions at once, each of up to this many.
const STORE_COMMITTERS: usize = 4;
const STORE_BATCH: usize = 512;
const SCHEDULE_DELAY_MS: i64 = 300;

/// Sends `count` requests from [`CLIENTS`] clients; the time each took and the whole run's.
async fn flood(
    http: &HttpClient,
    count: usize,
    request: impl Fn(usize) -> Request<Full<bytes::Bytes>>,
    expected: StatusCode,
) -> (Vec<Duration>, Duration) {
    let started = Instant::now();
    let latencies = futures::stream::iter(0..count)
        .map(|n| {
            let request = request(n);
            async move {
                let sent = Instant::now();
                let response = http.send(request).await;
                assert_eq!(response.status, expected, "{}", response.text());
                sent.elapsed()
            }
        })
        .buffer_unordered(CLIENTS)
        .collect::<Vec<_>>()
        .await;
    (latencies, started.elapsed())
}

fn per_second(count: usize, took: Duration) -> f64 {
    count as f64 / took.as_secs_f64()
}

#[tokio::main]
async fn main() {
    let database = FreshDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = EmbeddedConfig::in_directory(dir.path());
    config.coordinator.database_url = database.url().to_owned();
    config.coordinator.invocation_queue = Some(redis_url());
    config.coordinator.invocation_stream =
        Some(format!("nexus-bench:invocations:{}", uuid::Uuid::new_v4()));
    let platform = Embedded::start(config).await.unwrap();
    let api = Client {
        base: platform.base_url(),
        http: HttpClient::default(),
        token: String::new(),
    }
    .signed_up()
    .await;
    let url = format!("{}/lab/counter/", api.base);

    // The floor: the cheapest request this HTTP stack answers, from as many clients.
    let health = format!("{}/healthz", api.base);
    let (_, floor_took) = flood(
        &api.http,
        ACCEPTS,
        |_| Request::get(health.as_str()).body(Full::default()).unwrap(),
        StatusCode::OK,
    )
    .await;

    // The peer: the same requests, run at once.
    let (mut sync_latencies, sync_took) = flood(
        &api.http,
        ACCEPTS,
        |_| Request::post(url.as_str()).body(Full::default()).unwrap(),
        StatusCode::OK,
    )
    .await;

    // Accepted for later: each committed before its 202.
    let accepts_started = Instant::now();
    let (mut accept_latencies, accept_took) = flood(
        &api.http,
        ACCEPTS,
        |_| {
            Request::post(url.as_str())
                .header("prefer", "respond-async")
                .body(Full::default())
                .unwrap()
        },
        StatusCode::ACCEPTED,
    )
    .await;
    // Then run by the workers (which started on the first ones while the rest arrived).
    let drained = loop {
        let queued = api
            .get("/v1/projects/lab/invocations?status=queued&limit=1")
            .await;
        let running = api
            .get("/v1/projects/lab/invocations?status=running&limit=1")
            .await;
        let empty =
            |page: &nexus_tests::TestResponse| page.json()["invocations"] == serde_json::json!([]);
        if empty(&queued) && empty(&running) {
            break accepts_started.elapsed();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let drain_took = drained;

    // One transaction per invocation, straight on the store, from as many tasks.
    let store = &platform.state().store;
    let project = store
        .with_retry(|tx| Box::pin(async move { tx.get_project_by_slug("lab").await }))
        .await
        .unwrap();
    let function = store
        .with_retry(|tx| Box::pin(async move { tx.get_function(project.id, "counter").await }))
        .await
        .unwrap();
    let started = Instant::now();
    let mut direct_latencies = futures::stream::iter(0..DIRECT)
        .map(|_| async {
            let new = new_invocation(project.id, function.id);
            let sent = Instant::now();
            let (fresh_since, redeliver_at) = platform.state().invocations.windows();
            store
                .with_retry(|tx| {
                    let new = &new;
                    Box::pin(
                        async move { tx.enqueue_invocation(new, fresh_since, redeliver_at).await },
                    )
                })
                .await
                .unwrap();
            sent.elapsed()
        })
        .buffer_unordered(CLIENTS)
        .collect::<Vec<_>>()
        .await;
    let direct_took = started.elapsed();

    // What the database takes when the accepts' batches are full: as many transactions as the
    // committers, each of a full batch, straight on the store.
    let started = Instant::now();
    futures::stream::iter(0..ACCEPTS / STORE_BATCH)
        .map(|_| async {
            let news: Vec<NewInvocation> = (0..STORE_BATCH)
                .map(|_| new_invocation(project.id, function.id))
                .collect();
            let news: Vec<&NewInvocation> = news.iter().collect();
            let (fresh_since, redeliver_at) = platform.state().invocations.windows();
            store
                .with_retry(|tx| {
                    let news = &news;
                    Box::pin(async move {
                        tx.enqueue_invocations(news, fresh_since, redeliver_at)
                            .await
                    })
                })
                .await
                .unwrap();
        })
        .buffer_unordered(STORE_COMMITTERS)
        .collect::<Vec<_>>()
        .await;
    let batched_took = started.elapsed();

    println!(
        "durable async accepts: {:.0}/s ({ACCEPTS} from {CLIENTS} clients in {:.2} s) | GET /healthz: {:.0}/s | sync trigger: {:.0}/s | one transaction per invocation on the store: {:.0}/s",
        per_second(ACCEPTS, accept_took),
        accept_took.as_secs_f64(),
        per_second(ACCEPTS, floor_took),
        per_second(ACCEPTS, sync_took),
        per_second(DIRECT, direct_took),
    );
    println!(
        "full batches straight on the store ({STORE_COMMITTERS} transactions of {STORE_BATCH} at once): {:.0}/s",
        per_second(ACCEPTS / STORE_BATCH * STORE_BATCH, batched_took),
    );
    print_row(
        "async accept",
        &mut accept_latencies,
        "sync trigger",
        &mut sync_latencies,
    );
    print_row(
        "async accept",
        &mut accept_latencies,
        "one store transaction",
        &mut direct_latencies,
    );
    println!(
        "accepted and run: {ACCEPTS} in {:.2} s ({:.0}/s)",
        drain_took.as_secs_f64(),
        per_second(ACCEPTS, drain_took)
    );
    // Schedules: how long after its time a one-shot's invocation is queued (target: within a
    // second), against an accept's own time to be queued.
    let mut events = platform.state().events.subscribe(None).await;
    let mut late = Vec::with_capacity(SCHEDULES);
    for n in 0..SCHEDULES {
        let due_ms = unix_millis() + SCHEDULE_DELAY_MS;
        let body = serde_json::json!({
            "name": format!("once-{n}"),
            "function": "counter",
            "after_ms": SCHEDULE_DELAY_MS,
        });
        let created = api
            .post("/v1/projects/lab/schedules", body.to_string())
            .await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        let queued_ms = queued_at(&mut events).await;
        late.push(Duration::from_millis(
            u64::try_from(queued_ms - due_ms).unwrap_or(0),
        ));
    }
    let mut accepted_queued = Vec::with_capacity(SCHEDULES);
    for _ in 0..SCHEDULES {
        let sent_ms = unix_millis();
        let request = Request::post(url.as_str())
            .header("prefer", "respond-async")
            .body(Full::default())
            .unwrap();
        assert_eq!(api.http.send(request).await.status, StatusCode::ACCEPTED);
        let queued_ms = queued_at(&mut events).await;
        accepted_queued.push(Duration::from_millis(
            u64::try_from(queued_ms - sent_ms).unwrap_or(0),
        ));
    }
    print_row(
        "schedule fired after its time",
        &mut late,
        "async accept queued after sending",
        &mut accepted_queued,
    );
}

/// An invocation of `function` as the trigger records a bodiless `POST`.
fn new_invocation(
    project: nexus_store::ProjectId,
    function: nexus_store::FunctionId,
) -> NewInvocation {
    NewInvocation {
        id: InvocationId::new(),
        project_id: project,
        function_id: function,
        version: 1,
        agent_id: None,
        idempotency_key: None,
        retry: AsyncRetry::default(),
        request: StoredRequest {
            method: "POST".to_owned(),
            uri: "/lab/counter/".to_owned(),
            prefix: "/lab/counter".to_owned(),
            headers: b"host: 127.0.0.1\r\nprefer: respond-async\r\n".to_vec(),
            body: Vec::new(),
            client: "127.0.0.1:1".to_owned(),
        },
    }
}

/// Milliseconds since the Unix epoch.
fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

/// When the next invocation was queued, in milliseconds since the Unix epoch.
async fn queued_at(events: &mut nexus_coordinator::events::Listener) -> i64 {
    loop {
        let event = events.next().await.unwrap().unwrap();
        if matches!(
            event.kind,
            nexus_coordinator::events::EventKind::InvocationQueued { .. }
        ) {
            return event.at.timestamp_millis();
        }
    }
}
