//! Every mutating call leaves an audit row, denied ones included, chained by hash.

use http::StatusCode;
use nexus_coordinator::api::REQUEST_ID;
use serde_json::json;

use crate::harness::{Api, tokens};

#[tokio::test]
async fn mutating_calls_are_audited_with_actor_result_and_request_id() {
    let api = Api::start().await;
    api.register("ann@example.com", "correct horse").await;
    api.register("out@example.com", "correct horse").await;
    let (ann, _, _) = tokens(&api.login("ann@example.com", "correct horse").await);
    let (outsider, _, _) = tokens(&api.login("out@example.com", "correct horse").await);
    let created = api
        .call(
            "POST",
            "/v1/projects",
            Some(&ann),
            Some(json!({"name": "audited"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let denied = api
        .call("DELETE", "/v1/projects/audited", Some(&outsider), None)
        .await;
    assert_eq!(denied.status, StatusCode::NOT_FOUND);
    // Reads are not audited.
    api.call("GET", "/v1/projects", Some(&ann), None).await;

    let entries = api
        .store
        .with_retry(|tx| Box::pin(async move { tx.list_audit(0, 100).await }))
        .await
        .unwrap();
    let summary: Vec<(String, String)> = entries
        .iter()
        .map(|entry| (entry.action.clone(), entry.result.clone()))
        .collect();
    assert_eq!(
        summary,
        [
            ("POST /v1/auth/register", "ok"),
            ("POST /v1/auth/register", "ok"),
            ("POST /v1/auth/login", "ok"),
            ("POST /v1/auth/login", "ok"),
            ("POST /v1/projects", "ok"),
            ("DELETE /v1/projects/{project}", "denied"),
        ]
        .map(|(action, result)| (action.to_owned(), result.to_owned()))
    );
    let create = &entries[4];
    assert!(create.actor.starts_with("user:"), "{}", create.actor);
    assert_eq!(
        create.request_id.as_deref(),
        created.headers[REQUEST_ID].to_str().ok()
    );
    let delete = &entries[5];
    assert_ne!(delete.actor, create.actor, "the outsider, not the owner");
    assert_eq!(delete.target, "/v1/projects/audited");
    assert_eq!(entries[0].actor, "anonymous");

    let verification = api
        .store
        .with_retry(|tx| Box::pin(async move { tx.verify_audit_chain().await }))
        .await
        .unwrap();
    assert_eq!(verification.rows_checked, 6);
    assert_eq!(verification.first_broken, None);
}

#[tokio::test]
async fn an_agent_create_commits_its_audit_row_with_it_once_and_refusals_are_recorded_too() {
    let api = Api::start_on_postgres().await;
    let hello = std::fs::read(nexus_tests::component_path("hello")).unwrap();
    let owner = crate::agents::lab_with(&api, "application/wasm", hello).await;
    let create = |body| api.call("POST", "/v1/projects/lab/agents", Some(&owner), Some(body));
    let created = create(json!({"name": "a1", "function": "counter"})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let again = create(json!({"name": "a1", "function": "counter"})).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
    let unknown = create(json!({"name": "a2", "function": "nope"})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text());

    let entries = api
        .store
        .with_retry(|tx| Box::pin(async move { tx.list_audit(0, 100).await }))
        .await
        .unwrap();
    let creates: Vec<_> = entries
        .iter()
        .filter(|entry| entry.action == "POST /v1/projects/{project}/agents")
        .collect();
    let results: Vec<&str> = creates.iter().map(|entry| entry.result.as_str()).collect();
    assert_eq!(results, ["ok", "refused", "denied"]);
    assert!(
        creates[0].actor.starts_with("user:"),
        "{}",
        creates[0].actor
    );
    assert_eq!(creates[0].target, "/v1/projects/lab/agents");
    assert_eq!(
        creates[0].request_id.as_deref(),
        created.headers[REQUEST_ID].to_str().ok()
    );
    let verification = api
        .store
        .with_retry(|tx| Box::pin(async move { tx.verify_audit_chain().await }))
        .await
        .unwrap();
    assert_eq!(verification.first_broken, None);
    assert_eq!(verification.rows_checked as usize, entries.len());
}
