//! Project API keys: created by owners and admins, shown once, acting in one project with
//! their role, never as a person, and dead from the next request once revoked.

use http::StatusCode;
use serde_json::json;

use crate::harness::{Api, assert_error};

#[tokio::test]
async fn api_keys_act_in_one_project_with_their_role_until_revoked() {
    let api = Api::start().await;
    let owner = api.user("own@example.com").await;
    for name in ["alpha", "beta"] {
        let created = api
            .call(
                "POST",
                "/v1/projects",
                Some(&owner),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
    }
    let created = api
        .call(
            "POST",
            "/v1/projects/alpha/api-keys",
            Some(&owner),
            Some(json!({"name": "ci", "role": "developer"})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let created = created.json();
    let key = created["secret"].as_str().unwrap().to_owned();
    let key_id = created["id"].as_str().unwrap().to_owned();
    assert!(key.starts_with("nxk_"));
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));

    // Its project, with its role: it may read, not rename (developer), nor see another project.
    assert_eq!(
        api.call("GET", "/v1/projects/alpha", Some(&key), None)
            .await
            .status,
        StatusCode::OK
    );
    let rename = api
        .call(
            "PATCH",
            "/v1/projects/alpha",
            Some(&key),
            Some(json!({"display_name": "x"})),
        )
        .await;
    assert_error(&rename, StatusCode::FORBIDDEN, "forbidden");
    assert_error(
        &api.call("GET", "/v1/projects/beta", Some(&key), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    // Never as a person: no sessions, no projects of its own, no key management.
    assert_error(
        &api.call("GET", "/v1/sessions", Some(&key), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_error(
        &api.call("GET", "/v1/projects", Some(&key), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_error(
        &api.call("GET", "/v1/projects/alpha/api-keys", Some(&key), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );

    // Listed without the secret, with when it was last used.
    let listed = api
        .call("GET", "/v1/projects/alpha/api-keys", Some(&owner), None)
        .await;
    assert_eq!(listed.status, StatusCode::OK);
    assert!(
        !listed.text().contains(&key),
        "a listing must not show the secret"
    );
    assert!(listed.json()[0]["last_used_at"].is_string());

    let revoked = api
        .call(
            "DELETE",
            &format!("/v1/projects/alpha/api-keys/{key_id}"),
            Some(&owner),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text());
    assert_error(
        &api.call("GET", "/v1/projects/alpha", Some(&key), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );

    // Never owner; garbage keys are refused before any lookup.
    let owner_key = api
        .call(
            "POST",
            "/v1/projects/alpha/api-keys",
            Some(&owner),
            Some(json!({"name": "root", "role": "owner"})),
        )
        .await;
    assert_error(&owner_key, StatusCode::BAD_REQUEST, "bad_request");
    assert_error(
        &api.call("GET", "/v1/projects/alpha", Some("nxk_forged"), None)
            .await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );

    // The audit log names the key as the actor of what it did.
    let entries = api
        .store
        .with_retry(|tx| Box::pin(async move { tx.list_audit(0, 100).await }))
        .await
        .unwrap();
    let by_key = entries
        .iter()
        .find(|entry| entry.action == "PATCH /v1/projects/{project}")
        .unwrap();
    assert_eq!(by_key.actor, format!("api_key:{key_id}"));
    assert_eq!(by_key.result, "denied");
}
