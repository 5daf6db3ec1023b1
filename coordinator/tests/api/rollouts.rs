//! Progressive delivery: a version rolled out behind `live` in steps, judged against the old
//! one, rolled back by itself when it fails a fifth of its calls, moved to 100 % when healthy.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use http::StatusCode;
use nexus_coordinator::events::EventKind;
use serde_json::{Value, json};

use crate::harness::assert_error;
use crate::trigger::{Project, served_version, shop_with};

/// Calls `/shop/greet` four at a time until `rollout` has ended; its last state.
async fn drive_until_ended(project: &Project<'_>, rollout: &str) -> Value {
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        let calls = futures::stream::iter(0..40)
            .map(|_| project.api.invoke("/shop/greet"))
            .buffer_unordered(4)
            .collect::<Vec<_>>()
            .await;
        for call in &calls {
            assert!(
                call.status == StatusCode::OK || call.status == StatusCode::INTERNAL_SERVER_ERROR,
                "{}: {}",
                call.status,
                call.text()
            );
        }
        let state = project
            .manage("GET", &format!("greet/rollouts/{rollout}"), None)
            .await
            .json();
        if state["status"] != "running" {
            return state;
        }
        assert!(Instant::now() < give_up, "the rollout never ended: {state}");
    }
}

#[tokio::test]
async fn a_version_failing_a_fifth_of_its_calls_is_rolled_back_without_an_operator() {
    let (api, token) = shop_with("greet", "hello").await;
    let project = Project::shop(&api, &token);
    let flaky = project.deploy("greet", "flaky", "?alias=none").await;
    let mut events = api.platform.state().events.subscribe(None).await;

    let started = api
        .call(
            "POST",
            "/v1/projects/shop/functions/greet/rollouts",
            Some(&token),
            Some(json!({"version": flaky, "steps": [25, 50, 100], "step_ms": 1000, "min_requests": 40})),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text());
    let rollout = started.json();
    assert_eq!(
        (rollout["from_version"].as_i64(), rollout["weight"].as_i64()),
        (Some(1), Some(25))
    );
    let id = rollout["id"].as_str().unwrap().to_owned();

    let ended = drive_until_ended(&project, &id).await;
    assert_eq!(ended["status"], "rolled_back", "{ended}");
    let reason = ended["reason"].as_str().unwrap();
    assert!(
        reason.contains(&format!("version {flaky} failed")),
        "{reason}"
    );

    // The alias is back on version 1 alone, and every call goes there.
    let alias = project.manage("GET", "greet", None).await.json();
    let live = alias["aliases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|alias| alias["name"] == "live")
        .unwrap()
        .clone();
    assert_eq!(live["version"], 1, "{live}");
    assert!(live["canary"].is_null(), "{live}");
    for _ in 0..20 {
        assert_eq!(served_version(&api.invoke("/shop/greet").await), 1);
    }

    // The rollback was an event, after the start.
    let mut seen = Vec::new();
    while let Some(Ok(event)) = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .ok()
        .flatten()
    {
        if let EventKind::RolloutChanged { status, reason, .. } = event.kind {
            seen.push(status.clone());
            if status == "rolled_back" {
                assert!(reason.is_some_and(|reason| reason.contains("failed")));
                break;
            }
        }
    }
    assert_eq!(seen, ["running", "rolled_back"]);
}

#[tokio::test]
async fn a_healthy_version_reaches_all_traffic_step_by_step() {
    let (api, token) = shop_with("greet", "hello").await;
    let project = Project::shop(&api, &token);
    let next = project.deploy("greet", "hello", "?alias=none").await;

    // Latency is judged by the unit tests; here a loaded machine must not fail a healthy one.
    let started = api
        .call(
            "POST",
            "/v1/projects/shop/functions/greet/rollouts",
            Some(&token),
            Some(json!({"version": next, "steps": [10, 50, 100], "step_ms": 300, "min_requests": 20, "max_p99_ratio": 1000})),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text());
    let id = started.json()["id"].as_str().unwrap().to_owned();
    // One rollout per alias at a time.
    let again = api
        .call(
            "POST",
            "/v1/projects/shop/functions/greet/rollouts",
            Some(&token),
            Some(json!({"version": next})),
        )
        .await;
    assert_error(&again, StatusCode::CONFLICT, "conflict");

    let ended = drive_until_ended(&project, &id).await;
    assert_eq!(ended["status"], "completed", "{ended}");
    assert_eq!(ended["weight"], 100);
    for _ in 0..20 {
        assert_eq!(served_version(&api.invoke("/shop/greet").await), next);
    }
    let listed = project.manage("GET", "greet/rollouts", None).await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_rollouts_are_refused_and_a_running_one_can_be_cancelled() {
    let (api, token) = shop_with("greet", "hello").await;
    let project = Project::shop(&api, &token);
    let next = project.deploy("greet", "hello", "?alias=none").await;
    let start = |body: Value| {
        api.call(
            "POST",
            "/v1/projects/shop/functions/greet/rollouts",
            Some(&token),
            Some(body),
        )
    };
    for body in [
        json!({"version": next, "steps": [50, 10, 100]}),
        json!({"version": next, "steps": [10, 50]}),
        json!({"version": next, "step_ms": 1}),
        json!({"version": next, "max_error_rate_increase": 2.0}),
        json!({"version": 1}),
    ] {
        assert_error(
            &start(body.clone()).await,
            StatusCode::BAD_REQUEST,
            "bad_request",
        );
    }
    assert_error(
        &start(json!({"version": 99})).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let started = start(json!({"version": next, "step_ms": 3_600_000})).await;
    assert_eq!(started.status, StatusCode::CREATED, "{}", started.text());
    let id = started.json()["id"].as_str().unwrap().to_owned();
    let cancelled = project
        .manage("POST", &format!("greet/rollouts/{id}/cancel"), None)
        .await
        .json();
    assert_eq!(cancelled["status"], "cancelled");
    for _ in 0..20 {
        assert_eq!(served_version(&api.invoke("/shop/greet").await), 1);
    }
}
