//! `wasi:keyvalue` (the 2024-10-17 draft Spin exposes) through the `wasi-kv-probe` and
//! `wasi-probe-p3` guests: every function, the stores it shares with Spin key-value, its
//! permissions, and atomics under concurrency on every backend.

use std::collections::BTreeSet;
use std::sync::Arc;

use http::StatusCode;
use nexus::KvBackend;
use nexus_tests::{TestPlatform, TestResponse, redis_url};
use serde_json::{Value, json};

/// Concurrent requests in the atomics tests.
const CONCURRENT_REQUESTS: i64 = 50;

/// `GET /wasi-kv-probe?<query>`.
async fn probe(platform: &TestPlatform, query: &str) -> TestResponse {
    platform.get(&format!("/wasi-kv-probe?{query}")).await
}

/// `GET /wasi-kv-probe?<query>`, which must answer 200; its body.
async fn probe_ok(platform: &TestPlatform, query: &str) -> String {
    let response = probe(platform, query).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{query}: {}",
        response.text()
    );
    response.text()
}

/// A platform on `backend`; Redis must be running.
async fn start_on(backend: &str) -> TestPlatform {
    let builder = TestPlatform::builder();
    let builder = match backend {
        "memory" => builder,
        "sqlite" => builder.sqlite_kv(),
        "redis" => builder.kv(KvBackend::Redis(redis_url())),
        other => panic!("unknown backend {other}"),
    };
    builder.try_start().await.unwrap_or_else(|error| {
        panic!(
            "could not start on {backend} ({error:#}); if Redis at {} is down, start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no",
            redis_url()
        )
    })
}

/// A key no other test run uses, for backends that outlive the test (Redis).
fn fresh_key(name: &str) -> String {
    format!("{name}-{}", uuid::Uuid::new_v4())
}

#[tokio::test]
async fn store_functions_round_trip() {
    let platform = TestPlatform::builder().start().await;
    assert_eq!(probe_ok(&platform, "").await, "opened");
    assert_eq!(probe_ok(&platform, "op=exists&key=bar").await, "false");
    assert_eq!(
        probe(&platform, "op=get&key=bar").await.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        probe_ok(&platform, "op=list-keys").await,
        json!({"keys": [], "cursor": null}).to_string()
    );

    assert_eq!(probe_ok(&platform, "op=set&key=bar&value=baz").await, "ok");
    assert_eq!(probe_ok(&platform, "op=exists&key=bar").await, "true");
    assert_eq!(probe_ok(&platform, "op=get&key=bar").await, "baz");
    assert_eq!(probe_ok(&platform, "op=set&key=bar&value=wow").await, "ok");
    assert_eq!(probe_ok(&platform, "op=get&key=bar").await, "wow");
    assert_eq!(probe_ok(&platform, "op=set&key=qux&value=yay").await, "ok");
    assert_eq!(
        probe_ok(&platform, "op=list-keys").await,
        json!({"keys": ["bar", "qux"], "cursor": null}).to_string()
    );

    // Spin answers every key in one page and refuses cursors.
    let with_cursor = probe(&platform, "op=list-keys&cursor=0").await;
    assert_eq!(with_cursor.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(
        with_cursor.text(),
        r#"Error::Other("list_keys: cursor not supported")"#
    );

    // Deleting twice is fine.
    assert_eq!(probe_ok(&platform, "op=delete&key=bar").await, "ok");
    assert_eq!(probe_ok(&platform, "op=delete&key=bar").await, "ok");
    assert_eq!(probe_ok(&platform, "op=exists&key=bar").await, "false");
    assert_eq!(
        probe(&platform, "op=get&key=bar").await.status,
        StatusCode::NOT_FOUND
    );

    // Store limits surface as `other`.
    let long_key = "k".repeat(256);
    let refused = probe(&platform, &format!("op=set&key={long_key}&value=v")).await;
    assert_eq!(refused.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        refused.text().starts_with("Error::Other("),
        "{}",
        refused.text()
    );
}

#[tokio::test]
async fn buckets_are_the_spin_key_value_stores() {
    let platform = TestPlatform::builder().start().await;
    for store in ["default", "other"] {
        // wasi:keyvalue → fermyon:spin/key-value and spin:key-value.
        probe_ok(
            &platform,
            &format!("store={store}&op=set&key=from-wasi&value=w"),
        )
        .await;
        for spin in ["/kv-probe", "/p3/kv-probe"] {
            let response = platform
                .get(&format!("{spin}?store={store}&op=get&key=from-wasi"))
                .await;
            assert_eq!(response.status, StatusCode::OK, "{spin} {store}");
            assert_eq!(response.text(), "w", "{spin} {store}");
        }
        // Both Spin versions → wasi:keyvalue.
        for (spin, key) in [("/kv-probe", "from-v2"), ("/p3/kv-probe", "from-v3")] {
            let set = platform
                .get(&format!("{spin}?store={store}&op=set&key={key}&value=s"))
                .await;
            assert_eq!(set.status, StatusCode::OK, "{spin} {store}: {}", set.text());
            assert_eq!(
                probe_ok(&platform, &format!("store={store}&op=get&key={key}")).await,
                "s"
            );
        }
        // A wasi:keyvalue delete is seen by Spin key-value.
        probe_ok(&platform, &format!("store={store}&op=delete&key=from-v2")).await;
        let gone = platform
            .get(&format!("/kv-probe?store={store}&op=exists&key=from-v2"))
            .await;
        assert_eq!(gone.text(), "false", "{store}");
    }
    // The stores stay apart.
    assert_eq!(
        probe_ok(&platform, "store=default&op=set&key=only-default&value=1").await,
        "ok"
    );
    assert_eq!(
        probe(&platform, "store=other&op=get&key=only-default")
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn increments_share_decimal_text_with_spin_counters() {
    let platform = TestPlatform::builder().start().await;
    // `counter` (fermyon:spin/key-value) keeps `count` as decimal text in `default`.
    assert_eq!(platform.get("/counter").await.text(), "1");
    assert_eq!(probe_ok(&platform, "op=increment&key=count").await, "2");
    assert_eq!(platform.get("/p3/counter").await.text(), "3");
    assert_eq!(probe_ok(&platform, "op=get&key=count").await, "3");
    assert_eq!(
        probe_ok(&platform, "op=increment&key=count&delta=-10").await,
        "-7"
    );
    let spin_view = platform.get("/kv-probe?op=get&key=count").await;
    assert_eq!(spin_view.text(), "-7");
}

#[tokio::test]
async fn increment_treats_missing_as_zero_and_refuses_non_integers() {
    let platform = TestPlatform::builder().start().await;
    assert_eq!(
        probe_ok(&platform, "op=increment&key=counter&delta=10").await,
        "10"
    );
    assert_eq!(
        probe_ok(&platform, "op=increment&key=counter&delta=5").await,
        "15"
    );
    assert_eq!(probe_ok(&platform, "op=get&key=counter").await, "15");

    probe_ok(&platform, "op=set&key=word&value=abc").await;
    let refused = probe(&platform, "op=increment&key=word").await;
    assert_eq!(refused.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        refused.text().starts_with("Error::Other(") && refused.text().contains("integer"),
        "{}",
        refused.text()
    );
    assert_eq!(probe_ok(&platform, "op=get&key=word").await, "abc");
}

#[tokio::test]
async fn batch_functions_work_like_spin() {
    let platform = TestPlatform::builder().start().await;
    assert_eq!(
        probe_ok(
            &platform,
            "op=set-many&key=a&value=1&key=b&value=2&key=c&value=3"
        )
        .await,
        "ok"
    );
    // Like Spin's default store: only keys that exist, each once.
    assert_eq!(
        probe_ok(&platform, "op=get-many&key=a&key=missing&key=b&key=a").await,
        json!([["a", "1"], ["b", "2"]]).to_string()
    );
    assert_eq!(probe_ok(&platform, "op=get-many").await, "[]");
    assert_eq!(
        probe_ok(&platform, "op=delete-many&key=a&key=missing&key=b").await,
        "ok"
    );
    assert_eq!(probe_ok(&platform, "op=delete-many").await, "ok");
    assert_eq!(probe_ok(&platform, "op=set-many").await, "ok");
    assert_eq!(
        probe_ok(&platform, "op=list-keys").await,
        json!({"keys": ["c"], "cursor": null}).to_string()
    );
    // Batch writes are visible to Spin key-value.
    assert_eq!(platform.get("/kv-probe?op=get&key=c").await.text(), "3");
}

#[tokio::test]
async fn compare_and_swap_writes_when_the_value_is_unchanged() {
    let platform = TestPlatform::builder().start().await;
    probe_ok(&platform, "op=set&key=bar&value=wow").await;
    assert_eq!(
        probe_ok(&platform, "op=cas&key=bar&value=swapped").await,
        json!({"observed": "wow"}).to_string()
    );
    assert_eq!(probe_ok(&platform, "op=get&key=bar").await, "swapped");

    // On a missing key the swap creates it.
    assert_eq!(
        probe_ok(&platform, "op=cas&key=new&value=created").await,
        json!({"observed": null}).to_string()
    );
    assert_eq!(probe_ok(&platform, "op=get&key=new").await, "created");
}

#[tokio::test]
async fn compare_and_swap_conflicts_return_an_up_to_date_handle() {
    let platform = TestPlatform::builder().start().await;
    let expected = json!({
        "first_swap": "cas-failed",
        "fresh_current": "theirs",
        "second_swap": "ok",
    })
    .to_string();

    // The value changes between `current` and `swap`.
    probe_ok(&platform, "op=set&key=k&value=original").await;
    assert_eq!(
        probe_ok(
            &platform,
            "op=cas-conflict&key=k&value=mine&interloper=theirs"
        )
        .await,
        expected
    );
    assert_eq!(probe_ok(&platform, "op=get&key=k").await, "mine");

    // The key is created between `current` (which saw none) and `swap`.
    assert_eq!(
        probe_ok(
            &platform,
            "op=cas-conflict&key=absent&value=mine&interloper=theirs"
        )
        .await,
        expected
    );
    assert_eq!(probe_ok(&platform, "op=get&key=absent").await, "mine");

    // Without `current`, the swap is checked against the value seen by `cas.new`.
    probe_ok(&platform, "op=set&key=quiet&value=original").await;
    assert_eq!(
        probe_ok(
            &platform,
            "op=cas-conflict&key=quiet&value=mine&interloper=theirs&current=false"
        )
        .await,
        expected
    );
    assert_eq!(probe_ok(&platform, "op=get&key=quiet").await, "mine");
}

#[tokio::test]
async fn stores_outside_key_value_stores_are_access_denied() {
    let platform = TestPlatform::builder().start().await;
    for path in [
        "/wasi-kv-probe?store=secret",
        "/wasi-kv-probe?store=secret&op=get&key=k",
        "/p3/wasi-probe?store=secret&op=get&key=k",
        // `other` is in kv-probe's key_value_stores, not in wasi-probe-p3's.
        "/p3/wasi-probe?store=other&op=get&key=k",
    ] {
        let denied = platform.get(path).await;
        assert_eq!(denied.status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert_eq!(denied.text(), "Error::AccessDenied", "{path}");
    }
}

#[tokio::test]
async fn wasip3_guests_use_the_same_buckets() {
    let platform = TestPlatform::builder().start().await;
    let set = platform.get("/p3/wasi-probe?op=set&key=p3&value=v").await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    assert_eq!(probe_ok(&platform, "op=get&key=p3").await, "v");
    assert_eq!(
        platform.get("/p3/wasi-probe?op=get&key=p3").await.text(),
        "v"
    );
    assert_eq!(
        platform
            .get("/p3/wasi-probe?op=increment&key=n")
            .await
            .text(),
        "1"
    );
    assert_eq!(probe_ok(&platform, "op=increment&key=n").await, "2");
}

/// `CONCURRENT_REQUESTS` requests of `op` on `key`, all in flight at once; every one must
/// succeed. Their bodies.
async fn concurrently(platform: &Arc<TestPlatform>, op: &str, key: &str) -> Vec<String> {
    let requests: Vec<_> = (0..CONCURRENT_REQUESTS)
        .map(|_| {
            let platform = Arc::clone(platform);
            let query = format!("op={op}&key={key}");
            tokio::spawn(async move { probe_ok(&platform, &query).await })
        })
        .collect();
    let mut bodies = Vec::with_capacity(requests.len());
    for request in requests {
        bodies.push(request.await.unwrap());
    }
    bodies
}

async fn increments_sum_exactly(backend: &str) {
    let platform = Arc::new(start_on(backend).await);
    let key = fresh_key("hits");
    let values: BTreeSet<i64> = concurrently(&platform, "increment", &key)
        .await
        .iter()
        .map(|text| text.parse().unwrap())
        .collect();
    // Every request saw a different count, and none was lost.
    assert_eq!(values, (1..=CONCURRENT_REQUESTS).collect(), "{backend}");
    assert_eq!(
        probe_ok(&platform, &format!("op=get&key={key}")).await,
        CONCURRENT_REQUESTS.to_string(),
        "{backend}"
    );
    probe_ok(&platform, &format!("op=delete&key={key}")).await;
}

async fn cas_increments_sum_exactly(backend: &str) {
    let platform = Arc::new(start_on(backend).await);
    let key = fresh_key("cas-hits");
    let values: BTreeSet<i64> = concurrently(&platform, "cas-increment", &key)
        .await
        .iter()
        .map(|text| {
            let answer: Value = serde_json::from_str(text).unwrap();
            answer["value"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(values, (1..=CONCURRENT_REQUESTS).collect(), "{backend}");
    assert_eq!(
        probe_ok(&platform, &format!("op=get&key={key}")).await,
        CONCURRENT_REQUESTS.to_string(),
        "{backend}"
    );
    probe_ok(&platform, &format!("op=delete&key={key}")).await;
}

#[tokio::test]
async fn concurrent_increments_sum_exactly_in_memory() {
    increments_sum_exactly("memory").await;
}

#[tokio::test]
async fn concurrent_increments_sum_exactly_on_sqlite() {
    increments_sum_exactly("sqlite").await;
}

#[tokio::test]
async fn concurrent_increments_sum_exactly_on_redis() {
    increments_sum_exactly("redis").await;
}

#[tokio::test]
async fn concurrent_cas_increments_sum_exactly_in_memory() {
    cas_increments_sum_exactly("memory").await;
}

#[tokio::test]
async fn concurrent_cas_increments_sum_exactly_on_sqlite() {
    cas_increments_sum_exactly("sqlite").await;
}

#[tokio::test]
async fn concurrent_cas_increments_sum_exactly_on_redis() {
    cas_increments_sum_exactly("redis").await;
}
