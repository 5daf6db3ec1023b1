//! Abuse limits over real HTTP: an address calling the auth endpoints too often, an account
//! after failed logins, a project over its request rate; each answered `429 rate_limited`
//! with `Retry-After`, others unaffected.

use std::time::Duration;

use http::StatusCode;
use nexus_coordinator::limits::RateLimitConfig;
use nexus_tests::TestResponse;
use serde_json::json;

use crate::harness::{Api, assert_error, component};

fn limits() -> RateLimitConfig {
    RateLimitConfig {
        auth_per_ip_per_minute: 5,
        logins_per_account_per_minute: 100,
        failed_logins_before_backoff: 2,
        max_login_backoff: Duration::from_secs(60),
        project_requests_per_second: 1,
    }
}

/// The whole seconds `Retry-After` asks for.
fn retry_after(response: &TestResponse) -> u64 {
    response.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn an_address_calling_the_auth_endpoints_too_often_is_told_to_wait() {
    let api = Api::start_with_rate_limits(limits()).await;
    for n in 0..5 {
        let registered = api
            .register(&format!("user{n}@example.com"), "correct horse")
            .await;
        assert_eq!(
            registered.status,
            StatusCode::CREATED,
            "{}",
            registered.text()
        );
    }
    let refused = api.register("late@example.com", "correct horse").await;
    assert_error(&refused, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(retry_after(&refused) >= 1);
}

#[tokio::test]
async fn failed_logins_make_the_account_wait_even_with_the_right_password() {
    let limits = RateLimitConfig {
        auth_per_ip_per_minute: 0,
        ..limits()
    };
    let api = Api::start_with_rate_limits(limits).await;
    api.user("ana@example.com").await;
    for _ in 0..2 {
        let wrong = api.login("ana@example.com", "wrong").await;
        assert_error(&wrong, StatusCode::UNAUTHORIZED, "unauthenticated");
    }
    let waiting = api.login("ana@example.com", "correct horse").await;
    assert_error(&waiting, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(retry_after(&waiting) >= 1);
    // Another account logs in as usual.
    api.user("bob@example.com").await;
}

#[tokio::test]
async fn a_project_over_its_request_rate_gets_429_and_others_do_not() {
    let limits = RateLimitConfig {
        auth_per_ip_per_minute: 0,
        ..limits()
    };
    let api = Api::start_with_rate_limits(limits).await;
    for project in ["shop", "other"] {
        let token = api.user(&format!("{project}@example.com")).await;
        let created = api
            .call(
                "POST",
                "/v1/projects",
                Some(&token),
                Some(json!({ "name": project })),
            )
            .await;
        assert_eq!(created.status, StatusCode::CREATED);
        let deployed = api
            .send_bytes(
                "POST",
                &format!("/v1/projects/{project}/functions/hi/versions"),
                &token,
                "application/wasm",
                component("hello"),
            )
            .await;
        assert_eq!(deployed.status, StatusCode::CREATED, "{}", deployed.text());
    }
    // A burst of twice the rate, then the limit.
    for _ in 0..2 {
        let served = api.client.get(&format!("{}/shop/hi/", api.base)).await;
        assert_eq!(served.status, StatusCode::OK);
    }
    let limited = api.client.get(&format!("{}/shop/hi/", api.base)).await;
    assert_error(&limited, StatusCode::TOO_MANY_REQUESTS, "rate_limited");
    assert!(retry_after(&limited) >= 1);
    let other = api.client.get(&format!("{}/other/hi/", api.base)).await;
    assert_eq!(other.status, StatusCode::OK);
}
