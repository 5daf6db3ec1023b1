//! Schedules: one-shots and cron expressions fire asynchronous invocations, each tick once,
//! also with two coordinators on one database.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt as _;
use http::StatusCode;
use nexus_coordinator::events::{EventId, EventKind, Listener};
use nexus_store::InvocationStatus;
use nexus_tests::{COUNTER_APP, app_tar};
use serde_json::{Value, json};

use crate::agents::lab_with;
use crate::harness::{Api, assert_error};

/// Long enough for any schedule here to fire.
const DEADLINE: Duration = Duration::from_secs(30);

async fn lab(api: &Api) -> String {
    let upload = app_tar(COUNTER_APP, &[("counter.wasm", "counter")]);
    lab_with(api, "application/x-tar", upload).await
}

async fn create(api: &Api, token: &str, body: Value) -> nexus_tests::TestResponse {
    api.call(
        "POST",
        "/v1/projects/lab/schedules",
        Some(token),
        Some(body),
    )
    .await
}

/// The next event of `kind` (`queued` or `finished`) for an asynchronous invocation: its id.
async fn next_invocation(events: &mut Listener, finished: bool) -> String {
    tokio::time::timeout(DEADLINE, async {
        loop {
            let event = events.next().await.unwrap().expect("events were missed");
            match event.kind {
                EventKind::InvocationFinished {
                    invocation: Some(id),
                    ..
                } if finished => return id,
                EventKind::InvocationQueued { invocation, .. } if !finished => return invocation,
                _ => {}
            }
        }
    })
    .await
    .expect("the schedule did not fire in time")
}

#[tokio::test]
async fn a_one_shot_fires_once_and_schedules_are_listed_and_deleted() {
    let api = Api::start().await;
    let owner = lab(&api).await;
    let mut events = api
        .platform
        .state()
        .events
        .subscribe(Some(EventId::default()))
        .await;

    let created = create(
        &api,
        &owner,
        json!({"name": "once", "function": "counter", "after_ms": 50, "path": "/tick"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let schedule = created.json();
    let id = schedule["id"].as_str().unwrap().to_owned();
    assert_eq!(schedule["fired"], 0);
    assert!(schedule["next_fire_at"].is_string());

    let invocation = next_invocation(&mut events, true).await;
    let record = api
        .call(
            "GET",
            &format!("/v1/invocations/{invocation}"),
            Some(&owner),
            None,
        )
        .await
        .json();
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["result"]["body"], "1");
    assert!(
        record["idempotency_key"]
            .as_str()
            .unwrap()
            .starts_with(&format!("schedule:{id}:")),
        "{record}"
    );
    let path = format!("/v1/projects/lab/schedules/{id}");
    let fired = api.call("GET", &path, Some(&owner), None).await.json();
    assert_eq!(fired["fired"], 1);
    assert_eq!(fired["next_fire_at"], Value::Null);

    let cron = create(
        &api,
        &owner,
        json!({"name": "hourly", "function": "counter", "cron": "0 * * * *"}),
    )
    .await;
    assert_eq!(cron.status, StatusCode::CREATED, "{}", cron.text());
    let listed = api
        .call("GET", "/v1/projects/lab/schedules", Some(&owner), None)
        .await
        .json();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|schedule| schedule["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hourly", "once"]);

    for (body, status, code) in [
        (
            json!({"name": "x", "function": "counter"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"name": "x", "function": "counter", "cron": "* * * * *", "after_ms": 5}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"name": "x", "function": "counter", "cron": "every day"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"name": "x", "function": "counter", "at": "tomorrow"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"name": "x y", "function": "counter", "after_ms": 5}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"name": "x", "function": "counter", "after_ms": 5, "path": "x"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"name": "x", "function": "missing", "after_ms": 5}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            json!({"name": "hourly", "function": "counter", "after_ms": 5}),
            StatusCode::CONFLICT,
            "conflict",
        ),
    ] {
        assert_error(&create(&api, &owner, body).await, status, code);
    }

    let deleted = api.call("DELETE", &path, Some(&owner), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);
    assert_error(
        &api.call("GET", &path, Some(&owner), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn each_cron_tick_fires_once_across_two_coordinators() {
    let api = Api::start_on_postgres().await;
    let owner = lab(&api).await;
    let (replica, _replica_dir) = api.replica().await;
    let (mine, theirs) = (
        api.platform.state().events.subscribe(None).await,
        replica.state().events.subscribe(None).await,
    );
    let mut events: Listener = Box::pin(futures::stream::select(mine, theirs));

    let created = create(
        &api,
        &owner,
        json!({"name": "every-second", "function": "counter", "cron": "* * * * * *"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let mut queued = BTreeSet::new();
    while queued.len() < 4 {
        queued.insert(next_invocation(&mut events, false).await);
    }
    let deleted = api
        .call(
            "DELETE",
            &format!("/v1/projects/lab/schedules/{id}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    // Every invocation the schedule made names a tick of its own.
    let project = api
        .store
        .with_retry(|tx| Box::pin(async move { tx.get_project_by_slug("lab").await }))
        .await
        .unwrap();
    let recorded = api
        .store
        .with_retry(|tx| {
            Box::pin(async move {
                tx.list_invocations(project.id, None, None, None, 1000)
                    .await
            })
        })
        .await
        .unwrap();
    let ticks: Vec<&str> = recorded
        .iter()
        .filter_map(|record| record.idempotency_key.as_deref())
        .filter(|key| key.starts_with(&format!("schedule:{id}:")))
        .collect();
    let distinct: BTreeSet<&&str> = ticks.iter().collect();
    assert!(ticks.len() >= 4, "{ticks:?}");
    assert_eq!(distinct.len(), ticks.len(), "a tick fired twice: {ticks:?}");
    let dead: Vec<_> = recorded
        .iter()
        .filter(|record| record.status == InvocationStatus::Dead)
        .map(|record| &record.error)
        .collect();
    assert!(dead.is_empty(), "{dead:?}");
}
