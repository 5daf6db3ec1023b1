//! Scale to zero and warm pools on the embedded platform: an app nobody calls is unloaded and
//! its compiled code dropped after the idle period, and its next call is a cold start; a
//! function with `min_warm` stays loaded however long it idles.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;

use crate::harness::Api;
use crate::trigger::Project;

const IDLE: Duration = Duration::from_millis(500);

/// The sum of the series of `name` on `/metrics`.
async fn metric(api: &Api, name: &str) -> f64 {
    let metrics = api.call("GET", "/metrics", None, None).await;
    metrics
        .text()
        .lines()
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn until(api: &Api, name: &str, wanted: f64) {
    let give_up = Instant::now() + Duration::from_secs(20);
    loop {
        let value = metric(api, name).await;
        if (value - wanted).abs() < f64::EPSILON {
            return;
        }
        assert!(
            Instant::now() < give_up,
            "{name} stayed at {value}, not {wanted}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn timed_call(api: &Api, path: &str) -> Duration {
    let started = Instant::now();
    let answer = api.invoke(path).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    started.elapsed()
}

#[tokio::test]
async fn idle_apps_scale_to_zero_and_min_warm_ones_stay_loaded() {
    let api = Api::start_unloading_after(IDLE).await;
    let project = Project::create(&api, "shop").await;
    project.deploy("idle", "headers", "").await;
    project.deploy("warm", "hello", "").await;
    let set = project
        .manage("PATCH", "warm", Some(json!({"min_warm": 1})))
        .await
        .json();
    assert_eq!(set["min_warm"], 1);
    timed_call(&api, "/shop/idle/").await;
    timed_call(&api, "/shop/warm/").await;

    // The idle one goes with its compiled code; the warm one, idle as long, stays.
    until(&api, "nexus_edge_loaded_apps", 1.0).await;
    until(&api, "nexus_edge_compiled_components", 1.0).await;
    assert!(metric(&api, "nexus_edge_idle_unloads_total").await >= 1.0);

    // The next call of the idle one is a cold start; the warm one's is not.
    let cold_starts = metric(&api, "nexus_edge_cold_starts_total").await;
    let warm = timed_call(&api, "/shop/warm/").await;
    assert_eq!(
        metric(&api, "nexus_edge_cold_starts_total").await,
        cold_starts
    );
    let cold = timed_call(&api, "/shop/idle/").await;
    assert_eq!(
        metric(&api, "nexus_edge_cold_starts_total").await,
        cold_starts + 1.0
    );
    println!("first call after idle {cold:?}; a warm function's call after idle {warm:?}");

    let unset = project
        .manage("PATCH", "warm", Some(json!({"min_warm": 0})))
        .await
        .json();
    assert_eq!(unset["min_warm"], 0);
    let refused = api
        .call(
            "PATCH",
            "/v1/projects/shop/functions/warm",
            Some(&project.token),
            Some(json!({"min_warm": 101})),
        )
        .await;
    assert_eq!(
        refused.status,
        StatusCode::BAD_REQUEST,
        "{}",
        refused.text()
    );
}
