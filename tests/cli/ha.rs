//! Coordinator replicas: three `nexus coordinator` processes share one Postgres database, one
//! Redis and one state directory (a shared volume, as EFS is to the Terraform module). Any of
//! them serves the API and the trigger; the singleton work runs on the holder of the leader
//! lease, and when that process is killed another takes over, with no schedule tick lost or
//! fired twice and no failure for a client that retries on another replica.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test reports failures by panicking"
)]

#[allow(
    dead_code,
    reason = "the helpers of the cluster tests, of which this uses a few"
)]
#[path = "cluster/processes.rs"]
mod processes;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use http::{Request, StatusCode};
use http_body_util::Full;
use nexus_tests::postgres::FreshDatabase;
use nexus_tests::{HttpClient, component_path, redis_url};
use processes::{drain, send_json, spawn_coordinator};
use tokio::process::Child;

/// The issue's bound on a takeover.
const TAKEOVER: Duration = Duration::from_secs(5);
const CREDENTIALS: &str = r#"{"email":"ops@example.com","password":"correct horse"}"#;

struct Replica {
    child: Child,
    base: String,
}

impl Replica {
    async fn start(database: &FreshDatabase, state: &Path, shared: &[&str]) -> Self {
        let args: Vec<&std::ffi::OsStr> = shared.iter().map(std::ffi::OsStr::new).collect();
        let (child, base, lines) =
            spawn_coordinator("127.0.0.1:0", database, state, &args, &[]).await;
        drain(lines);
        Self { child, base }
    }

    /// Whether this replica says it holds the leader lease; `None` when it does not answer.
    async fn leads(&self, client: &HttpClient) -> Option<bool> {
        let request = Request::get(format!("{}/metrics", self.base))
            .body(Full::default())
            .unwrap();
        let metrics = client.try_send(request).await.ok()?;
        let text = metrics.text();
        let value = text
            .lines()
            .find_map(|line| line.strip_prefix("nexus_coordinator_leader "))
            .unwrap_or_else(|| panic!("no nexus_coordinator_leader in {text}"));
        Some(value == "1")
    }
}

/// The replica that leads, once exactly one of `replicas` says so.
async fn leader(client: &HttpClient, replicas: &[&Replica], within: Duration) -> usize {
    let give_up = Instant::now() + within;
    loop {
        let mut leading = Vec::new();
        for (index, replica) in replicas.iter().enumerate() {
            if replica.leads(client).await == Some(true) {
                leading.push(index);
            }
        }
        if let [one] = leading[..] {
            return one;
        }
        assert!(leading.len() < 2, "two replicas lead at once: {leading:?}");
        assert!(Instant::now() < give_up, "no replica took the lead");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The ticks the schedule fired, from the idempotency keys of the invocations they recorded,
/// with how many invocations each has and whether all of them succeeded.
async fn fired_ticks(db: &sqlx::PgPool, schedule: &str) -> (Vec<DateTime<Utc>>, usize, bool) {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT idempotency_key, status FROM invocations WHERE idempotency_key LIKE $1",
    )
    .bind(format!("schedule:{schedule}:%"))
    .fetch_all(db)
    .await
    .unwrap();
    let all_succeeded = rows.iter().all(|(_, status)| status == "succeeded");
    let mut ticks: Vec<DateTime<Utc>> = rows
        .iter()
        .map(|(key, _)| {
            let at = key.strip_prefix(&format!("schedule:{schedule}:")).unwrap();
            DateTime::parse_from_rfc3339(at)
                .unwrap()
                .with_timezone(&Utc)
        })
        .collect();
    ticks.sort();
    (ticks, rows.len(), all_succeeded)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_leader_is_killed_another_replica_takes_over_and_nothing_is_lost_or_doubled() {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let (redis, stream) = (
        redis_url(),
        format!("nexus-test:invocations:{}", uuid::Uuid::new_v4()),
    );
    let shared = [
        "--event-bus",
        redis.as_str(),
        "--invocation-queue",
        redis.as_str(),
        "--invocation-stream",
        stream.as_str(),
    ];
    let client = HttpClient::default();
    let first = Replica::start(&database, state.path(), &shared).await;
    let registered = send_json(
        &client,
        http::Method::POST,
        format!("{}/v1/auth/register", first.base),
        CREDENTIALS,
        None,
    )
    .await;
    assert_eq!(
        registered.status,
        StatusCode::CREATED,
        "{}",
        registered.text()
    );
    let second = Replica::start(&database, state.path(), &shared).await;
    let third = Replica::start(&database, state.path(), &shared).await;

    // Signed in on one replica, the token works on the others (one signing key, one database).
    let login = send_json(
        &client,
        http::Method::POST,
        format!("{}/v1/auth/login", second.base),
        CREDENTIALS,
        None,
    )
    .await;
    assert_eq!(login.status, StatusCode::OK, "{}", login.text());
    let token = login.json()["access_token"].as_str().unwrap().to_owned();
    let project = send_json(
        &client,
        http::Method::POST,
        format!("{}/v1/projects", third.base),
        r#"{"name":"shop"}"#,
        Some(&token),
    )
    .await;
    assert_eq!(project.status, StatusCode::CREATED, "{}", project.text());
    let deploy = Request::post(format!(
        "{}/v1/projects/shop/functions/hello/versions",
        first.base
    ))
    .header("content-type", "application/wasm")
    .header("authorization", format!("Bearer {token}"))
    .body(Full::from(std::fs::read(component_path("hello")).unwrap()))
    .unwrap();
    let deployed = client.send(deploy).await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());
    for replica in [&first, &second, &third] {
        let answer = client.get(&format!("{}/shop/hello/", replica.base)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }

    let schedule = send_json(
        &client,
        http::Method::POST,
        format!("{}/v1/projects/shop/schedules", second.base),
        r#"{"name":"every-second","function":"hello","cron":"* * * * * *","method":"GET"}"#,
        Some(&token),
    )
    .await;
    assert_eq!(schedule.status, StatusCode::CREATED, "{}", schedule.text());
    let schedule_id = schedule.json()["id"].as_str().unwrap().to_owned();

    // Clients call the trigger on every replica in turn, and on a failure try the next one.
    let bases: Arc<Vec<String>> = Arc::new(
        [&first, &second, &third]
            .iter()
            .map(|replica| replica.base.clone())
            .collect(),
    );
    let (stop, answered, retried) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicUsize::new(0)),
        Arc::new(AtomicUsize::new(0)),
    );
    let load: Vec<_> = (0..4)
        .map(|client_number| {
            let (bases, stop, answered, retried) = (
                Arc::clone(&bases),
                Arc::clone(&stop),
                Arc::clone(&answered),
                Arc::clone(&retried),
            );
            tokio::spawn(async move {
                let client = HttpClient::default();
                let mut next = client_number;
                while !stop.load(Ordering::Relaxed) {
                    let mut tries = 0;
                    loop {
                        let url = format!("{}/shop/hello/", bases[next % bases.len()]);
                        next += 1;
                        let request = Request::get(url).body(Full::default()).unwrap();
                        match client.try_send(request).await {
                            Ok(answer) => {
                                assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
                                break;
                            }
                            Err(_) => {
                                tries += 1;
                                retried.fetch_add(1, Ordering::Relaxed);
                                assert!(tries < bases.len(), "every replica failed one request");
                            }
                        }
                    }
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let replicas = [&first, &second, &third];
    let leading = leader(&client, &replicas, TAKEOVER).await;
    let db = sqlx::PgPool::connect(database.url()).await.unwrap();
    // A few ticks under the first leader.
    let give_up = Instant::now() + Duration::from_secs(30);
    while fired_ticks(&db, &schedule_id).await.0.len() < 3 {
        assert!(Instant::now() < give_up, "the schedule did not fire");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let [first, second, third] = [first, second, third];
    let mut replicas = vec![first, second, third];
    let killed = replicas.remove(leading);
    let mut child = killed.child;
    child.kill().await.unwrap();
    let killed_at = Instant::now();
    let survivors: Vec<&Replica> = replicas.iter().collect();
    let new_leader = leader(&client, &survivors, TAKEOVER * 2).await;
    let took = killed_at.elapsed();
    assert!(took < TAKEOVER, "the takeover took {took:?}");

    // A few ticks under the new leader, then the schedule is deleted.
    let resumed = Utc::now();
    let give_up = Instant::now() + Duration::from_secs(30);
    while fired_ticks(&db, &schedule_id)
        .await
        .0
        .last()
        .is_none_or(|last| *last < resumed + chrono::TimeDelta::seconds(3))
    {
        assert!(Instant::now() < give_up, "the new leader fires no ticks");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deleted = send_json(
        &client,
        http::Method::DELETE,
        format!(
            "{}/v1/projects/shop/schedules/{schedule_id}",
            survivors[new_leader].base
        ),
        "",
        Some(&token),
    )
    .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    stop.store(true, Ordering::Relaxed);
    for client in load {
        client.await.unwrap();
    }
    assert!(answered.load(Ordering::Relaxed) > 0);

    // Every tick from the first to the last fired once; all ran, those the killed leader had
    // claimed after their lease ran out.
    let give_up = Instant::now() + Duration::from_secs(60);
    let ticks = loop {
        let (ticks, invocations, all_succeeded) = fired_ticks(&db, &schedule_id).await;
        let distinct: BTreeSet<_> = ticks.iter().copied().collect();
        assert_eq!(distinct.len(), invocations, "a tick fired twice: {ticks:?}");
        if all_succeeded {
            break ticks;
        }
        assert!(
            Instant::now() < give_up,
            "some ticks' invocations never finished"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for pair in ticks.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            chrono::TimeDelta::seconds(1),
            "ticks were lost between {} and {}",
            pair[0],
            pair[1]
        );
    }
    println!(
        "takeover {took:?}; {} ticks; {} calls answered, {} retried on another replica",
        ticks.len(),
        answered.load(Ordering::Relaxed),
        retried.load(Ordering::Relaxed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_joined_to_every_cluster_replica_serves_each_and_outlives_one() {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let shared = state.path().join("coordinators");
    let first = processes::Coordinator::start(&database, &shared).await;
    let second = processes::Coordinator::restart(&database, &shared, &[]).await;
    let node = processes::Edge::start_with(
        &first,
        "both",
        &state.path().join("node"),
        &["--coordinator", &second.join],
    )
    .await;
    for replica in [&first, &second] {
        let give_up = Instant::now() + Duration::from_secs(20);
        while !replica
            .node_states()
            .await
            .values()
            .any(|state| state == "active")
        {
            assert!(
                Instant::now() < give_up,
                "the node never joined {}",
                replica.base
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    first.deploy().await;
    for replica in [&first, &second] {
        let answer = replica.invoke().await;
        assert_eq!(
            answer.status,
            StatusCode::OK,
            "{}: {}",
            replica.base,
            answer.text()
        );
        assert!(answer.headers.contains_key("nexus-node"), "ran on the node");
    }
    first.kill().await;
    for _ in 0..20 {
        let answer = second.invoke().await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    drop(node);
}
