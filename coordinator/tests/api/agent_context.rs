//! An agent's context through the API: the stores its function sees, read and written with
//! etags, compare-and-swap and TTLs; initial context at create.

use http::{Request, StatusCode};
use http_body_util::Full;
use nexus_tests::{COUNTER_APP, TestResponse, app_tar};
use serde_json::json;

use crate::agents::lab_with;
use crate::harness::{Api, assert_error};

/// A project `lab` running `counter` with agent `a` created with `body`'s extra fields; the
/// owner's token and the agent's context path.
async fn lab(api: &Api, extra: serde_json::Value) -> (String, String) {
    let upload = app_tar(COUNTER_APP, &[("counter.wasm", "counter")]);
    let owner = lab_with(api, "application/x-tar", upload).await;
    let mut body = json!({"name": "a", "function": "counter"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let agent = api
        .call("POST", "/v1/projects/lab/agents", Some(&owner), Some(body))
        .await;
    assert_eq!(agent.status, StatusCode::CREATED, "{}", agent.text());
    let id = agent.json()["id"].as_str().unwrap().to_owned();
    (owner, format!("/v1/projects/lab/agents/{id}"))
}

async fn send(
    api: &Api,
    method: &str,
    path: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> TestResponse {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("{}{path}", api.base))
        .header("authorization", format!("Bearer {token}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    api.client
        .send(request.body(Full::from(body.to_vec())).unwrap())
        .await
}

fn etag(response: &TestResponse) -> String {
    response.headers["etag"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_context_is_the_agents_key_value_store_as_its_function_sees_it() {
    let api = Api::start().await;
    let (owner, agent) = lab(&api, json!({"context": {"count": "41"}})).await;

    let message = send(&api, "POST", &format!("{agent}/messages"), &owner, &[], b"").await;
    assert_eq!(
        message.text(),
        "42",
        "the function sees the initial context"
    );
    let read = send(
        &api,
        "GET",
        &format!("{agent}/context/count"),
        &owner,
        &[],
        b"",
    )
    .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.text());
    assert_eq!(read.text(), "42");
    assert_eq!(read.headers["content-type"], "application/octet-stream");
    assert!(!read.headers.contains_key("nexus-ttl-ms"));

    let written = send(
        &api,
        "PUT",
        &format!("{agent}/context/count"),
        &owner,
        &[],
        b"100",
    )
    .await;
    assert_eq!(written.status, StatusCode::NO_CONTENT, "{}", written.text());
    let message = send(&api, "POST", &format!("{agent}/messages"), &owner, &[], b"").await;
    assert_eq!(
        message.text(),
        "101",
        "the function sees what the API wrote"
    );

    let keys = api
        .call("GET", &format!("{agent}/context"), Some(&owner), None)
        .await;
    assert_eq!(keys.json()["keys"], json!(["count"]));
    let other_store = api
        .call(
            "GET",
            &format!("{agent}/context?store=other"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(other_store.json()["keys"], json!([]));
}

#[tokio::test]
async fn writes_can_be_conditional_or_expire() {
    let api = Api::start().await;
    let (owner, agent) = lab(&api, json!({})).await;
    let key = format!("{agent}/context/k");
    let create_only = [("if-none-match", "*")];

    let created = send(&api, "PUT", &key, &owner, &create_only, b"one").await;
    assert_eq!(created.status, StatusCode::NO_CONTENT, "{}", created.text());
    let again = send(&api, "PUT", &key, &owner, &create_only, b"two").await;
    assert_error(
        &again,
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    );

    let current = send(&api, "GET", &key, &owner, &[], b"").await;
    assert_eq!(etag(&current), etag(&created));
    let stale = [("if-match", "\"0000\"")];
    let refused = send(&api, "PUT", &key, &owner, &stale, b"two").await;
    assert_error(
        &refused,
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    );
    let matching = etag(&current);
    let swapped = send(
        &api,
        "PUT",
        &key,
        &owner,
        &[("if-match", &matching)],
        b"two",
    )
    .await;
    assert_eq!(swapped.status, StatusCode::NO_CONTENT, "{}", swapped.text());
    assert_ne!(etag(&swapped), matching);
    // The etag it answered is the one a reader sees, and the old one no longer matches.
    let read = send(&api, "GET", &key, &owner, &[], b"").await;
    assert_eq!(
        (read.text(), etag(&read)),
        ("two".to_owned(), etag(&swapped))
    );
    let late = send(
        &api,
        "PUT",
        &key,
        &owner,
        &[("if-match", &matching)],
        b"three",
    )
    .await;
    assert_error(
        &late,
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
    );

    let expiring = send(
        &api,
        "PUT",
        &format!("{key}?ttl_ms=60000"),
        &owner,
        &[],
        b"t",
    )
    .await;
    assert_eq!(
        expiring.status,
        StatusCode::NO_CONTENT,
        "{}",
        expiring.text()
    );
    let read = send(&api, "GET", &key, &owner, &[], b"").await;
    let left: u64 = read.headers["nexus-ttl-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(left > 0 && left <= 60_000, "{left}");
    let gone = send(&api, "PUT", &format!("{key}?ttl_ms=0"), &owner, &[], b"t").await;
    assert_eq!(gone.status, StatusCode::NO_CONTENT);
    assert_error(
        &send(&api, "GET", &key, &owner, &[], b"").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );

    let both = send(
        &api,
        "PUT",
        &format!("{key}?ttl_ms=5"),
        &owner,
        &create_only,
        b"x",
    )
    .await;
    assert_error(&both, StatusCode::BAD_REQUEST, "bad_request");
    let oversized = vec![b'x'; nexus_context::MAX_VALUE_BYTES + 1];
    let too_large = send(&api, "PUT", &key, &owner, &[], &oversized).await;
    assert_error(&too_large, StatusCode::PAYLOAD_TOO_LARGE, "too_large");

    send(&api, "PUT", &key, &owner, &[], b"v").await;
    let deleted = send(&api, "DELETE", &key, &owner, &[], b"").await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.text());
    assert_error(
        &send(&api, "DELETE", &key, &owner, &[], b"").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
}

#[tokio::test]
async fn viewers_read_the_context_and_only_developers_and_up_write_it() {
    let api = Api::start().await;
    let (owner, agent) = lab(&api, json!({"context": {"k": "v"}})).await;
    let viewer = api.user("viewer@example.com").await;
    let added = api
        .call(
            "POST",
            "/v1/projects/lab/members",
            Some(&owner),
            Some(json!({"email": "viewer@example.com", "role": "viewer"})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text());

    let key = format!("{agent}/context/k");
    let read = send(&api, "GET", &key, &viewer, &[], b"").await;
    assert_eq!(read.text(), "v");
    for method in ["PUT", "DELETE"] {
        let refused = send(&api, method, &key, &viewer, &[], b"w").await;
        assert_error(&refused, StatusCode::FORBIDDEN, "forbidden");
    }
    let unknown = "/v1/projects/lab/agents/00000000-0000-4000-8000-000000000000/context/k";
    assert_error(
        &send(&api, "PUT", unknown, &owner, &[], b"w").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    assert_eq!(send(&api, "GET", &key, &viewer, &[], b"").await.text(), "v");
}
