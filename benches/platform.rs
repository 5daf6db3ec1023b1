//! The embedded platform's control-plane figures, each printed next to the floor it cannot
//! beat, measured in the same run over real HTTP on loopback:
//!
//! - login p50 against one argon2id verification (the work a login must do);
//! - deploy → first 200 for a component never seen before (new bytes, so it is compiled: by
//!   Winch first, Cranelift in the background), against compiling the same bytes with
//!   Cranelift alone, as a runtime without the baseline tier must before it can answer.
//!
//! Run with `cargo bench --bench platform` (or `make bench`).
#![expect(
    clippy::unwrap_used,
    reason = "a benchmark reports failures by panicking"
)]

mod support;

use std::time::{Duration, Instant};

use http::{Request, StatusCode};
use http_body_util::Full;
use nexus::{Embedded, EmbeddedConfig};
use nexus_coordinator::auth::password;
use nexus_runtime::{Limits, Runtime, RuntimeConfig, Tier};
use nexus_tests::HttpClient;
use serde_json::{Value, json};
use support::{percentile, print_row};

const LOGINS: usize = 30;
const DEPLOYS: usize = 15;
const PASSWORD: &str = "correct horse battery";

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = EmbeddedConfig::in_directory(dir.path());
    // The bench logs one account in many times: the abuse limits would refuse it.
    config.coordinator.rate_limits = nexus_coordinator::limits::RateLimitConfig::unlimited();
    let platform = Embedded::start(config).await.unwrap();
    let base = platform.base_url();
    let client = HttpClient::default();

    let account = json!({"email": "bench@example.com", "password": PASSWORD});
    let registered = post_json(&client, &format!("{base}/v1/auth/register"), &account, None).await;
    assert_eq!(registered.0, StatusCode::CREATED);
    let mut logins = Vec::with_capacity(LOGINS);
    let mut token = String::new();
    for _ in 0..LOGINS {
        let started = Instant::now();
        let (status, body) =
            post_json(&client, &format!("{base}/v1/auth/login"), &account, None).await;
        logins.push(started.elapsed());
        assert_eq!(status, StatusCode::OK);
        token = body["access_token"].as_str().unwrap().to_owned();
    }
    let phc = password::hash(PASSWORD).unwrap();
    let mut verifications = timed(LOGINS, || assert!(password::verify(PASSWORD, &phc)));
    print_row(
        "login (HTTP, SQLite)",
        &mut logins,
        "argon2id verify",
        &mut verifications,
    );

    let created = post_json(
        &client,
        &format!("{base}/v1/projects"),
        &json!({"name": "bench"}),
        Some(&token),
    )
    .await;
    assert_eq!(created.0, StatusCode::CREATED);
    let hello = std::fs::read(nexus_tests::component_path("hello")).unwrap();
    let (mut deploys, mut first_answers, mut totals) = (Vec::new(), Vec::new(), Vec::new());
    let mut tiers = Vec::new();
    for round in 0..DEPLOYS {
        let component = with_nonce(
            &hello,
            &format!("platform-bench-{round}-{:?}", Instant::now()),
        );
        let digest = nexus_proto::Digest::of(&component);
        let started = Instant::now();
        let deployed = client
            .send(
                Request::post(format!(
                    "{base}/v1/projects/bench/functions/f{round}/versions"
                ))
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/wasm")
                .body(Full::from(component))
                .unwrap(),
            )
            .await;
        assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());
        let deployed_at = Instant::now();
        let answer = client.get(&format!("{base}/bench/f{round}/")).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        deploys.push(deployed_at - started);
        first_answers.push(deployed_at.elapsed());
        totals.push(started.elapsed());
        if let Some(compiled) = platform.host().runtime().component(&digest) {
            tiers.push(compiled.tier());
            // Each deploy lands on an idle process: the last one's optimized compile is done.
            compiled.optimized().await;
        }
    }
    let runtime = Runtime::new(
        RuntimeConfig {
            limits: Limits::default(),
            compile_cache: None,
            state_dir: None,
            baseline_tier: false,
        },
        std::sync::Arc::new(nexus_context::MemoryStore::new()),
    )
    .unwrap();
    let mut compiles = Vec::new();
    for round in 0..DEPLOYS {
        let component = with_nonce(&hello, &format!("compile-only-{round}"));
        let started = Instant::now();
        runtime.prepare("hello", &component).unwrap();
        compiles.push(started.elapsed());
    }
    print_row(
        "deploy → first 200 (new component)",
        &mut totals,
        "Cranelift compile + link alone",
        &mut compiles,
    );
    let baseline = tiers.iter().filter(|tier| **tier == Tier::Baseline).count();
    println!(
        "  first answers on baseline (Winch) code: {baseline} of {}; optimized code replaces it \
         in the background",
        tiers.len()
    );
    println!(
        "  of which: deploy request p50 {:.1} ms (upload, validate = compile, store, load), \
         deploy answered → first 200 p50 {:.2} ms",
        percentile(&mut deploys, 50).as_secs_f64() * 1e3,
        percentile(&mut first_answers, 50).as_secs_f64() * 1e3
    );
    platform.shutdown().await.unwrap();
}

async fn post_json(
    client: &HttpClient,
    url: &str,
    body: &Value,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::post(url).header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = client
        .send(request.body(Full::from(body.to_string())).unwrap())
        .await;
    let json = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
    (response.status, json)
}

fn timed(rounds: usize, mut work: impl FnMut()) -> Vec<Duration> {
    (0..rounds)
        .map(|_| {
            let started = Instant::now();
            work();
            started.elapsed()
        })
        .collect()
}

/// `component` with a custom section holding `nonce` appended: new bytes, a new digest, the
/// same behaviour.
fn with_nonce(component: &[u8], nonce: &str) -> Vec<u8> {
    let name = b"nexus-bench";
    let mut payload = leb128(name.len());
    payload.extend_from_slice(name);
    payload.extend_from_slice(nonce.as_bytes());
    let mut bytes = component.to_vec();
    bytes.push(0);
    bytes.extend(leb128(payload.len()));
    bytes.extend(payload);
    bytes
}

fn leb128(mut value: usize) -> Vec<u8> {
    let mut bytes = Vec::new();
    loop {
        let low = u8::try_from(value & 0x7f).unwrap();
        value >>= 7;
        if value == 0 {
            bytes.push(low);
            return bytes;
        }
        bytes.push(low | 0x80);
    }
}
