//! Spin key-value through the guests, on every backend, and its permissions.

use http::StatusCode;
use nexus::KvBackend;
use nexus_tests::{TestPlatform, redis_url};

async fn count(platform: &TestPlatform, path: &str) -> u64 {
    let response = platform.get(path).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{path}: {}",
        response.text()
    );
    response
        .text()
        .parse()
        .unwrap_or_else(|_| panic!("{path} answered {:?}", response.text()))
}

#[tokio::test]
async fn counter_increments_on_both_key_value_versions() {
    let platform = TestPlatform::builder().start().await;
    assert_eq!(count(&platform, "/counter").await, 1);
    assert_eq!(count(&platform, "/counter").await, 2);
    // Both versions open the same `default` store of the same app.
    assert_eq!(count(&platform, "/p3/counter").await, 3);
    assert_eq!(count(&platform, "/counter").await, 4);
}

#[tokio::test]
async fn counter_survives_a_restart_on_sqlite() {
    let platform = TestPlatform::builder().sqlite_kv().start().await;
    assert_eq!(count(&platform, "/counter").await, 1);
    assert_eq!(count(&platform, "/counter").await, 2);
    let state = platform.shutdown().await;

    let platform = TestPlatform::builder()
        .sqlite_kv()
        .state(state)
        .start()
        .await;
    assert_eq!(count(&platform, "/counter").await, 3);
}

#[tokio::test]
async fn counter_runs_on_redis() {
    // A fresh app-name namespace is not possible with the shared manifest, so start from
    // whatever the key holds and check that two calls advance it by exactly two.
    let platform = TestPlatform::builder().kv(KvBackend::Redis(redis_url())).try_start().await.unwrap_or_else(|error| {
        panic!(
            "could not start on Redis at {} ({error:#}); start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no",
            redis_url()
        )
    });
    let first = count(&platform, "/p3/counter").await;
    let second = count(&platform, "/counter").await;
    assert_eq!(second, first + 1);
}

#[tokio::test]
async fn stores_outside_key_value_stores_are_access_denied() {
    let platform = TestPlatform::builder().start().await;
    for prefix in ["", "/p3"] {
        let allowed = platform
            .get(&format!("{prefix}/kv-probe?store=other"))
            .await;
        assert_eq!(
            allowed.status,
            StatusCode::OK,
            "{prefix}: {}",
            allowed.text()
        );
        let denied = platform
            .get(&format!("{prefix}/kv-probe?store=secret"))
            .await;
        assert_eq!(denied.status, StatusCode::INTERNAL_SERVER_ERROR, "{prefix}");
        assert!(
            denied.text().contains("AccessDenied"),
            "{prefix}: {}",
            denied.text()
        );
    }
}

#[tokio::test]
async fn key_value_operations_round_trip_through_the_guest() {
    let platform = TestPlatform::builder().start().await;
    for prefix in ["", "/p3"] {
        let store = if prefix.is_empty() {
            "default"
        } else {
            "other"
        };
        let call = |query: String| {
            let platform = &platform;
            async move {
                platform
                    .get(&format!("{prefix}/kv-probe?store={store}&{query}"))
                    .await
            }
        };
        assert_eq!(
            call("op=set&key=k1&value=v1".into()).await.status,
            StatusCode::OK
        );
        assert_eq!(call("op=get&key=k1".into()).await.text(), "v1");
        assert_eq!(call("op=exists&key=k1".into()).await.text(), "true");
        let keys = call("op=keys".into()).await.text();
        assert!(keys.lines().any(|line| line == "k1"), "{prefix}: {keys}");
        assert_eq!(call("op=delete&key=k1".into()).await.status, StatusCode::OK);
        assert_eq!(call("op=exists&key=k1".into()).await.text(), "false");
        assert_eq!(
            call("op=get&key=k1".into()).await.status,
            StatusCode::NOT_FOUND
        );
    }
}
