//! Request and response shape (issue 10): for every Spin routing form and both HTTP worlds, the
//! guest sees exactly the method, URI, headers and `spin-*` headers Spin gives it, and the
//! client gets exactly the guest's status and headers, plus only HTTP framing.
//!
//! Expected values are written out from Spin's code, not computed by `nexus_edge`:
//! `spin-trigger-http` `server.rs` (`set_req_uri`: scheme of the listener, authority from `Host`
//! or the target), `headers.rs` (`compute_default_headers`: names, values, order) and `wasi.rs`
//! (`prepare_request`: the client's headers as hyper's `HeaderMap` holds them, then Spin's),
//! and `wasmtime-wasi-http`, which Spin embeds as we do: forbidden headers such as `host` never
//! reach a guest (see [`guest_view`]), and a WASIp2 guest's `incoming-request` has scheme `http`
//! and the request's authority, so the SDK's `uri()` is the full URL, as is a WASIp3 guest's.

mod wire;

use std::net::SocketAddr;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request};
use http_body_util::{BodyExt as _, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use nexus_tests::{TestPlatform, component_path};
use serde_json::Value;
use wire::{Connection, WireRequest, WireResponse};

/// One HTTP world: its echo component and where the example app routes it.
#[derive(Debug, Clone, Copy)]
struct World {
    component: &'static str,
    /// Prepended to every example route of this world.
    prefix: &'static str,
}

const WORLDS: [World; 2] = [
    World {
        component: "headers",
        prefix: "",
    },
    World {
        component: "headers-p3",
        prefix: "/p3",
    },
];

/// What Spin's router reports for a request: the `spin-*` values besides URL, base and client.
#[derive(Debug, Clone)]
struct Routed {
    matched_route: String,
    raw_route: String,
    component_route: String,
    path_info: String,
    /// `spin-path-match-*` headers, in route order.
    params: Vec<(String, String)>,
}

impl Routed {
    /// A route without a trailing wildcard, written as `raw`.
    fn exact(raw: &str) -> Self {
        let absolute = if raw.starts_with('/') {
            raw.to_owned()
        } else {
            format!("/{raw}")
        };
        Self {
            matched_route: absolute.strip_suffix('/').unwrap_or(&absolute).to_owned(),
            raw_route: raw.to_owned(),
            component_route: raw.to_owned(),
            path_info: String::new(),
            params: Vec::new(),
        }
    }

    /// A route ending in `/...`, matching `path_info`.
    fn wildcard(raw: &str, path_info: &str) -> Self {
        Self {
            component_route: raw.strip_suffix("/...").unwrap().to_owned(),
            path_info: path_info.to_owned(),
            ..Self::exact(raw)
        }
    }

    fn param(mut self, name: &str, value: &str) -> Self {
        self.params
            .push((format!("spin-path-match-{name}"), value.to_owned()));
        self
    }
}

/// Every routing form of the example app, for one world, as `(request-target, routed)`.
fn example_routes(world: World) -> Vec<(String, Routed)> {
    let p = world.prefix;
    let exact = Routed::exact(&format!("{p}/shape/exact"));
    let slash = Routed::exact(&format!("{p}/shape/slash/"));
    let wildcard = |info: &str| Routed::wildcard(&format!("{p}/headers/..."), info);
    let user = Routed::exact(&format!("{p}/users/:id"));
    let files = |info: &str| Routed::wildcard(&format!("{p}/shape/files/:user_id/..."), info);
    let report = Routed::exact(&format!("{p}/shape/report.:format"));
    [
        ("/shape/exact", exact.clone()),
        ("/shape/exact/", exact),
        ("/shape/slash", slash.clone()),
        ("/shape/slash/", slash),
        ("/headers", wildcard("")),
        ("/headers/", wildcard("/")),
        ("/headers/a/b", wildcard("/a/b")),
        ("/headers/a/b/", wildcard("/a/b/")),
        ("/headers/caf%C3%A9/a%2Fb", wildcard("/caf%C3%A9/a%2Fb")),
        ("/users/42", user.clone().param("id", "42")),
        ("/users/j%C3%B6rg", user.param("id", "j%C3%B6rg")),
        (
            "/shape/params/one/and/two",
            Routed::exact(&format!("{p}/shape/params/:first/and/:second"))
                .param("first", "one")
                .param("second", "two"),
        ),
        (
            "/shape/files/7/docs/a.txt",
            files("/docs/a.txt").param("user-id", "7"),
        ),
        ("/shape/files/7", files("").param("user-id", "7")),
        ("/shape/report.json", report.clone().param("format", "json")),
        ("/shape/report.tar.gz", report.param("format", "tar.gz")),
    ]
    .into_iter()
    .map(|(path, routed)| (format!("{p}{path}"), routed))
    .collect()
}

/// An app of one echo component on the root forms, which would take over the example app:
/// `/`, `/...`, a route written without its leading slash, and a percent-encoded one.
fn root_app(directory: &std::path::Path, component: &str) -> std::path::PathBuf {
    let manifest = format!(
        r#"spin_manifest_version = 2

[application]
name = "request-shape-root"

[[trigger.http]]
route = "/"
component = "echo"

[[trigger.http]]
route = "/..."
component = "echo"

[[trigger.http]]
route = "relative/:id"
component = "echo"

[[trigger.http]]
route = "/caf%C3%A9"
component = "echo"

[component.echo]
source = {source:?}
"#,
        source = component_path(component),
    );
    let path = directory.join("spin.toml");
    std::fs::write(&path, manifest).unwrap();
    path
}

fn root_routes() -> Vec<(String, Routed)> {
    // The root route's matched route is empty, and so is the root wildcard's component route.
    let root = Routed {
        matched_route: String::new(),
        ..Routed::exact("/")
    };
    [
        ("/", root),
        (
            "/anything/else/",
            Routed::wildcard("/...", "/anything/else/"),
        ),
        ("/shape/exact", Routed::wildcard("/...", "/shape/exact")),
        (
            "/relative/7",
            Routed::exact("relative/:id").param("id", "7"),
        ),
        ("/caf%C3%A9", Routed::exact("/caf%C3%A9")),
        ("/caf%c3%a9", Routed::wildcard("/...", "/caf%c3%a9")),
    ]
    .into_iter()
    .map(|(path, routed)| (path.to_owned(), routed))
    .collect()
}

/// The request as the guest reported it.
#[derive(Debug, PartialEq)]
struct Echo {
    method: String,
    uri: String,
    header_list: Vec<(String, String)>,
    body_len: u64,
}

impl Echo {
    fn parse(response: &WireResponse) -> Self {
        assert_eq!(response.status, 200, "{}", response.text());
        Self::from_json(&response.json())
    }

    fn from_json(body: &Value) -> Self {
        let header_list = body["header_list"]
            .as_array()
            .unwrap_or_else(|| panic!("no header_list in {body}"))
            .iter()
            .map(|pair| {
                (
                    pair[0].as_str().unwrap().to_owned(),
                    pair[1].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        Self {
            method: body["method"].as_str().unwrap().to_owned(),
            uri: body["uri"].as_str().unwrap().to_owned(),
            header_list,
            body_len: body["body_len"].as_u64().unwrap(),
        }
    }
}

/// Names wasmtime-wasi-http never lets into a guest (`DEFAULT_FORBIDDEN_HEADERS`, which Spin
/// keeps): the authority reaches the guest through its URI instead of `host`.
const FORBIDDEN: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "host",
    "http2-settings",
];

/// The header fields a guest receives under Spin for a request with `client` headers, as
/// Spin's pipeline builds them: hyper parses the client's headers into a `HeaderMap` (names
/// lowercased, the values of a name grouped under its first appearance), Spin's executor
/// appends its own, and wasmtime-wasi-http removes the forbidden names one at a time with
/// `HeaderMap::remove`, which moves the last name into the hole.
fn guest_view(client: &[(String, String)], spin: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut map = HeaderMap::new();
    for (name, value) in client.iter().chain(&spin) {
        map.append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let forbidden: Vec<HeaderName> = map
        .keys()
        .filter(|name| FORBIDDEN.contains(&name.as_str()))
        .cloned()
        .collect();
    for name in forbidden {
        map.remove(name);
    }
    map.iter()
        .map(|(name, value)| {
            let value = String::from_utf8(value.as_bytes().to_vec()).unwrap();
            (name.as_str().to_owned(), value)
        })
        .collect()
}

/// Spin's headers for a request with `host` and `target`, in Spin's order.
fn spin_headers(
    host: Option<&str>,
    path_and_query: &str,
    routed: &Routed,
    client: SocketAddr,
) -> Vec<(String, String)> {
    let host = host.unwrap_or("localhost");
    let mut headers = vec![
        ("spin-path-info", routed.path_info.clone()),
        ("spin-full-url", format!("http://{host}{path_and_query}")),
        ("spin-matched-route", routed.matched_route.clone()),
        ("spin-base-path", "/".to_owned()),
        ("spin-raw-component-route", routed.raw_route.clone()),
        ("spin-component-route", routed.component_route.clone()),
        ("spin-client-addr", client.to_string()),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value))
    .collect::<Vec<_>>();
    headers.extend(routed.params.iter().cloned());
    headers
}

/// Sends `request` and checks the whole echo: method, URI, every header in order, body length.
async fn assert_shape(server: SocketAddr, request: &WireRequest, routed: &Routed) {
    let (response, client) = wire::send(server, request).await;
    let what = format!("{} {}", request.method, request.target);
    assert_eq!(response.status, 200, "{what}: {}", response.text());
    let host = request
        .headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map(|(_, value)| value.as_str());
    let spin = spin_headers(host, &request.target, routed, client);
    let expected = Echo {
        method: request.method.clone(),
        uri: format!("http://{}{}", host.unwrap(), request.target),
        header_list: guest_view(&request.headers, spin),
        body_len: request.body.len() as u64,
    };
    assert_eq!(Echo::parse(&response), expected, "{what}");
}

#[tokio::test]
async fn every_example_routing_form_on_both_worlds() {
    let platform = TestPlatform::builder().start().await;
    let server = platform.platform().local_addr();
    for world in WORLDS {
        for (target, routed) in example_routes(world) {
            let request = WireRequest::new("GET", &target, server);
            assert_shape(server, &request, &routed).await;
        }
    }
}

#[tokio::test]
async fn root_routing_forms_on_both_worlds() {
    for world in WORLDS {
        let directory = tempfile::tempdir().unwrap();
        let platform = TestPlatform::builder()
            .manifest(root_app(directory.path(), world.component))
            .start()
            .await;
        let server = platform.platform().local_addr();
        for (target, routed) in root_routes() {
            let request = WireRequest::new("GET", &target, server);
            assert_shape(server, &request, &routed).await;
        }
    }
}

#[tokio::test]
async fn methods_reach_the_guest_exactly() {
    let platform = TestPlatform::builder().start().await;
    let server = platform.platform().local_addr();
    for world in WORLDS {
        let target = format!("{}/shape/params/a/and/b", world.prefix);
        let routed = Routed::exact(&format!("{}/shape/params/:first/and/:second", world.prefix))
            .param("first", "a")
            .param("second", "b");
        for method in ["GET", "DELETE", "OPTIONS", "PURGE", "M-SEARCH"] {
            let request = WireRequest::new(method, &target, server);
            assert_shape(server, &request, &routed).await;
        }
        for method in ["POST", "PUT", "PATCH", "REPORT"] {
            let request = WireRequest::new(method, &target, server).body(b"seventeen bytes!!");
            assert_shape(server, &request, &routed).await;
        }
    }
}

#[tokio::test]
async fn queries_are_kept_byte_for_byte() {
    let platform = TestPlatform::builder().start().await;
    let server = platform.platform().local_addr();
    let queries = [
        "?",
        "?a=1&a=2&b&=&a=3",
        "?q=a%20b%2Bc&check=%E2%9C%93&plus=a+b&odd=/?:@!$'()*,;",
        "?%7Bencoded%7D=%25",
    ];
    for world in WORLDS {
        for (path, routed) in [
            (
                format!("{}/shape/exact", world.prefix),
                Routed::exact(&format!("{}/shape/exact", world.prefix)),
            ),
            (
                format!("{}/headers/x/", world.prefix),
                Routed::wildcard(&format!("{}/headers/...", world.prefix), "/x/"),
            ),
        ] {
            for query in queries {
                let request = WireRequest::new("GET", &format!("{path}{query}"), server);
                assert_shape(server, &request, &routed).await;
            }
        }
    }
}

#[tokio::test]
async fn request_headers_keep_values_order_and_repeats() {
    let platform = TestPlatform::builder().start().await;
    let server = platform.platform().local_addr();
    for world in WORLDS {
        let target = format!("{}/headers/h", world.prefix);
        let routed = Routed::wildcard(&format!("{}/headers/...", world.prefix), "/h");
        let request = WireRequest::new("POST", &target, server)
            .header("X-Repeat", "one")
            .header("Accept", "text/plain")
            .header("x-repeat", "two, with a comma")
            .header("X-Mixed-Case", "Keep This Case")
            .header("x-empty", "")
            .header("X-UTF8", "caf\u{e9}")
            .header("X-REPEAT", "three")
            .header("Cookie", "a=1")
            .header("cookie", "b=2")
            .header("Connection", "keep-alive")
            .header("Keep-Alive", "timeout=5")
            .header("Proxy-Authorization", "Basic eDp5")
            .body(b"{}");
        assert_shape(server, &request, &routed).await;

        // Another `Host` is what the guest's URI and `spin-full-url` name.
        let mut request = WireRequest::new("GET", &target, server);
        request.headers = vec![("HOST".to_owned(), "Example.COM:8080".to_owned())];
        assert_shape(server, &request, &routed).await;
    }
}

#[tokio::test]
async fn forged_spin_headers_are_dropped_and_the_rest_keep_their_order() {
    let platform = TestPlatform::builder().start().await;
    let server = platform.platform().local_addr();
    for world in WORLDS {
        let target = format!("{}/users/9", world.prefix);
        let mut request = WireRequest::new("GET", &target, server)
            .header("x-first", "1")
            .header("Spin-Full-Url", "http://forged/")
            .header("x-second", "2")
            .header("spin-path-match-id", "forged")
            .header("spin-made-up", "forged")
            .header("x-third", "3");
        let (response, client) = wire::send(server, &request).await;
        request
            .headers
            .retain(|(name, _)| !name.to_ascii_lowercase().starts_with("spin-"));
        let routed = Routed::exact(&format!("{}/users/:id", world.prefix)).param("id", "9");
        let spin = spin_headers(Some(&server.to_string()), &target, &routed, client);
        let expected = guest_view(&request.headers, spin);
        assert_eq!(Echo::parse(&response).header_list, expected, "{world:?}");
    }
}

#[tokio::test]
async fn absolute_form_targets_are_seen_like_spin_sees_them() {
    let platform = TestPlatform::builder().start().await;
    let server = platform.platform().local_addr();
    for world in WORLDS {
        let path = format!("{}/shape/exact?x=1", world.prefix);
        let routed = Routed::exact(&format!("{}/shape/exact", world.prefix));
        // Spin takes the scheme from the listener, whatever the target says.
        for scheme in ["http", "https"] {
            let request = WireRequest::new("GET", &format!("{scheme}://{server}{path}"), server);
            let (response, client) = wire::send(server, &request).await;
            let echo = Echo::parse(&response);
            assert_eq!(echo.uri, format!("http://{server}{path}"), "{scheme}");
            let spin = spin_headers(Some(&server.to_string()), &path, &routed, client);
            let expected = guest_view(&request.headers, spin);
            assert_eq!(echo.header_list, expected, "{scheme}");
        }

        // A target naming another authority than `Host` never reaches the guest.
        let request = WireRequest::new("GET", &format!("http://elsewhere.example{path}"), server);
        let (response, _) = wire::send(server, &request).await;
        assert_eq!(response.status, 400, "{}", response.text());
        assert_eq!(response.json()["error"]["code"], "bad_request");
    }
}

#[tokio::test]
async fn http2_requests_have_no_host_so_spin_full_url_says_localhost() {
    let platform = TestPlatform::builder().start().await;
    let server = platform.platform().local_addr();
    for world in WORLDS {
        let path = format!("{}/headers/h2?q=1", world.prefix);
        let stream = tokio::net::TcpStream::connect(server).await.unwrap();
        let client = stream.local_addr().unwrap();
        let (mut sender, connection) =
            hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
                .await
                .unwrap();
        tokio::spawn(connection);
        let request = Request::get(format!("http://{server}{path}"))
            .header("x-h2", "yes")
            .body(Full::<Bytes>::default())
            .unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let echo = Echo::from_json(&serde_json::from_slice(&body).unwrap());
        let routed = Routed::wildcard(&format!("{}/headers/...", world.prefix), "/h2");
        let sent = [("x-h2".to_owned(), "yes".to_owned())];
        let expected = guest_view(&sent, spin_headers(None, &path, &routed, client));
        assert_eq!(echo.header_list, expected, "{world:?}");
        assert_eq!(echo.uri, format!("http://{server}{path}"));
        assert_eq!(echo.method, "GET");
    }
}

fn respond_query(status: u16) -> String {
    format!(
        "?respond-status={status}&respond-header=set-cookie:a%3D1&respond-header=x-one:1\
         &respond-header=set-cookie:b%3D2%3B%20Path%3D%2F&respond-header=X-Case:Kept%20Value"
    )
}

/// The response headers `respond_query` asks for, as they leave: names lowercased, values of a
/// name grouped under its first appearance (the guest's field list is a `HeaderMap`).
fn responded_headers() -> Vec<(String, String)> {
    [
        ("content-type", "application/json"),
        ("set-cookie", "a=1"),
        ("set-cookie", "b=2; Path=/"),
        ("x-one", "1"),
        ("x-case", "Kept Value"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_owned(), value.to_owned()))
    .collect()
}

#[tokio::test]
async fn responses_leave_with_exactly_the_guests_status_and_headers() {
    let platform = TestPlatform::builder().start().await;
    let server = platform.platform().local_addr();
    for world in WORLDS {
        // Any status, the edge's own error statuses included, is the guest's to send.
        for status in [200, 201, 299, 404, 500, 503] {
            let target = format!("{}/shape/exact{}", world.prefix, respond_query(status));
            let (response, _) = wire::send(server, &WireRequest::new("GET", &target, server)).await;
            assert_eq!(response.status, status, "{world:?}: {}", response.text());
            assert_eq!(response.guest_headers(), responded_headers(), "{world:?}");
            assert_eq!(response.json()["method"], "GET", "{world:?}: not the echo");
        }
    }
}

#[tokio::test]
async fn head_responses_carry_the_guests_headers_and_no_body() {
    let platform = TestPlatform::builder().start().await;
    let server = platform.platform().local_addr();
    for world in WORLDS {
        let target = format!("{}/shape/exact{}", world.prefix, respond_query(200));
        let mut connection = Connection::open(server).await;
        let head = connection
            .send(&WireRequest::new("HEAD", &target, server))
            .await;
        assert_eq!(head.status, 200, "{world:?}");
        assert_eq!(head.guest_headers(), responded_headers(), "{world:?}");
        // Had the guest's body been sent after the HEAD response, this response would start
        // with it and fail to parse.
        let get = connection
            .send(&WireRequest::new("GET", &target, server))
            .await;
        assert_eq!(get.status, 200, "{world:?}");
        assert_eq!(get.json()["method"], "GET", "{world:?}");
    }
}
