use serde_json::json;

use super::*;
use crate::test_server::{self, answer};

#[tokio::test]
async fn the_trigger_gets_the_request_as_given_and_never_the_token() {
    let (base, mut seen) = test_server::serve(|_| {
        answer(
            500,
            &[("nexus-version", "7"), ("content-type", "text/plain")],
            "the function failed",
        )
    })
    .await;
    let client = Client::new(&base).unwrap().with_token("user-token");
    let request = FunctionRequest::post("/cart/items?id=1", "{}").with_header(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let response = client
        .invoke("shop", "checkout", Some("canary"), request)
        .await
        .unwrap();
    assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(response.version, Some(7));
    assert_eq!(response.text(), Some("the function failed"));
    let sent = seen.recv().await.unwrap();
    assert_eq!(sent.method, Method::POST);
    assert_eq!(sent.uri, "/shop/checkout@canary/cart/items?id=1");
    assert!(!sent.headers.contains_key("authorization"));
    assert_eq!(sent.headers["content-type"], "application/json");
    assert_eq!(sent.body, Bytes::from_static(b"{}"));
}

#[tokio::test]
async fn an_answer_without_a_version_is_the_coordinators_refusal() {
    let (base, _) = test_server::serve(|_| {
        test_server::json(
            404,
            json!({"error": {"code": "not_found", "message": "function not found", "request_id": "r"}}),
        )
    })
    .await;
    let error = Client::new(&base)
        .unwrap()
        .invoke("shop", "nope", None, FunctionRequest::get("/"))
        .await
        .unwrap_err();
    assert_eq!(
        error.hint(),
        Some("list the project's functions: nexus functions")
    );
}

#[tokio::test]
async fn an_asynchronous_invoke_asks_for_it_and_reads_the_accept() {
    let (base, mut seen) = test_server::serve(|_| {
        let mut accepted = test_server::json(
            202,
            json!({"id": "inv-1", "status": "queued", "url": "/v1/invocations/inv-1"}),
        );
        accepted
            .headers_mut()
            .insert("nexus-version", HeaderValue::from_static("3"));
        accepted
            .headers_mut()
            .insert(REPLAY_HEADER, HeaderValue::from_static("true"));
        accepted
    })
    .await;
    let mut request = FunctionRequest::post("/", "job");
    request.idempotency_key = Some("order-42".to_owned());
    let accepted = Client::new(&base)
        .unwrap()
        .invoke_async("shop", "worker", None, request)
        .await
        .unwrap();
    assert_eq!(
        accepted,
        Accepted {
            id: "inv-1".to_owned(),
            status: InvocationStatus::Queued,
            url: "/v1/invocations/inv-1".to_owned(),
            version: Some(3),
            replay: true,
        }
    );
    let sent = seen.recv().await.unwrap();
    assert_eq!(sent.uri, "/shop/worker/");
    assert_eq!(sent.headers["prefer"], "respond-async");
    assert_eq!(sent.headers["idempotency-key"], "order-42");
}

#[tokio::test]
async fn an_asynchronous_call_answered_synchronously_is_a_bad_response() {
    let (base, _) = test_server::serve(|_| answer(200, &[("nexus-version", "1")], "done")).await;
    let error = Client::new(&base)
        .unwrap()
        .invoke_async("shop", "worker", None, FunctionRequest::get("/"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, ClientError::BadResponse { .. }),
        "{error:?}"
    );
}

#[tokio::test]
async fn the_api_invocation_carries_the_request_in_json() {
    let (base, mut seen) =
        test_server::serve(|_| answer(200, &[("nexus-version", "2")], "ok")).await;
    let client = Client::new(&base).unwrap().with_token("key");
    let request = FunctionRequest {
        body: Bytes::from_static(&[0xff, 0x00]),
        ..FunctionRequest::new(Method::PUT, "/x?y=1")
    }
    .with_header(
        HeaderName::from_static("accept"),
        HeaderValue::from_static("a/b"),
    )
    .with_header(
        HeaderName::from_static("accept"),
        HeaderValue::from_static("c/d"),
    );
    let response = client
        .invoke_via_api("shop", "f", Some("beta"), &request)
        .await
        .unwrap();
    assert_eq!(response.version, Some(2));
    let sent = seen.recv().await.unwrap();
    assert_eq!(sent.uri, "/v1/projects/shop/invocations");
    assert_eq!(sent.headers["authorization"], "Bearer key");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&sent.body).unwrap(),
        json!({
            "function": "f", "alias": "beta", "mode": "sync", "method": "PUT", "path": "/x?y=1",
            "headers": {"accept": "a/b, c/d"}, "body_base64": "/wA="
        })
    );
}

#[tokio::test]
async fn a_path_that_is_not_a_path_is_refused_before_sending() {
    let client = Client::new(&test_server::closed().await).unwrap();
    for path in ["no-slash", "/a b", "http://elsewhere/"] {
        let error = client
            .invoke("shop", "f", None, FunctionRequest::get(path))
            .await
            .unwrap_err();
        assert!(
            matches!(error, ClientError::InvalidRequest(_)),
            "{path}: {error:?}"
        );
    }
}
