//! The `spin-*` headers, value by value, against Spin's.

use std::net::SocketAddr;

use http::{HeaderName, HeaderValue, Uri};

use super::{SITE, router};
use crate::routing::{PATH_MATCH_PREFIX, Router, full_url, spin_headers};

fn header_list(headers: &[(HeaderName, HeaderValue)]) -> Vec<(&str, &str)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str(), value.to_str().unwrap()))
        .collect()
}

#[test]
fn headers_match_spin() {
    let router = router(SITE);
    let client: SocketAddr = "127.0.0.1:8777".parse().unwrap();
    let uri: Uri = "/users/42/posts/7?key1=value1&key2=value2".parse().unwrap();
    let found = router.route(uri.path()).unwrap();
    let url = full_url(
        "https",
        Some("fermyon.dev"),
        uri.path_and_query().unwrap().as_str(),
    );
    assert_eq!(
        header_list(&spin_headers(&found, &url, client)),
        [
            ("spin-path-info", ""),
            (
                "spin-full-url",
                "https://fermyon.dev/users/42/posts/7?key1=value1&key2=value2"
            ),
            ("spin-matched-route", "/users/:id/posts/:post_id"),
            ("spin-base-path", "/"),
            ("spin-raw-component-route", "/users/:id/posts/:post_id"),
            ("spin-component-route", "/users/:id/posts/:post_id"),
            ("spin-client-addr", "127.0.0.1:8777"),
            ("spin-path-match-id", "42"),
            ("spin-path-match-post-id", "7"),
        ]
    );
}

#[test]
fn spin_header_test_cases() {
    // `test_default_headers` and `test_default_headers_with_named_wildcards` in Spin.
    let client: SocketAddr = "127.0.0.1:8777".parse().unwrap();
    for (route, path, component_route, params) in [
        ("/foo/...", "/foo/bar", "/foo", vec![]),
        (
            "/foo/:userid/...",
            "/foo/42/bar",
            "/foo/:userid",
            vec![("spin-path-match-userid", "42")],
        ),
    ] {
        let router = router(&[("DUMMY", Some(route))]);
        let found = router.route(path).unwrap();
        let url = full_url("https", Some("fermyon.dev"), &format!("{path}?key1=value1"));
        let mut expected = vec![
            ("spin-path-info", "/bar"),
            ("spin-full-url", url.as_str()),
            ("spin-matched-route", route),
            ("spin-base-path", "/"),
            ("spin-raw-component-route", route),
            ("spin-component-route", component_route),
            ("spin-client-addr", "127.0.0.1:8777"),
        ];
        expected.extend(params);
        assert_eq!(header_list(&spin_headers(&found, &url, client)), expected);
    }
}

#[test]
fn header_values_for_root_and_odd_routes() {
    let ipv6: SocketAddr = "[::1]:4000".parse().unwrap();
    let router = router(&[
        ("root", Some("/")),
        ("rel", Some("docs/")),
        ("all", Some("/x/...")),
    ]);

    let root = router.route("/").unwrap();
    let headers = spin_headers(&root, &full_url("http", None, "/"), ipv6);
    assert_eq!(
        header_list(&headers),
        [
            ("spin-path-info", ""),
            ("spin-full-url", "http://localhost/"),
            ("spin-matched-route", ""),
            ("spin-base-path", "/"),
            ("spin-raw-component-route", "/"),
            ("spin-component-route", "/"),
            ("spin-client-addr", "[::1]:4000"),
        ]
    );

    // A route written without its leading slash: matched route is absolute, raw is as written.
    let relative = router.route("/docs").unwrap();
    assert_eq!(relative.matched_route(), "/docs");
    assert_eq!(relative.raw_component_route(), "docs/");
    assert_eq!(relative.component_route(), "docs/");

    // A parameter whose name cannot be a header name gets no header, as in Spin.
    let odd = router_with_param_name();
    let found = odd.route("/v").unwrap();
    let headers = spin_headers(&found, "http://localhost/v", ipv6);
    assert!(
        !headers
            .iter()
            .any(|(name, _)| name.as_str().starts_with(PATH_MATCH_PREFIX))
    );
    assert_eq!(found.param("a b"), Some("v"));
}

fn router_with_param_name() -> Router {
    router(&[("comp", Some("/:a b"))])
}
