//! Agents over the REST API: created from a function alias, listed a page at a time, suspended
//! and resumed, deleted; names unique in a project and free again after a delete.

use http::StatusCode;
use serde_json::{Value, json};

use crate::harness::{Api, assert_error};

/// A project `lab` with function `counter` deployed (alias `live`) from `upload`, an upload of
/// `content_type`; the owner's token.
pub async fn lab_with(api: &Api, content_type: &str, upload: Vec<u8>) -> String {
    let owner = api.user("owner@example.com").await;
    let created = api
        .call(
            "POST",
            "/v1/projects",
            Some(&owner),
            Some(json!({"name": "lab"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let deployed = api
        .send_bytes(
            "POST",
            "/v1/projects/lab/functions/counter/versions",
            &owner,
            content_type,
            upload,
        )
        .await;
    assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());
    owner
}

/// [`lab_with`] the `hello` component.
async fn lab(api: &Api) -> String {
    let hello = std::fs::read(nexus_tests::component_path("hello")).unwrap();
    lab_with(api, "application/wasm", hello).await
}

async fn create(api: &Api, token: &str, body: Value) -> nexus_tests::TestResponse {
    api.call("POST", "/v1/projects/lab/agents", Some(token), Some(body))
        .await
}

#[tokio::test]
async fn agents_are_created_paged_suspended_resumed_and_deleted() {
    let api = Api::start().await;
    let owner = lab(&api).await;
    let mut ids = Vec::new();
    for name in ["carol", "alice", "bob"] {
        let created = create(&api, &owner, json!({"name": name, "function": "counter"})).await;
        assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
        let agent = created.json();
        assert_eq!(agent["name"], name);
        assert_eq!(agent["alias"], "live");
        assert_eq!(agent["state"], "active");
        ids.push(agent["id"].as_str().unwrap().to_owned());
    }

    let first = api
        .call("GET", "/v1/projects/lab/agents?limit=2", Some(&owner), None)
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.text());
    let first = first.json();
    let names = |page: &Value| -> Vec<String> {
        page["agents"]
            .as_array()
            .unwrap()
            .iter()
            .map(|agent| agent["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&first), ["alice", "bob"]);
    assert_eq!(first["next"], "bob");
    let second = api
        .call(
            "GET",
            "/v1/projects/lab/agents?limit=2&after=bob",
            Some(&owner),
            None,
        )
        .await
        .json();
    assert_eq!(names(&second), ["carol"]);
    assert!(second["next"].is_null(), "{second}");

    let carol = &ids[0];
    let path = format!("/v1/projects/lab/agents/{carol}");
    let suspended = api
        .call("POST", &format!("{path}/suspend"), Some(&owner), None)
        .await;
    assert_eq!(suspended.status, StatusCode::OK, "{}", suspended.text());
    assert_eq!(suspended.json()["state"], "suspended");
    assert_eq!(
        api.call("GET", &path, Some(&owner), None).await.json()["state"],
        "suspended"
    );
    let resumed = api
        .call("POST", &format!("{path}/resume"), Some(&owner), None)
        .await;
    assert_eq!(resumed.json()["state"], "active");

    let deleted = api.call("DELETE", &path, Some(&owner), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    assert_error(
        &api.call("GET", &path, Some(&owner), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_error(
        &api.call("DELETE", &path, Some(&owner), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // The name is free again, for a new agent with a new id.
    let again = create(
        &api,
        &owner,
        json!({"name": "carol", "function": "counter"}),
    )
    .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.text());
    assert_ne!(again.json()["id"].as_str().unwrap(), carol);
}

#[tokio::test]
async fn bad_agent_requests_get_typed_errors_and_change_nothing() {
    let api = Api::start().await;
    let owner = lab(&api).await;
    let created = create(
        &api,
        &owner,
        json!({"name": "alice", "function": "counter"}),
    )
    .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());

    let duplicate = create(
        &api,
        &owner,
        json!({"name": "alice", "function": "counter"}),
    )
    .await;
    assert_error(&duplicate, StatusCode::CONFLICT, "conflict");
    for name in ["", "has/slash", "has space", &"x".repeat(129)] {
        let bad = create(&api, &owner, json!({"name": name, "function": "counter"})).await;
        assert_error(&bad, StatusCode::BAD_REQUEST, "bad_request");
    }
    let no_function = create(&api, &owner, json!({"name": "bob", "function": "missing"})).await;
    assert_error(&no_function, StatusCode::NOT_FOUND, "not_found");
    let no_alias = create(
        &api,
        &owner,
        json!({"name": "bob", "function": "counter", "alias": "canary"}),
    )
    .await;
    assert_error(&no_alias, StatusCode::NOT_FOUND, "not_found");
    for query in ["limit=0", "limit=501"] {
        let page = api
            .call(
                "GET",
                &format!("/v1/projects/lab/agents?{query}"),
                Some(&owner),
                None,
            )
            .await;
        assert_error(&page, StatusCode::BAD_REQUEST, "bad_request");
    }
    assert_error(
        &api.call(
            "GET",
            "/v1/projects/lab/agents/not-an-id",
            Some(&owner),
            None,
        )
        .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let listed = api
        .call("GET", "/v1/projects/lab/agents", Some(&owner), None)
        .await
        .json();
    assert_eq!(listed["agents"].as_array().unwrap().len(), 1, "{listed}");
}

/// Each committed change of an agent is one event on the bus, in order; a refused one is none.
#[tokio::test]
async fn every_agent_change_is_published_once_committed() {
    use futures::{FutureExt as _, StreamExt as _};

    let api = Api::start().await;
    let owner = lab(&api).await;
    let mut events = api.platform.state().events.subscribe(None).await;
    let created = create(
        &api,
        &owner,
        json!({"name": "alice", "function": "counter"}),
    )
    .await;
    let id = created.json()["id"].as_str().unwrap().to_owned();
    let path = format!("/v1/projects/lab/agents/{id}");
    let suspended = api
        .call("POST", &format!("{path}/suspend"), Some(&owner), None)
        .await;
    assert_eq!(suspended.status, StatusCode::OK);
    let deleted = api.call("DELETE", &path, Some(&owner), None).await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    let mut published = Vec::new();
    for _ in 0..3 {
        let next = tokio::time::timeout(std::time::Duration::from_secs(10), events.next());
        published.push(next.await.unwrap().unwrap().unwrap());
    }
    assert!(published.windows(2).all(|pair| pair[0].id < pair[1].id));
    let shapes: Vec<Value> = published
        .iter()
        .map(|event| serde_json::to_value(event).unwrap())
        .collect();
    assert_eq!(shapes[0]["type"], "agent_created", "{shapes:?}");
    assert_eq!(
        (&shapes[0]["agent"], &shapes[0]["name"]),
        (&json!(id), &json!("alice"))
    );
    assert_eq!(shapes[1]["type"], "agent_changed");
    assert_eq!(shapes[1]["state"], "suspended");
    assert_eq!(shapes[2]["type"], "agent_deleted");
    assert_eq!(shapes[2]["id"], published[2].id.to_string());

    let refused = create(
        &api,
        &owner,
        json!({"name": "no/slash", "function": "counter"}),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert!(
        events.next().now_or_never().is_none(),
        "a refused change was published"
    );
}
