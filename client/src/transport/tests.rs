use std::sync::{Arc, Mutex};

use http_body::Body as _;

use super::body::UPLOAD_CHUNK_BYTES;
use super::*;
use crate::test_server::{self, answer, chunked, json};
use crate::{DeployAlias, Role, Upload};

#[test]
fn base_urls_are_normalized_and_unusable_ones_refused() {
    assert_eq!(
        normalize_base("http://127.0.0.1:8080").unwrap(),
        "http://127.0.0.1:8080"
    );
    assert_eq!(
        normalize_base("http://127.0.0.1:8080/").unwrap(),
        "http://127.0.0.1:8080"
    );
    assert_eq!(
        normalize_base("http://proxy.example/nexus/").unwrap(),
        "http://proxy.example/nexus"
    );
    for bad in [
        "127.0.0.1:8080",
        "https://nexus.example",
        "ftp://nexus.example",
        "http://user:secret@nexus.example",
        "http://nexus.example/?a=b",
        "http://nexus.example/#top",
        "not a url",
    ] {
        let error = normalize_base(bad).unwrap_err();
        assert!(
            matches!(error, ClientError::InvalidUrl { .. }),
            "{bad}: {error:?}"
        );
        assert!(error.hint().is_some());
    }
}

#[test]
fn path_segments_are_escaped_so_a_name_stays_one_segment() {
    assert_eq!(encode_segment("shop-1.a_b~c"), "shop-1.a_b~c");
    assert_eq!(encode_segment("a/b"), "a%2Fb");
    assert_eq!(encode_segment("a b?c#d%e"), "a%20b%3Fc%23d%25e");
    assert_eq!(encode_segment("é"), "%C3%A9");
    assert_eq!(encode_segment("@"), "%40");
    assert_eq!(
        join(
            "http://h:1/prefix",
            &["v1", "projects", "shop", "agents", "x/../y"]
        ),
        "http://h:1/prefix/v1/projects/shop/agents/x%2F..%2Fy"
    );
}

#[test]
fn trigger_and_socket_urls_are_built_from_the_base() {
    let client = Client::new("http://127.0.0.1:8080/").unwrap();
    assert_eq!(
        client.trigger_url("shop", "checkout", None, "/cart?id=1"),
        "http://127.0.0.1:8080/shop/checkout/cart?id=1"
    );
    assert_eq!(
        client.trigger_url("shop", "checkout", Some("canary"), "/"),
        "http://127.0.0.1:8080/shop/checkout@canary/"
    );
    let query = [
        ("project", "shop".to_owned()),
        ("type", "a,b".to_owned()),
        ("after", "1-0".to_owned()),
    ];
    assert_eq!(
        client.socket_url(&["ws", "events"], &query),
        "ws://127.0.0.1:8080/ws/events?project=shop&type=a%2Cb&after=1-0"
    );
}

#[tokio::test]
async fn an_upload_reports_its_progress_chunk_by_chunk() {
    let reported = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&reported);
    let body = RequestBody::new(
        Bytes::from(vec![7u8; UPLOAD_CHUNK_BYTES * 2 + 10]),
        Some(Box::new(move |sent, total| {
            sink.lock().unwrap().push((sent, total))
        })),
    );
    assert_eq!(
        body.size_hint().exact(),
        Some(UPLOAD_CHUNK_BYTES as u64 * 2 + 10)
    );
    let collected = body.collect().await.unwrap().to_bytes();
    assert_eq!(collected.len(), UPLOAD_CHUNK_BYTES * 2 + 10);
    let total = collected.len() as u64;
    let chunk = UPLOAD_CHUNK_BYTES as u64;
    assert_eq!(
        *reported.lock().unwrap(),
        vec![(chunk, total), (2 * chunk, total), (total, total)]
    );
}

#[tokio::test]
async fn a_call_that_takes_too_long_fails_with_its_time_limit() {
    let base = test_server::silent().await;
    let client = Client::new(&base)
        .unwrap()
        .with_timeout(Duration::from_millis(200));
    let error = client.health().await.unwrap_err();
    assert!(
        matches!(&error, ClientError::Timeout { url, limit } if url.ends_with("/healthz") && *limit == Duration::from_millis(200)),
        "{error:?}"
    );
}

#[tokio::test]
async fn answers_over_the_size_limit_are_refused_announced_or_not() {
    let (base, _) = test_server::serve(|seen| match seen.uri.as_str() {
        "/metrics" => answer(200, &[], vec![b'x'; 2048]),
        _ => chunked(4, 512),
    })
    .await;
    let client = Client::new(&base).unwrap().with_max_response_bytes(1024);
    let announced = client.metrics().await.unwrap_err();
    assert!(
        matches!(announced, ClientError::TooLarge { limit: 1024, .. }),
        "{announced:?}"
    );
    let streamed = client.openapi().await.unwrap_err();
    assert!(
        matches!(streamed, ClientError::TooLarge { limit: 1024, .. }),
        "{streamed:?}"
    );
    let enough = Client::new(&base).unwrap().with_max_response_bytes(4096);
    assert_eq!(enough.metrics().await.unwrap().len(), 2048);
}

#[tokio::test]
async fn a_coordinator_that_is_not_running_is_a_connect_error_with_a_hint() {
    let base = test_server::closed().await;
    let error = Client::new(&base).unwrap().health().await.unwrap_err();
    assert!(matches!(&error, ClientError::Connect { url, .. } if url.starts_with(&base)));
    assert!(error.hint().unwrap().contains("nexus up"));
}

#[tokio::test]
async fn calls_carry_the_token_and_their_json_and_parse_the_answer() {
    let (base, mut seen) = test_server::serve(|_| {
        json(
            201,
            serde_json::json!({"user_id": "u1", "role": "developer", "extra": "ignored"}),
        )
    })
    .await;
    let client = Client::new(&base).unwrap().with_token("secret-token");
    let added = client
        .add_member("shop", "ada@example.com", &Role::Developer)
        .await
        .unwrap();
    assert_eq!(added.role, Role::Developer);
    let request = seen.recv().await.unwrap();
    assert_eq!(request.method, Method::POST);
    assert_eq!(request.uri, "/v1/projects/shop/members");
    assert_eq!(request.headers["authorization"], "Bearer secret-token");
    assert_eq!(request.headers["content-type"], "application/json");
    assert!(
        request.headers["user-agent"]
            .to_str()
            .unwrap()
            .starts_with("nexus-client/")
    );
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&request.body).unwrap(),
        serde_json::json!({"email": "ada@example.com", "role": "developer"})
    );

    client.login("ada@example.com", "pw").await.unwrap_err();
    let login = seen.recv().await.unwrap();
    assert!(
        !login.headers.contains_key("authorization"),
        "login sends no token"
    );
}

#[tokio::test]
async fn an_answer_of_the_wrong_shape_is_a_bad_response() {
    let (base, _) = test_server::serve(|_| json(200, serde_json::json!({"nodes": "many"}))).await;
    let error = Client::new(&base)
        .unwrap()
        .list_project_nodes("shop")
        .await
        .unwrap_err();
    assert!(
        matches!(&error, ClientError::BadResponse { url, .. } if url.ends_with("/v1/projects/shop/nodes")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_deploy_uploads_with_progress_and_moves_the_alias_asked_for() {
    let deployed = serde_json::json!({
        "function": "hello", "version": 2, "component_digests": {"hello": "sha256:ab"},
        "created_at": "2030-01-01T00:00:00Z", "aliases": []
    });
    let (base, mut seen) = test_server::serve(move |_| json(201, deployed.clone())).await;
    let reported = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&reported);
    let component = Bytes::from(vec![0u8; 100_000]);
    let result = Client::new(&base)
        .unwrap()
        .with_token("t")
        .deploy_with_progress(
            "shop",
            "hello",
            Upload::Component(component.clone()),
            DeployAlias::Nothing,
            move |sent, total| sink.lock().unwrap().push((sent, total)),
        )
        .await
        .unwrap();
    assert_eq!(result.version.version, 2);
    let request = seen.recv().await.unwrap();
    assert_eq!(
        request.uri,
        "/v1/projects/shop/functions/hello/versions?alias=none"
    );
    assert_eq!(request.headers["content-type"], "application/wasm");
    assert_eq!(request.body, component);
    let reported = reported.lock().unwrap();
    assert_eq!(reported.last(), Some(&(100_000, 100_000)));
    assert!(reported.windows(2).all(|pair| pair[0].0 < pair[1].0));
}
