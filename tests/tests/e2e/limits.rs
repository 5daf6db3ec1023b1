//! Hard limits: deadlines, memory, stack, traps, instance slots, body size, bad components.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::{Request, StatusCode, header};
use http_body_util::Full;
use nexus_context::MemoryStore;
use nexus_runtime::{Limits, LoadError, Runtime, RuntimeConfig};
use nexus_tests::{TestPlatform, component_path, eventually};

const ONE_SECOND: Duration = Duration::from_secs(1);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_answers_504_within_deadline_plus_50ms() {
    let platform = TestPlatform::builder()
        .limits(|limits| limits.deadline = ONE_SECOND)
        .start()
        .await;
    let started = Instant::now();
    let response = platform.get("/bad/loop").await;
    let elapsed = started.elapsed();
    assert_eq!(
        response.status,
        StatusCode::GATEWAY_TIMEOUT,
        "{}",
        response.text()
    );
    assert_eq!(response.json()["error"]["code"], "deadline_exceeded");
    assert!(
        elapsed >= ONE_SECOND,
        "answered before the deadline: {elapsed:?}"
    );
    assert!(
        elapsed <= ONE_SECOND + Duration::from_millis(50),
        "answered {elapsed:?} after the request"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_answers_500_and_the_node_keeps_serving() {
    let platform = TestPlatform::builder()
        .limits(|limits| limits.memory_limit_bytes = 64 << 20)
        .start()
        .await;
    let response = platform.get("/bad/memory").await;
    assert_eq!(
        response.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{}",
        response.text()
    );
    assert_eq!(response.json()["error"]["code"], "guest_trap");
    let hello = platform.get("/hello").await;
    assert_eq!(hello.status, StatusCode::OK);
    let runtime = platform.platform().runtime();
    eventually("every instance slot to come back", || {
        runtime.free_instance_slots() == Limits::default().max_instances as usize
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_recursion_and_traps_answer_500() {
    let platform = TestPlatform::builder().start().await;
    for path in ["/bad/recursion", "/bad/trap"] {
        let response = platform.get(path).await;
        assert_eq!(
            response.status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{path}: {}",
            response.text()
        );
        assert_eq!(response.json()["error"]["code"], "guest_trap", "{path}");
    }
    assert_eq!(platform.get("/hello").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_loops_do_not_stop_hello() {
    let platform = Arc::new(
        TestPlatform::builder()
            .limits(|limits| limits.deadline = ONE_SECOND)
            .start()
            .await,
    );
    let loops: Vec<_> = (0..100)
        .map(|_| {
            let platform = Arc::clone(&platform);
            tokio::spawn(async move { platform.get("/bad/loop").await.status })
        })
        .collect();
    // Wait until most loops hold instances, so /hello really competes with them. Not all 100:
    // the client shares this process's two threads, and on a loaded machine the first loops
    // can reach their deadline before the last ones are admitted.
    let runtime = platform.platform().runtime();
    let all_slots = Limits::default().max_instances as usize;
    eventually("the loops to hold 50 instances", || {
        runtime.free_instance_slots() <= all_slots - 50
    })
    .await;
    let hello = platform.get("/hello").await;
    assert_eq!(hello.status, StatusCode::OK);
    assert_eq!(hello.text(), "Hello, Nexus!");
    assert!(
        runtime.free_instance_slots() < all_slots,
        "/hello answered only after the loops were gone"
    );
    for status in futures_join(loops).await {
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_instance_slots_and_queue_answer_503_with_retry_after() {
    let platform = Arc::new(
        TestPlatform::builder()
            .limits(|limits| {
                limits.deadline = ONE_SECOND;
                limits.max_instances = 2;
                limits.max_queued = 0;
            })
            .start()
            .await,
    );
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let platform = Arc::clone(&platform);
            tokio::spawn(async move { platform.get("/bad/loop").await.status })
        })
        .collect();
    let runtime = platform.platform().runtime();
    eventually("both slots to be taken", || {
        runtime.free_instance_slots() == 0
    })
    .await;
    let refused = platform.get("/hello").await;
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(refused.headers[header::RETRY_AFTER], "1");
    assert_eq!(refused.json()["error"]["code"], "overloaded");
    for status in futures_join(busy).await {
        assert_eq!(status, StatusCode::GATEWAY_TIMEOUT);
    }
    eventually("both slots to come back", || {
        runtime.free_instance_slots() == 2
    })
    .await;
    assert_eq!(platform.get("/hello").await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_are_refused_with_413() {
    let platform = TestPlatform::builder()
        .limits(|limits| limits.max_request_body_bytes = 1024)
        .start()
        .await;
    let request = Request::post(platform.url("/headers/upload"))
        .body(Full::from(vec![b'x'; 2048]))
        .unwrap();
    let response = platform.send(request).await;
    assert_eq!(response.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(response.json()["error"]["code"], "body_too_large");

    let request = Request::post(platform.url("/headers/upload"))
        .body(Full::from(vec![b'x'; 1024]))
        .unwrap();
    assert_eq!(platform.send(request).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_component_with_an_unsupported_import_is_refused_with_its_name() {
    let runtime = Runtime::new(RuntimeConfig::default(), Arc::new(MemoryStore::new())).unwrap();
    let bytes = std::fs::read(component_path("bad-import")).unwrap();
    match runtime.prepare("bad-import", &bytes) {
        Err(LoadError::UnsupportedImports { component, imports }) => {
            assert_eq!(component, "bad-import");
            assert!(
                imports
                    .iter()
                    .any(|import| import == "fermyon:spin/llm@2.0.0"),
                "{imports:?}"
            );
        }
        Err(other) => panic!("refused for the wrong reason: {other}"),
        Ok(_) => panic!("a component importing fermyon:spin/llm was accepted"),
    }
}

async fn futures_join<T>(handles: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut results = Vec::with_capacity(handles.len());
    for handle in handles {
        results.push(handle.await.expect("task panicked"));
    }
    results
}
