//! Agents' figures on the embedded platform as a cluster's coordinator runs it (Postgres,
//! key-value data in Redis in front of Postgres), each next to a peer measured in the same run:
//!
//! - agent create p50 over HTTP, against the same create straight on the store (the database
//!   work it cannot avoid);
//! - a message to an agent p50 (turn, lease, the counter reading and writing its context),
//!   against the same function through the HTTP trigger;
//! - a context read p50 through the tiered store, against a bare Redis `GET` and a Postgres read;
//! - the process's memory with 1,000,000 idle agents in the database against none (idle agents
//!   live in SQL, not in memory).
//!
//! Run with `cargo bench --bench agents` (or `make bench`); needs the local Postgres and Redis.
#![expect(
    clippy::unwrap_used,
    reason = "a benchmark reports failures by panicking"
)]

#[path = "support/api.rs"]
mod api;
mod support;

use std::time::Instant;

use api::Client;
use http::StatusCode;
use nexus::{Embedded, EmbeddedConfig, KvBackend};
use nexus_context::{ContextStore as _, Namespace, PostgresStore, RedisStore, TieredStore};
use nexus_store::NewAgent;
use nexus_tests::postgres::FreshDatabase;
use nexus_tests::{HttpClient, redis_url};
use serde_json::json;
use support::{percentile, print_row};

const CREATES: usize = 300;
const MESSAGES: usize = 500;
const READS: usize = 2000;
const IDLE_AGENTS: i64 = 1_000_000;

#[tokio::main]
async fn main() {
    let database = FreshDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = EmbeddedConfig::in_directory(dir.path());
    config.coordinator.database_url = database.url().to_owned();
    config.kv = KvBackend::Tiered {
        cache: redis_url(),
        record: database.url().to_owned(),
    };
    let platform = Embedded::start(config).await.unwrap();
    let api = Client {
        base: platform.base_url(),
        http: HttpClient::default(),
        token: String::new(),
    };
    let api = api.signed_up().await;
    let rss_empty = rss_bytes();

    // Agent create: over HTTP, and the same transaction on the store.
    let mut creates = Vec::with_capacity(CREATES);
    for index in 0..CREATES {
        let body = json!({"name": format!("a{index}"), "function": "counter"});
        let started = Instant::now();
        let created = api.post("/v1/projects/lab/agents", body.to_string()).await;
        creates.push(started.elapsed());
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    }
    let store = &platform.state().store;
    let project = store
        .with_retry(|tx| Box::pin(async move { tx.get_project_by_slug("lab").await }))
        .await
        .unwrap();
    let function = store
        .with_retry(|tx| Box::pin(async move { tx.get_function(project.id, "counter").await }))
        .await
        .unwrap();
    let mut direct = Vec::with_capacity(CREATES);
    for index in 0..CREATES {
        let new_agent = NewAgent {
            project_id: project.id,
            function_id: function.id,
            name: format!("direct{index}"),
            alias: "live".to_owned(),
        };
        let started = Instant::now();
        store
            .with_retry(|tx| {
                let new_agent = new_agent.clone();
                Box::pin(async move { tx.create_agent(&new_agent).await })
            })
            .await
            .unwrap();
        direct.push(started.elapsed());
    }
    print_row(
        "agent create (HTTP, Postgres)",
        &mut creates,
        "the store's transaction alone",
        &mut direct,
    );

    // A message (the counter: a read and a write of the agent's context) against the same
    // function through the trigger (the project's context).
    let agent = api
        .post(
            "/v1/projects/lab/agents",
            json!({"name": "busy", "function": "counter"}).to_string(),
        )
        .await
        .json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/v1/projects/lab/agents/{agent}/messages");
    let mut messages = Vec::with_capacity(MESSAGES);
    for _ in 0..MESSAGES {
        let started = Instant::now();
        let answer = api.post(&path, String::new()).await;
        messages.push(started.elapsed());
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    let mut triggered = Vec::with_capacity(MESSAGES);
    for _ in 0..MESSAGES {
        let started = Instant::now();
        let answer = api.http.get(&format!("{}/lab/counter/", api.base)).await;
        triggered.push(started.elapsed());
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    print_row(
        "message to an agent (HTTP)",
        &mut messages,
        "the function via the trigger",
        &mut triggered,
    );

    context_reads(database.url()).await;

    // A million idle agents: rows in the database, nothing in the process.
    let started = Instant::now();
    idle_agents(database.url(), project.id.0, function.id.0).await;
    let inserted = started.elapsed();
    for index in 0..100 {
        let listed = api
            .get(&format!(
                "/v1/projects/lab/agents?limit=500&after=idle-{index:07}"
            ))
            .await;
        assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    }
    let rss_full = rss_bytes();
    let per_agent = rss_full.saturating_sub(rss_empty) as f64 / IDLE_AGENTS as f64;
    println!(
        "process memory (RSS): {:.1} MiB with no agents, {:.1} MiB with {IDLE_AGENTS} idle ones ({:.1} s to insert): {per_agent:.3} bytes per idle agent",
        rss_empty as f64 / 1048576.0,
        rss_full as f64 / 1048576.0,
        inserted.as_secs_f64()
    );
    platform.shutdown().await.unwrap();
}

/// Context reads of one key: the tiered store, a bare Redis `GET`, and Postgres.
async fn context_reads(database_url: &str) {
    let prefix = format!("nexus-bench:{}:", uuid::Uuid::new_v4());
    let redis = RedisStore::connect(&redis_url(), prefix.clone())
        .await
        .unwrap();
    let record = PostgresStore::connect(database_url).await.unwrap();
    let tiered = TieredStore::new(
        RedisStore::connect(&redis_url(), format!("{prefix}tiered:"))
            .await
            .unwrap(),
        record.clone(),
    );
    let namespace = Namespace::agent_store("project", "agent", "default");
    let value = b"41".to_vec();
    tiered.set(&namespace, "count", &value, None).await.unwrap();
    redis.set(&namespace, "count", &value, None).await.unwrap();
    let mut through_tiered = Vec::with_capacity(READS);
    let mut bare = Vec::with_capacity(READS);
    let mut postgres = Vec::with_capacity(READS);
    for _ in 0..READS {
        let started = Instant::now();
        assert!(tiered.get(&namespace, "count").await.unwrap().is_some());
        through_tiered.push(started.elapsed());
        let started = Instant::now();
        assert!(redis.get(&namespace, "count").await.unwrap().is_some());
        bare.push(started.elapsed());
        let started = Instant::now();
        assert!(record.get(&namespace, "count").await.unwrap().is_some());
        postgres.push(started.elapsed());
    }
    print_row(
        "context get (Redis over Postgres)",
        &mut through_tiered,
        "a bare Redis GET",
        &mut bare,
    );
    println!(
        "context get (Postgres alone): p50 {:.3} ms",
        percentile(&mut postgres, 50).as_secs_f64() * 1e3
    );
    redis.delete(&namespace, "count").await.unwrap();
    tiered.delete(&namespace, "count").await.unwrap();
}

/// Inserts the idle agents in one statement (`generate_series` is Postgres', and this is a
/// benchmark's setup, not the platform's SQL).
async fn idle_agents(database_url: &str, project: uuid::Uuid, function: uuid::Uuid) {
    let pool = sqlx::PgPool::connect(database_url).await.unwrap();
    sqlx::query(
        "INSERT INTO agents (id, project_id, function_id, alias, name, state, created_at, \
         updated_at) SELECT gen_random_uuid(), $1, $2, 'live', 'idle-' || lpad(g::text, 7, '0'), \
         'idle', now(), now() FROM generate_series(1, $3) AS g",
    )
    .bind(project)
    .bind(function)
    .bind(IDLE_AGENTS)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

/// The process's resident memory.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}
