//! Outbound HTTP from a guest, limited by `allowed_outbound_hosts` (`http://127.0.0.1:*`).

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use nexus_tests::TestPlatform;
use tokio::net::TcpListener;

/// A real HTTP server on a free port that answers every request with `upstream says hi`.
pub(crate) async fn upstream() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let service = service_fn(|_request| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                        b"upstream says hi",
                    ))))
                });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    address
}

async fn fetch_through_guest(platform: &TestPlatform, target: &str) -> (StatusCode, String) {
    fetch_via(platform, "/outbound", target).await
}

async fn fetch_via(platform: &TestPlatform, route: &str, target: &str) -> (StatusCode, String) {
    let request = Request::get(platform.url(route))
        .header("x-target-url", target)
        .body(Full::default())
        .unwrap();
    let response = platform.send(request).await;
    (response.status, response.text())
}

#[tokio::test]
async fn allowed_destination_is_reached() {
    let upstream = upstream().await;
    let platform = TestPlatform::builder().start().await;
    let (status, body) = fetch_through_guest(&platform, &format!("http://{upstream}/")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "status=200\nupstream says hi");
}

#[tokio::test]
async fn a_name_that_resolves_to_an_allowed_address_is_reached_at_that_address() {
    let upstream = upstream().await;
    let platform = TestPlatform::builder().start().await;
    let (status, body) =
        fetch_through_guest(&platform, &format!("http://localhost:{}/", upstream.port())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.ends_with("upstream says hi"), "{body}");
}

#[tokio::test]
async fn other_destinations_are_denied() {
    let upstream = upstream().await;
    let platform = TestPlatform::builder().start().await;
    for target in [
        format!("http://127.0.0.2:{}/", upstream.port()),
        format!("https://127.0.0.1:{}/", upstream.port()),
        "http://example.com/".to_owned(),
    ] {
        let (status, body) = fetch_through_guest(&platform, &target).await;
        assert_eq!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{target}: {body}"
        );
        assert!(body.contains("HttpRequestDenied"), "{target}: {body}");
    }
}

#[tokio::test]
async fn both_http_worlds_reach_allowed_destinations() {
    let upstream = upstream().await;
    let platform = TestPlatform::builder().start().await;
    let (status, body) = fetch_via(&platform, "/p3/outbound", &format!("http://{upstream}/")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "status=200\nupstream says hi");
    let (status, body) = fetch_via(&platform, "/p3/outbound", "http://example.com/").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
}

#[tokio::test]
async fn relative_urls_reach_the_app_itself_when_self_is_allowed() {
    let platform = TestPlatform::builder().start().await;
    for route in ["/outbound", "/p3/outbound"] {
        let (status, body) = fetch_via(&platform, route, "/hello").await;
        assert_eq!(status, StatusCode::OK, "{route}: {body}");
        assert_eq!(body, "status=200\nHello, Nexus!", "{route}");
        // Routed like an outside request: an unknown route is the edge's 404.
        let (status, body) = fetch_via(&platform, route, "/no/such/route").await;
        assert_eq!(status, StatusCode::OK, "{route}: {body}");
        assert!(body.starts_with("status=404\n"), "{route}: {body}");
    }
    let (status, body) = fetch_via(&platform, "/outbound-strict", "/hello").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
}

#[tokio::test]
async fn service_chaining_reaches_a_component_by_name() {
    let platform = TestPlatform::builder().start().await;
    for route in ["/outbound", "/p3/outbound"] {
        let (status, body) = fetch_via(&platform, route, "http://hello.spin.internal/").await;
        assert_eq!(status, StatusCode::OK, "{route}: {body}");
        assert_eq!(body, "status=200\nHello, Nexus!", "{route}");
    }
    let (status, body) =
        fetch_via(&platform, "/outbound-strict", "http://hello.spin.internal/").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.contains("HttpRequestDenied"), "{body}");
}
