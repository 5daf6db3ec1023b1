//! Routing, Spin's request headers, both HTTP worlds, variables.

use http::{Request, StatusCode};
use http_body_util::Full;
use nexus_tests::TestPlatform;

#[tokio::test]
async fn hello_answers_on_both_http_worlds() {
    let platform = TestPlatform::builder().start().await;
    for path in ["/hello", "/p3/hello"] {
        let response = platform.get(path).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{path}: {}",
            response.text()
        );
        assert_eq!(response.text(), "Hello, Nexus!", "{path}");
    }
}

#[tokio::test]
async fn a_core_module_is_made_a_component_on_load() {
    let platform = TestPlatform::builder().start().await;
    let response = platform.get("/core/hello").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(response.text(), "Hello, Nexus!");
}

#[tokio::test]
async fn a_spin_sdk_2_module_runs_on_the_wasi_release_candidate() {
    let platform = TestPlatform::builder().start().await;
    let response = platform.get("/sdk2/some/path?x=1").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    assert_eq!(
        response.text(),
        "Hello from spin-sdk 2 (GET /sdk2/some/path?x=1, 0 body bytes)"
    );
    let post = Request::post(platform.url("/sdk2/"))
        .body(Full::from("12345"))
        .unwrap();
    assert_eq!(
        platform.send(post).await.text(),
        "Hello from spin-sdk 2 (POST /sdk2/, 5 body bytes)"
    );
    // Outbound HTTP through the candidate's outgoing-handler, to the app itself.
    let fetch = Request::get(platform.url("/sdk2/"))
        .header("x-fetch", "/hello")
        .body(Full::default())
        .unwrap();
    let fetched = platform.send(fetch).await;
    assert_eq!(fetched.status, StatusCode::OK, "{}", fetched.text());
    assert_eq!(fetched.text(), "fetched 200: Hello, Nexus!");
    // allowed_outbound_hosts holds for it too.
    let denied = Request::get(platform.url("/sdk2/"))
        .header("x-fetch", "http://example.com/")
        .body(Full::default())
        .unwrap();
    let denied = platform.send(denied).await;
    assert_eq!(denied.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        denied.text().starts_with("fetch failed"),
        "{}",
        denied.text()
    );
}

#[tokio::test]
async fn runtime_adds_no_response_header_of_its_own() {
    let platform = TestPlatform::builder().start().await;
    let response = platform.get("/hello").await;
    let mut names: Vec<&str> = response.headers.keys().map(|name| name.as_str()).collect();
    names.sort_unstable();
    // content-type is the guest's; content-length/transfer-encoding and date are HTTP framing
    // that hyper adds for every server, `spin up` included.
    let framing = ["content-length", "date", "transfer-encoding"];
    let extra: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| *name != "content-type" && !framing.contains(name))
        .collect();
    assert!(extra.is_empty(), "unexpected response headers: {extra:?}");
}

#[tokio::test]
async fn unknown_route_is_404_with_the_error_shape() {
    let platform = TestPlatform::builder().start().await;
    let response = platform.get("/no/such/route").await;
    assert_eq!(response.status, StatusCode::NOT_FOUND);
    let body = response.json();
    assert_eq!(body["error"]["code"], "route_not_found");
    assert!(
        body["error"]["request_id"]
            .as_str()
            .is_some_and(|id| !id.is_empty())
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/no/such/route")
    );
}

#[tokio::test]
async fn spin_headers_for_a_wildcard_route() {
    let platform = TestPlatform::builder().start().await;
    let response = platform.get("/headers/a/b?x=1").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let body = response.json();
    let headers = &body["headers"];
    let base = platform.url("");
    assert_eq!(headers["spin-full-url"], format!("{base}/headers/a/b?x=1"));
    assert_eq!(headers["spin-path-info"], "/a/b");
    assert_eq!(headers["spin-matched-route"], "/headers/...");
    assert_eq!(headers["spin-raw-component-route"], "/headers/...");
    assert_eq!(headers["spin-component-route"], "/headers");
    assert_eq!(headers["spin-base-path"], "/");
    let client = headers["spin-client-addr"].as_str().unwrap();
    assert!(client.starts_with("127.0.0.1:"), "{client}");
    assert_eq!(body["method"], "GET");
}

#[tokio::test]
async fn spin_headers_for_a_parameterised_route() {
    let platform = TestPlatform::builder().start().await;
    let response = platform.get("/users/42").await;
    assert_eq!(response.status, StatusCode::OK, "{}", response.text());
    let headers = &response.json()["headers"];
    assert_eq!(headers["spin-path-match-id"], "42");
    assert_eq!(headers["spin-matched-route"], "/users/:id");
    assert_eq!(headers["spin-path-info"], "");
}

#[tokio::test]
async fn clients_cannot_forge_spin_headers() {
    let platform = TestPlatform::builder().start().await;
    let request = Request::get(platform.url("/headers/x"))
        .header("spin-matched-route", "/forged")
        .header("spin-client-addr", "10.0.0.1:1")
        .body(Full::default())
        .unwrap();
    let response = platform.send(request).await;
    let headers = &response.json()["headers"];
    assert_eq!(headers["spin-matched-route"], "/headers/...");
    assert_ne!(headers["spin-client-addr"], "10.0.0.1:1");
}

#[tokio::test]
async fn request_headers_and_body_reach_the_guest() {
    let platform = TestPlatform::builder().start().await;
    let request = Request::post(platform.url("/headers/echo"))
        .header("x-custom", "value")
        .body(Full::from("twelve bytes"))
        .unwrap();
    let body = platform.send(request).await.json();
    assert_eq!(body["method"], "POST");
    assert_eq!(body["headers"]["x-custom"], "value");
    assert_eq!(body["body_len"], 12);
}

#[tokio::test]
async fn variables_resolve_from_defaults_and_the_environment() {
    let platform = TestPlatform::builder().start().await;
    for path in ["/variables", "/p3/variables"] {
        let response = platform.get(path).await;
        assert_eq!(
            response.status,
            StatusCode::OK,
            "{path}: {}",
            response.text()
        );
        assert_eq!(response.text(), "Hello from variables", "{path}");
    }

    let platform = TestPlatform::builder()
        .env("SPIN_VARIABLE_GREETING", "Hello from the environment")
        .start()
        .await;
    for path in ["/variables", "/p3/variables"] {
        assert_eq!(
            platform.get(path).await.text(),
            "Hello from the environment",
            "{path}"
        );
    }
}

#[tokio::test]
async fn undefined_and_invalid_variables_are_spin_errors() {
    let platform = TestPlatform::builder().start().await;
    for prefix in ["", "/p3"] {
        let undefined = platform.get(&format!("{prefix}/variables?name=nope")).await;
        assert_eq!(undefined.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(
            undefined.text().contains("Undefined"),
            "{prefix}: {}",
            undefined.text()
        );
        let invalid = platform
            .get(&format!("{prefix}/variables?name=Bad-Name"))
            .await;
        assert!(
            invalid.text().contains("InvalidName"),
            "{prefix}: {}",
            invalid.text()
        );
    }
}
