//! Asynchronous invocations: `Prefer: respond-async` on the trigger and on agent messages,
//! `POST /v1/projects/{p}/invocations`, retries into the dead-letter list, redrive and purge,
//! idempotency keys, and `GET /v1/invocations/{id}`.

use std::collections::BTreeSet;
use std::time::Duration;

use futures::StreamExt as _;
use http::{Request, StatusCode};
use http_body_util::Full;
use nexus_coordinator::events::{EventId, EventKind, Listener};
use nexus_tests::{COUNTER_APP, TestResponse, app_tar};
use serde_json::{Value, json};

use crate::agents::lab_with;
use crate::harness::{Api, assert_error};

/// Long enough for any invocation here to reach its final status.
const DEADLINE: Duration = Duration::from_secs(30);

/// A project `lab` with the counter as `counter` and a guest that traps as `trap`, whose
/// invocations get two attempts with no wait between; the owner's token.
async fn lab(api: &Api) -> String {
    let upload = app_tar(COUNTER_APP, &[("counter.wasm", "counter")]);
    let owner = lab_with(api, "application/x-tar", upload).await;
    let trap = std::fs::read(nexus_tests::component_path("bad-trap")).unwrap();
    let deployed = api
        .send_bytes(
            "POST",
            "/v1/projects/lab/functions/trap/versions",
            &owner,
            "application/wasm",
            trap,
        )
        .await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());
    let policy = json!({"async_retry": {"max_attempts": 2, "max_age_ms": 60_000, "backoff_ms": 0}});
    let changed = api
        .call(
            "PATCH",
            "/v1/projects/lab/functions/trap",
            Some(&owner),
            Some(policy),
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.text());
    assert_eq!(changed.json()["async_retry"]["max_attempts"], 2);
    owner
}

/// Every event the bus still keeps, then new ones.
async fn events(api: &Api) -> Listener {
    api.platform
        .state()
        .events
        .subscribe(Some(EventId::default()))
        .await
}

/// Waits for the event that ends invocation `id`: finished or dead.
async fn ended(events: &mut Listener, id: &str) -> EventKind {
    tokio::time::timeout(DEADLINE, async {
        while let Some(event) = events.next().await {
            let kind = event.expect("events were missed").kind;
            match &kind {
                EventKind::InvocationFinished {
                    invocation: Some(invocation),
                    ..
                }
                | EventKind::InvocationDead { invocation, .. }
                    if invocation == id =>
                {
                    return kind;
                }
                _ => {}
            }
        }
        panic!("the event stream ended");
    })
    .await
    .expect("the invocation did not end in time")
}

async fn trigger_async(api: &Api, path: &str, key: Option<&str>) -> TestResponse {
    let mut request = Request::builder()
        .method("POST")
        .uri(format!("{}{path}", api.base))
        .header("prefer", "respond-async")
        .header("content-type", "text/plain");
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    api.client
        .send(request.body(Full::from("increment")).unwrap())
        .await
}

fn accepted_id(response: &TestResponse) -> String {
    assert_eq!(response.status, StatusCode::ACCEPTED, "{}", response.text());
    let id = response.json()["id"].as_str().unwrap().to_owned();
    assert_eq!(
        response.headers["location"],
        format!("/v1/invocations/{id}").as_str()
    );
    assert_eq!(response.headers["preference-applied"], "respond-async");
    id
}

async fn invocation(api: &Api, token: &str, id: &str) -> Value {
    let found = api
        .call("GET", &format!("/v1/invocations/{id}"), Some(token), None)
        .await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.text());
    found.json()
}

#[tokio::test]
async fn an_async_trigger_request_is_recorded_then_run_once() {
    let api = Api::start().await;
    let owner = lab(&api).await;
    let mut events = events(&api).await;

    let accepted = trigger_async(&api, "/lab/counter/anything?x=1", None).await;
    let id = accepted_id(&accepted);
    assert_eq!(accepted.json()["status"], "queued");
    assert!(matches!(
        ended(&mut events, &id).await,
        EventKind::InvocationFinished { status: 200, .. }
    ));

    let record = invocation(&api, &owner, &id).await;
    assert_eq!(record["status"], "succeeded", "{record}");
    assert_eq!(record["function"], "counter");
    assert_eq!(record["version"], 1);
    assert_eq!(record["attempts"], 1);
    let attempt = &record["attempt_log"][0];
    assert_eq!(attempt["status"], "succeeded");
    assert_eq!(attempt["http_status"], 200);
    assert_eq!(attempt["node"], "local");
    assert!(attempt["duration_ms"].as_i64().unwrap() >= 0);
    assert_eq!(record["result"]["status"], 200);
    assert_eq!(record["result"]["body"], "1");
    assert_eq!(record["result"]["truncated"], false);

    // It ran once: the next call counts on from it.
    let next = api.call("POST", "/lab/counter/", None, None).await;
    assert_eq!(next.text(), "2");

    // Only members of the project see it; to anyone else it does not exist.
    let anonymous = api
        .call("GET", &format!("/v1/invocations/{id}"), None, None)
        .await;
    assert_error(&anonymous, StatusCode::UNAUTHORIZED, "unauthenticated");
    let stranger = api.user("stranger@example.com").await;
    let hidden = api
        .call(
            "GET",
            &format!("/v1/invocations/{id}"),
            Some(&stranger),
            None,
        )
        .await;
    assert_error(&hidden, StatusCode::NOT_FOUND, "not_found");
    let nonsense = api
        .call("GET", "/v1/invocations/not-an-id", Some(&owner), None)
        .await;
    assert_error(&nonsense, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn failures_are_retried_then_dead_lettered_redriven_and_purged() {
    let api = Api::start().await;
    let owner = lab(&api).await;
    let mut events = events(&api).await;

    let accepted = api
        .call(
            "POST",
            "/v1/projects/lab/invocations",
            Some(&owner),
            Some(json!({"function": "trap", "mode": "async", "body": "boom"})),
        )
        .await;
    let id = accepted_id(&accepted);
    assert!(matches!(
        ended(&mut events, &id).await,
        EventKind::InvocationDead { .. }
    ));
    let record = invocation(&api, &owner, &id).await;
    assert_eq!(record["status"], "dead", "{record}");
    assert_eq!(
        (record["attempts"].as_i64(), record["max_attempts"].as_i64()),
        (Some(2), Some(2))
    );
    for attempt in record["attempt_log"].as_array().unwrap() {
        assert_eq!(attempt["status"], "error", "{attempt}");
        assert!(
            attempt["error"].as_str().unwrap().contains("trap"),
            "{attempt}"
        );
    }

    let dead = api
        .call(
            "GET",
            "/v1/projects/lab/invocations?status=dead",
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(dead.status, StatusCode::OK, "{}", dead.text());
    let dead = dead.json();
    let listed: Vec<&str> = dead["invocations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| entry["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [id.as_str()]);

    // Redrive: two more attempts (the function's budget), then dead again.
    let redriven = api
        .call(
            "POST",
            "/v1/projects/lab/invocations/dead/redrive",
            Some(&owner),
            Some(json!({"function": "trap"})),
        )
        .await;
    assert_eq!(redriven.status, StatusCode::OK, "{}", redriven.text());
    assert_eq!(redriven.json()["redriven"], json!([id]));
    assert!(matches!(
        ended(&mut events, &id).await,
        EventKind::InvocationDead { .. }
    ));
    let record = invocation(&api, &owner, &id).await;
    assert_eq!(record["attempts"], 4, "{record}");

    let purged = api
        .call(
            "POST",
            "/v1/projects/lab/invocations/dead/purge",
            Some(&owner),
            Some(json!({"ids": [id]})),
        )
        .await;
    assert_eq!(purged.status, StatusCode::OK, "{}", purged.text());
    assert_eq!(purged.json()["purged"], 1);
    let gone = api
        .call("GET", &format!("/v1/invocations/{id}"), Some(&owner), None)
        .await;
    assert_error(&gone, StatusCode::NOT_FOUND, "not_found");
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_first_invocation() {
    let api = Api::start().await;
    let owner = lab(&api).await;
    let mut events = events(&api).await;

    let first = trigger_async(&api, "/lab/counter/", Some("order-1")).await;
    let id = accepted_id(&first);
    let again = trigger_async(&api, "/lab/counter/", Some("order-1")).await;
    assert_eq!(accepted_id(&again), id);
    assert_eq!(again.headers["nexus-idempotent-replay"], "true");
    ended(&mut events, &id).await;
    let record = invocation(&api, &owner, &id).await;
    assert_eq!(record["idempotency_key"], "order-1");
    // The key in the API's body names the same invocation.
    let through_api = api
        .call(
            "POST",
            "/v1/projects/lab/invocations",
            Some(&owner),
            Some(json!({"function": "counter", "mode": "async", "idempotency_key": "order-1"})),
        )
        .await;
    assert_eq!(accepted_id(&through_api), id);
    assert_eq!(through_api.json()["status"], "succeeded");
    // One run in all.
    let next = api.call("POST", "/lab/counter/", None, None).await;
    assert_eq!(next.text(), "2");
}

#[tokio::test]
async fn sync_invocations_answer_with_the_functions_response_and_bad_ones_are_refused() {
    let api = Api::start().await;
    let owner = lab(&api).await;
    let invoke = |body: Value| {
        api.call(
            "POST",
            "/v1/projects/lab/invocations",
            Some(&owner),
            Some(body),
        )
    };

    let answered = invoke(json!({"function": "counter"})).await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    assert_eq!(answered.text(), "1");
    assert_eq!(answered.headers["nexus-version"], "1");

    for (body, status, code) in [
        (
            json!({"function": "missing"}),
            StatusCode::NOT_FOUND,
            "not_found",
        ),
        (
            json!({"function": "counter", "path": "no-slash"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"function": "counter", "method": "B A D"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"function": "counter", "body": "a", "body_base64": "YQ=="}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"function": "counter", "mode": "later"}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            json!({"function": "counter", "mode": "async", "idempotency_key": ""}),
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
    ] {
        assert_error(&invoke(body.clone()).await, status, code);
    }
    let bad_status = api
        .call(
            "GET",
            "/v1/projects/lab/invocations?status=lost",
            Some(&owner),
            None,
        )
        .await;
    assert_error(&bad_status, StatusCode::BAD_REQUEST, "bad_request");
    let bad_policy = api
        .call(
            "PATCH",
            "/v1/projects/lab/functions/trap",
            Some(&owner),
            Some(
                json!({"async_retry": {"max_attempts": 0, "max_age_ms": 60_000, "backoff_ms": 0}}),
            ),
        )
        .await;
    assert_error(&bad_policy, StatusCode::BAD_REQUEST, "bad_request");
    // Nothing was recorded by any of them.
    let listed = api
        .call("GET", "/v1/projects/lab/invocations", Some(&owner), None)
        .await;
    assert_eq!(listed.json()["invocations"], json!([]));
    let next = invoke(json!({"function": "counter"})).await;
    assert_eq!(next.text(), "2");
}

#[tokio::test]
async fn async_messages_to_an_agent_run_in_its_turn_with_its_stores() {
    let api = Api::start().await;
    let owner = lab(&api).await;
    let mut events = events(&api).await;
    let agent = api
        .call(
            "POST",
            "/v1/projects/lab/agents",
            Some(&owner),
            Some(json!({"name": "a", "function": "counter"})),
        )
        .await;
    let agent = agent.json()["id"].as_str().unwrap().to_owned();
    let request = Request::builder()
        .method("POST")
        .uri(format!(
            "{}/v1/projects/lab/agents/{agent}/messages",
            api.base
        ))
        .header("authorization", format!("Bearer {owner}"))
        .header("prefer", "respond-async")
        .body(Full::from("increment"))
        .unwrap();
    let id = accepted_id(&api.client.send(request).await);
    ended(&mut events, &id).await;
    let record = invocation(&api, &owner, &id).await;
    assert_eq!(record["agent"], agent.as_str());
    assert_eq!(record["result"]["body"], "1");
    // The agent's own count, not the function's.
    let sync = api
        .send_bytes(
            "POST",
            &format!("/v1/projects/lab/agents/{agent}/messages"),
            &owner,
            "text/plain",
            b"increment".to_vec(),
        )
        .await;
    assert_eq!(sync.text(), "2");
    let plain = api.call("POST", "/lab/counter/", None, None).await;
    assert_eq!(plain.text(), "1");
}

#[tokio::test]
async fn a_thousand_async_invocations_over_a_redis_stream_each_run_once() {
    let api = Api::start_with_redis_queue().await;
    let owner = lab(&api).await;
    let mut events = events(&api).await;
    let accepted = futures::future::join_all((0..1000).map(|n| {
        let api = &api;
        let owner = &owner;
        async move {
            let response = api
                .call(
                    "POST",
                    "/v1/projects/lab/invocations",
                    Some(owner),
                    Some(json!({"function": "counter", "mode": "async", "path": format!("/{n}")})),
                )
                .await;
            accepted_id(&response)
        }
    }))
    .await;
    let mut waiting: BTreeSet<String> = accepted.into_iter().collect();
    assert_eq!(waiting.len(), 1000);
    tokio::time::timeout(Duration::from_secs(120), async {
        while !waiting.is_empty() {
            let event = events.next().await.unwrap().expect("events were missed");
            if let EventKind::InvocationFinished {
                invocation: Some(id),
                status,
                ..
            } = event.kind
            {
                assert_eq!(status, 200);
                assert!(waiting.remove(&id), "{id} finished twice");
            }
        }
    })
    .await
    .expect("every invocation finishes");
    // Each ran exactly once.
    let listed = api
        .call(
            "GET",
            "/v1/projects/lab/invocations?status=succeeded&limit=1000",
            Some(&owner),
            None,
        )
        .await;
    let listed = listed.json();
    let listed = listed["invocations"].as_array().unwrap();
    assert_eq!(listed.len(), 1000);
    assert!(listed.iter().all(|entry| entry["attempts"] == 1));
}
