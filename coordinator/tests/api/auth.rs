//! Accounts, tokens, refresh-token rotation and reuse, session listing and revocation, and
//! the one error shape.

use http::{Request, StatusCode};
use http_body_util::Full;
use nexus_coordinator::api::{MAX_BODY_BYTES, REQUEST_ID};
use serde_json::json;

use crate::harness::{Api, assert_error, tokens};

#[tokio::test]
async fn register_login_and_the_error_shape() {
    let api = Api::start().await;
    assert_eq!(
        api.register("Ada@Example.com", "correct horse")
            .await
            .status,
        StatusCode::CREATED
    );
    assert_error(
        &api.register("ada@example.com ", "another password").await,
        StatusCode::CONFLICT,
        "conflict",
    );
    assert_error(
        &api.register("bob@example.com", "short").await,
        StatusCode::BAD_REQUEST,
        "bad_request",
    );

    let wrong_password = api.login("ada@example.com", "wrong horse").await;
    let unknown_email = api.login("nobody@example.com", "correct horse").await;
    assert_error(&wrong_password, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_error(&unknown_email, StatusCode::UNAUTHORIZED, "unauthenticated");
    assert_eq!(
        wrong_password.json()["error"]["message"],
        unknown_email.json()["error"]["message"],
        "a missing account must not be told apart from a wrong password"
    );

    let (access, refresh, _) = tokens(&api.login("ADA@example.com", "correct horse").await);
    assert!(refresh.starts_with("nxr_"));
    let sessions = api.call("GET", "/v1/sessions", Some(&access), None).await;
    assert_eq!(sessions.status, StatusCode::OK, "{}", sessions.text());
    assert_eq!(sessions.json().as_array().unwrap().len(), 1);
    assert_eq!(sessions.json()[0]["current"], true);

    assert_error(
        &api.call("GET", "/v1/sessions", None, None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_error(
        &api.call("GET", "/v1/sessions", Some("garbage"), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_error(
        &api.call("GET", "/no/such/route", None, None).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let malformed = api
        .call("POST", "/v1/auth/login", None, Some(json!({"email": 1})))
        .await;
    assert_error(&malformed, StatusCode::BAD_REQUEST, "bad_request");
    let huge = json!({"email": "a@b.c", "password": "x".repeat(MAX_BODY_BYTES)});
    assert_error(
        &api.call("POST", "/v1/auth/login", None, Some(huge)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "bad_request",
    );
    let request = Request::get(format!("{}/healthz", api.base))
        .header(REQUEST_ID, "client-chosen-id")
        .body(Full::default())
        .unwrap();
    let health = api.client.send(request).await;
    assert_eq!(
        (health.status, health.text()),
        (StatusCode::OK, "ok".to_owned())
    );
    assert_eq!(health.headers[REQUEST_ID], "client-chosen-id");
    assert_eq!(
        api.call("GET", "/readyz", None, None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_family() {
    let api = Api::start().await;
    api.register("eve@example.com", "correct horse").await;
    let (first_access, first_refresh, _) =
        tokens(&api.login("eve@example.com", "correct horse").await);
    let (second_access, second_refresh, _) = tokens(&api.refresh(&first_refresh).await);
    assert_ne!(first_refresh, second_refresh);
    assert_eq!(
        api.call("GET", "/v1/sessions", Some(&second_access), None)
            .await
            .status,
        StatusCode::OK
    );

    // The old refresh token again: the family is revoked, so the newest token dies too, and
    // so do access tokens of that session, at their next request.
    assert_error(
        &api.refresh(&first_refresh).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_error(
        &api.refresh(&second_refresh).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    for access in [&first_access, &second_access] {
        assert_error(
            &api.call("GET", "/v1/sessions", Some(access), None).await,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        );
    }
    assert_error(
        &api.refresh("nxr_not-a-token").await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
}

#[tokio::test]
async fn revoking_a_session_or_logging_out_takes_effect_on_the_next_request() {
    let api = Api::start().await;
    api.register("kim@example.com", "correct horse").await;
    let (laptop, _, laptop_session) = tokens(&api.login("kim@example.com", "correct horse").await);
    let (phone, phone_refresh, phone_session) =
        tokens(&api.login("kim@example.com", "correct horse").await);
    let listed = api
        .call("GET", "/v1/sessions", Some(&laptop), None)
        .await
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 2);

    let revoked = api
        .call(
            "DELETE",
            &format!("/v1/sessions/{phone_session}"),
            Some(&laptop),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text());
    assert_error(
        &api.call("GET", "/v1/sessions", Some(&phone), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_error(
        &api.refresh(&phone_refresh).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    assert_eq!(
        api.call("GET", "/v1/sessions", Some(&laptop), None)
            .await
            .status,
        StatusCode::OK
    );

    // Another user's session is not found, not forbidden.
    api.register("lee@example.com", "correct horse").await;
    let (other, _, _) = tokens(&api.login("lee@example.com", "correct horse").await);
    let foreign = api
        .call(
            "DELETE",
            &format!("/v1/sessions/{laptop_session}"),
            Some(&other),
            None,
        )
        .await;
    assert_error(&foreign, StatusCode::NOT_FOUND, "not_found");
    assert_eq!(
        api.call("GET", "/v1/sessions", Some(&laptop), None)
            .await
            .status,
        StatusCode::OK
    );

    assert_eq!(
        api.call("POST", "/v1/auth/logout", Some(&laptop), None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_error(
        &api.call("GET", "/v1/sessions", Some(&laptop), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
}

#[tokio::test]
async fn a_session_revoked_on_one_coordinator_is_refused_by_another_within_its_cache_ttl() {
    let api = Api::start_on_postgres().await;
    api.register("kim@example.com", "correct horse").await;
    let (token, _, session) = tokens(&api.login("kim@example.com", "correct horse").await);
    let (replica, _replica_dir) = api.replica().await;
    let sessions_on_replica = || {
        Request::get(format!("{}/v1/sessions", replica.base_url()))
            .header("authorization", format!("Bearer {token}"))
            .body(Full::default())
            .unwrap()
    };
    // The replica reads the session once and then trusts it for a while.
    let live = api.client.send(sessions_on_replica()).await;
    assert_eq!(live.status, StatusCode::OK, "{}", live.text());

    let revoked = api
        .call(
            "DELETE",
            &format!("/v1/sessions/{session}"),
            Some(&token),
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::NO_CONTENT, "{}", revoked.text());
    // Where it was revoked: refused at once.
    assert_error(
        &api.call("GET", "/v1/sessions", Some(&token), None).await,
        StatusCode::UNAUTHORIZED,
        "unauthenticated",
    );
    // Elsewhere: refused once the replica's trust runs out.
    let deadline = std::time::Instant::now()
        + nexus_coordinator::auth::service::LIVE_SESSION_TTL
        + std::time::Duration::from_secs(4);
    let mut every = tokio::time::interval(std::time::Duration::from_millis(50));
    loop {
        every.tick().await;
        let answer = api.client.send(sessions_on_replica()).await;
        if answer.status == StatusCode::UNAUTHORIZED {
            break;
        }
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert!(
            std::time::Instant::now() < deadline,
            "the replica still takes a session revoked elsewhere"
        );
    }
}
