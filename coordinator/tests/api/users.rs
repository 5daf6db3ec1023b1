//! The caller's own data: exported as JSON, and erased, with the audit log still verifying.

use http::StatusCode;
use serde_json::json;

use crate::harness::{Api, assert_error};

#[tokio::test]
async fn a_user_exports_their_data_then_erases_themselves_and_the_audit_chain_holds() {
    let api = Api::start().await;
    let token = api.user("ana@example.com").await;
    let other = api.user("bob@example.com").await;
    let created = api
        .call(
            "POST",
            "/v1/projects",
            Some(&other),
            Some(json!({"name": "shared"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED);
    let added = api
        .call(
            "POST",
            "/v1/projects/shared/members",
            Some(&other),
            Some(json!({"email": "ana@example.com", "role": "developer"})),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{}", added.text());
    let own = api
        .call(
            "POST",
            "/v1/projects",
            Some(&token),
            Some(json!({"name": "mine"})),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED);

    let exported = api
        .call("GET", "/v1/users/me/export", Some(&token), None)
        .await;
    assert_eq!(exported.status, StatusCode::OK, "{}", exported.text());
    let data = exported.json();
    assert_eq!(data["user"]["email"], "ana@example.com");
    assert_eq!(data["sessions"].as_array().unwrap().len(), 1, "{data}");
    let projects: Vec<&str> = data["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|membership| membership["project"].as_str().unwrap())
        .collect();
    assert_eq!(projects, ["mine", "shared"]);
    assert!(
        data["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|entry| entry["target"] == "/v1/projects"),
        "{data}"
    );

    // The only owner of `mine` cannot leave it ownerless.
    let refused = api.call("DELETE", "/v1/users/me", Some(&token), None).await;
    assert_error(&refused, StatusCode::CONFLICT, "conflict");
    assert!(refused.text().contains("mine"), "{}", refused.text());
    let deleted = api
        .call("DELETE", "/v1/projects/mine", Some(&token), None)
        .await;
    assert_eq!(deleted.status, StatusCode::NO_CONTENT);

    let erased = api.call("DELETE", "/v1/users/me", Some(&token), None).await;
    assert_eq!(erased.status, StatusCode::NO_CONTENT, "{}", erased.text());
    // The token is dead, the login gone, the membership ended, and the email free again.
    let after = api
        .call("GET", "/v1/users/me/export", Some(&token), None)
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        api.login("ana@example.com", "correct horse").await.status,
        StatusCode::UNAUTHORIZED
    );
    let members = api
        .call("GET", "/v1/projects/shared/members", Some(&other), None)
        .await;
    assert!(
        !members.text().contains("ana@example.com"),
        "{}",
        members.text()
    );
    assert_eq!(
        api.register("ana@example.com", "another horse")
            .await
            .status,
        StatusCode::CREATED
    );

    let store = &api.store;
    let verified = store
        .with_retry(|tx| Box::pin(async move { tx.verify_audit_chain().await }))
        .await
        .unwrap();
    assert!(verified.first_broken.is_none(), "{verified:?}");
    let rows = store
        .with_retry(|tx| Box::pin(async move { tx.list_audit(0, 10_000).await }))
        .await
        .unwrap();
    assert!(
        rows.iter()
            .all(|row| !row.actor.contains("ana@example.com"))
    );
    assert!(
        rows.iter().any(|row| row.target == "/v1/users/me"),
        "the erasure is audited"
    );
}
