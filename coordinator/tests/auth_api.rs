//! The auth API over real HTTP, on a real (SQLite) store: accounts, tokens, refresh-token
//! rotation and reuse, session listing and revocation, and the one error shape.
#![expect(clippy::unwrap_used, reason = "tests report failures by panicking")]

use std::sync::Arc;

use http::{Request, StatusCode};
use http_body_util::Full;
use nexus_coordinator::api::{AppState, MAX_BODY_BYTES, REQUEST_ID, router};
use nexus_coordinator::auth::access_token::AccessTokenKeys;
use nexus_coordinator::auth::service::AuthService;
use nexus_store::Store;
use nexus_tests::{HttpClient, TestResponse};
use serde_json::{Value, json};

struct Api {
    base: String,
    client: HttpClient,
    _dir: tempfile::TempDir,
}

impl Api {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(dir.path().join("nexus.db").to_str().unwrap())
            .await
            .unwrap();
        store.migrate().await.unwrap();
        let store = Arc::new(store);
        let keys = AccessTokenKeys::new("test", b"a test signing secret of 32 bytes");
        let state = AppState {
            store: Arc::clone(&store),
            auth: AuthService::new(store, keys),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            base,
            client: HttpClient::default(),
            _dir: dir,
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> TestResponse {
        let mut request = Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Full::from(body.to_string())
            }
            None => Full::default(),
        };
        self.client.send(request.body(body).unwrap()).await
    }

    async fn register(&self, email: &str, password: &str) -> TestResponse {
        self.call(
            "POST",
            "/v1/auth/register",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    async fn login(&self, email: &str, password: &str) -> TestResponse {
        self.call(
            "POST",
            "/v1/auth/login",
            None,
            Some(json!({"email": email, "password": password})),
        )
        .await
    }

    async fn refresh(&self, refresh_token: &str) -> TestResponse {
        self.call(
            "POST",
            "/v1/auth/refresh",
            None,
            Some(json!({"refresh_token": refresh_token})),
        )
        .await
    }
}

/// Asserts the one error shape and that its request id is the response header's.
fn assert_error(response: &TestResponse, status: StatusCode, code: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    let body = response.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    let header = response.headers[REQUEST_ID].to_str().unwrap();
    assert_eq!(body["error"]["request_id"], header);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
}

fn tokens(response: &TestResponse) -> (String, String, String) {
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let body = response.json();
    assert_eq!(body["token_type"], "Bearer");
    (
        body["access_token"].as_str().unwrap().to_owned(),
        body["refresh_token"].as_str().unwrap().to_owned(),
        body["session_id"].as_str().unwrap().to_owned(),
    )
}

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
