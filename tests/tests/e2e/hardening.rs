//! Guest hardening: every cap of `Limits` broken on purpose by the `abuser` fixture, answered
//! with its typed error, and the node serving the next request as before.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use nexus_context::MemoryStore;
use nexus_proto::app::{HttpRoute, HttpTrigger, ResolvedComponent};
use nexus_proto::{Digest, ResolvedApp};
use nexus_runtime::{
    AppVariables, Cap, EnvVariables, LoadError, Runtime, RuntimeConfig, VariableSource,
};
use nexus_tests::{TestPlatform, TestResponse, component_path};

/// Asserts that `response` is the edge's error `code` naming `cap` and `limit`.
fn assert_refused(response: &TestResponse, status: StatusCode, code: &str, cap: &str, limit: u64) {
    assert_eq!(response.status, status, "{}", response.text());
    let body = response.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("{cap} cap of {limit}")),
        "the message names neither the cap nor its value: {message}"
    );
}

async fn assert_still_serving(platform: &TestPlatform) {
    let hello = platform.get("/hello").await;
    assert_eq!(hello.status, StatusCode::OK);
    assert_eq!(hello.text(), "Hello, Nexus!");
}

fn breaches(runtime: &Runtime, cap: Cap) -> u64 {
    runtime
        .limit_breaches()
        .into_iter()
        .find_map(|(counted, count)| (counted == cap).then_some(count))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_holding_too_many_resources_traps_with_resource_limit_exceeded() {
    let platform = TestPlatform::builder()
        .limits(|limits| limits.max_resources = 100)
        .start()
        .await;
    let response = platform.get("/abuse?resources=500").await;
    assert_refused(
        &response,
        StatusCode::INTERNAL_SERVER_ERROR,
        "resource_limit_exceeded",
        "max_resources",
        100,
    );
    assert_eq!(breaches(platform.platform().runtime(), Cap::Resources), 1);
    let within = platform.get("/abuse?resources=50").await;
    assert_eq!(within.status, StatusCode::OK, "{}", within.text());
    assert_eq!(within.text(), "held=50");
    assert_still_serving(&platform).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_building_oversized_fields_traps_with_header_limit_exceeded() {
    let platform = TestPlatform::builder()
        .limits(|limits| limits.max_header_bytes = 4096)
        .start()
        .await;
    let response = platform.get("/abuse?headers=20&value_bytes=1000").await;
    assert_refused(
        &response,
        StatusCode::INTERNAL_SERVER_ERROR,
        "header_limit_exceeded",
        "max_header_bytes",
        4096,
    );
    let within = platform.get("/abuse?headers=3&value_bytes=1000").await;
    assert_eq!(within.text(), "appended=3");
    assert_still_serving(&platform).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_response_with_too_many_headers_is_replaced_by_header_limit_exceeded() {
    let platform = TestPlatform::builder()
        .limits(|limits| limits.max_header_count = 20)
        .start()
        .await;
    let response = platform.get("/abuse?response_headers=30").await;
    assert_refused(
        &response,
        StatusCode::INTERNAL_SERVER_ERROR,
        "header_limit_exceeded",
        "max_header_count",
        20,
    );
    let within = platform.get("/abuse?response_headers=10").await;
    assert_eq!(within.status, StatusCode::OK, "{}", within.text());
    assert_eq!(within.headers["x-abuse-9"], "1");
    assert_still_serving(&platform).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_header_caps_answer_431() {
    let platform = TestPlatform::builder()
        .limits(|limits| {
            limits.max_header_count = 20;
            limits.max_header_bytes = 2048;
        })
        .start()
        .await;
    let mut many = Request::get(platform.url("/hello"));
    for index in 0..30 {
        many = many.header(format!("x-many-{index}"), "1");
    }
    let response = platform.send(many.body(Full::default()).unwrap()).await;
    assert_refused(
        &response,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
        "max_header_count",
        20,
    );
    let large = Request::get(platform.url("/hello"))
        .header("x-large", "v".repeat(3000))
        .body(Full::default())
        .unwrap();
    let response = platform.send(large).await;
    assert_refused(
        &response,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "headers_too_large",
        "max_header_bytes",
        2048,
    );
    assert_still_serving(&platform).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbound_requests_past_the_cap_fail_in_the_guest_and_are_counted() {
    let upstream = crate::outbound::upstream().await;
    let platform = TestPlatform::builder()
        .limits(|limits| limits.max_outbound_requests = 3)
        .start()
        .await;
    let url = format!("http://{upstream}/");
    let response = platform.get(&format!("/abuse?outbound=5&url={url}")).await;
    assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        response.text().starts_with("sent=3 ")
            && response.text().contains("ConnectionLimitReached"),
        "{}",
        response.text()
    );
    assert_eq!(
        breaches(platform.platform().runtime(), Cap::OutboundRequests),
        1
    );
    // The count is per invocation: the next one may send its three.
    let within = platform.get(&format!("/abuse?outbound=3&url={url}")).await;
    assert_eq!(within.text(), "sent=3");
    assert_still_serving(&platform).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outgoing_request_over_the_header_count_fails_in_the_guest() {
    let upstream = crate::outbound::upstream().await;
    let platform = TestPlatform::builder()
        .limits(|limits| limits.max_header_count = 20)
        .start()
        .await;
    let url = format!("http://{upstream}/");
    let response = platform
        .get(&format!("/abuse?outbound=1&request_headers=30&url={url}"))
        .await;
    assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        response
            .text()
            .contains("HttpRequestHeaderSectionSize(Some(20))"),
        "{}",
        response.text()
    );
    let within = platform
        .get(&format!("/abuse?outbound=1&request_headers=5&url={url}"))
        .await;
    assert_eq!(within.text(), "sent=1");
    assert_still_serving(&platform).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_value_write_over_the_host_call_cap_is_refused() {
    let platform = TestPlatform::builder()
        .limits(|limits| limits.max_host_call_bytes = 1024)
        .start()
        .await;
    let response = platform.get("/abuse?kv_value_bytes=2048").await;
    assert_eq!(response.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        response
            .text()
            .contains("2048 bytes exceed the max_host_call_bytes cap of 1024 bytes"),
        "{}",
        response.text()
    );
    assert_eq!(
        breaches(platform.platform().runtime(), Cap::HostCallBytes),
        1
    );
    let within = platform.get("/abuse?kv_value_bytes=1024").await;
    assert_eq!(within.text(), "stored=1024");
    assert_still_serving(&platform).await;
}

fn runtime(change: impl FnOnce(&mut nexus_runtime::Limits)) -> Runtime {
    let mut config = RuntimeConfig::default();
    change(&mut config.limits);
    Runtime::new(config, Arc::new(MemoryStore::new())).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_over_the_size_cap_is_refused() {
    let bytes = std::fs::read(component_path("abuser")).unwrap();
    let runtime = runtime(|limits| limits.max_component_bytes = 1000);
    match runtime.prepare("abuser", &bytes) {
        Err(LoadError::ComponentTooLarge { size, limit, .. }) => {
            assert_eq!(size, bytes.len() as u64);
            assert_eq!(limit, 1000);
        }
        Err(other) => panic!("refused for the wrong reason: {other}"),
        Ok(_) => panic!("a component over the cap was loaded"),
    }
    assert_eq!(breaches(&runtime, Cap::ComponentBytes), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compilation_over_the_time_cap_is_refused_and_not_started_again() {
    let bytes = std::fs::read(component_path("abuser")).unwrap();
    let runtime = runtime(|limits| limits.compile_timeout = Duration::from_millis(1));
    for _ in 0..2 {
        let started = std::time::Instant::now();
        match runtime.prepare("abuser", &bytes) {
            Err(error @ LoadError::CompileTimeout { .. }) => {
                assert!(
                    error.to_string().contains("compile_timeout cap of 1ms"),
                    "{error}"
                );
            }
            Err(other) => panic!("refused for the wrong reason: {other}"),
            Ok(_) => panic!("compiled within a millisecond"),
        }
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    assert_eq!(breaches(&runtime, Cap::CompileTime), 2);
    assert_eq!(runtime.cached_components(), 0);
}

/// The `abuser` fixture as an app of its own, under `tenant`.
fn tenant_app(tenant: &str, digest: Digest) -> ResolvedApp {
    let component = ResolvedComponent {
        id: "abuser".to_owned(),
        source: digest,
        allowed_outbound_hosts: Vec::new(),
        key_value_stores: Vec::new(),
        sqlite_databases: Vec::new(),
        variables: BTreeMap::new(),
        environment: BTreeMap::new(),
    };
    ResolvedApp {
        name: tenant.to_owned(),
        version: None,
        variables: BTreeMap::new(),
        components: BTreeMap::from([("abuser".to_owned(), component)]),
        http_triggers: vec![HttpTrigger {
            route: HttpRoute::Path("/...".to_owned()),
            component: "abuser".to_owned(),
        }],
    }
}

async fn call(app: &nexus_runtime::LoadedApp, query: &str) -> String {
    let request = Request::get(format!("http://tenant.test/abuse?{query}"))
        .body(Full::<Bytes>::default())
        .unwrap();
    let response = app
        .component("abuser")
        .unwrap()
        .handle(request)
        .await
        .unwrap();
    let status = response.status();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pooling_slot_reused_by_another_tenant_holds_none_of_the_last_ones_memory() {
    // One slot, so tenant B's instance gets the very memory tenant A's had; 16 MiB is beyond
    // what stays resident between instances, so both ways of resetting a slot are crossed.
    let runtime = runtime(|limits| limits.max_instances = 1);
    let path = component_path("abuser");
    let digest = Digest::of(&std::fs::read(&path).unwrap());
    let artifacts = BTreeMap::from([(digest, path)]);
    let source: Arc<dyn VariableSource> =
        Arc::new(EnvVariables::from_env(Vec::<(String, String)>::new()));
    let (app_a, app_b) = (
        tenant_app("tenant-a", digest),
        tenant_app("tenant-b", digest),
    );
    let variables_a = AppVariables::read(&app_a, Arc::clone(&source))
        .await
        .unwrap();
    let variables_b = AppVariables::read(&app_b, source).await.unwrap();
    let tenant_a = runtime.load_app(&app_a, &artifacts, &variables_a).unwrap();
    let tenant_b = runtime.load_app(&app_b, &artifacts, &variables_b).unwrap();

    // The scanner finds a marker that is there.
    let control = call(
        &tenant_a,
        "fill=tenant-a-secret&scan=tenant-a-secret&mib=16",
    )
    .await;
    let found: usize = control.rsplit("found=").next().unwrap().parse().unwrap();
    // One run: the 16 MiB just written are contiguous.
    assert!(found >= 1, "the scanner missed what it wrote: {control}");

    for round in 0..3 {
        let filled = call(&tenant_a, "fill=tenant-a-secret&mib=16").await;
        assert_eq!(filled, "filled=16");
        let scanned = call(&tenant_b, "scan=tenant-a-secret&mib=16").await;
        assert_eq!(
            scanned, "found=0",
            "round {round}: tenant B read tenant A's memory"
        );
    }
}
