//! Table-driven tests of routing and headers against Spin's behaviour, including the cases of
//! Spin's own `routes.rs` and `headers.rs` tests.

use std::collections::BTreeMap;

use http::Uri;
use nexus_proto::app::{HttpRoute, HttpTrigger, ResolvedComponent};
use nexus_proto::{Digest, ResolvedApp};

use super::*;

/// An app with one component per route; `None` is `{ private = true }`.
fn app(routes: &[(&str, Option<&str>)]) -> ResolvedApp {
    let components = routes
        .iter()
        .map(|(id, _)| {
            let component = ResolvedComponent {
                id: (*id).to_owned(),
                source: Digest::of(id.as_bytes()),
                allowed_outbound_hosts: Vec::new(),
                key_value_stores: Vec::new(),
                sqlite_databases: Vec::new(),
                variables: BTreeMap::new(),
                environment: BTreeMap::new(),
            };
            ((*id).to_owned(), component)
        })
        .collect();
    let http_triggers = routes
        .iter()
        .map(|(id, route)| HttpTrigger {
            route: match route {
                Some(route) => HttpRoute::Path((*route).to_owned()),
                None => HttpRoute::Private,
            },
            component: (*id).to_owned(),
        })
        .collect();
    ResolvedApp {
        name: "test".to_owned(),
        version: None,
        variables: BTreeMap::new(),
        components,
        http_triggers,
    }
}

fn router(routes: &[(&str, Option<&str>)]) -> Router {
    Router::build(&app(routes)).unwrap()
}

/// Routes a request target the way the ingress does: only the URI's path is routed.
fn route_target<'r>(router: &'r Router, target: &str) -> Option<RouteMatch<'r, 'static>> {
    let uri: Uri = target.parse().unwrap();
    let path: &'static str = Box::leak(uri.path().to_owned().into_boxed_str());
    router.route(path)
}

fn component_for(router: &Router, target: &str) -> Option<String> {
    route_target(router, target).map(|m| m.component_id().to_owned())
}

const SITE: &[(&str, Option<&str>)] = &[
    ("root", Some("/")),
    ("hello", Some("/hello")),
    ("hello-world", Some("/hello/world")),
    ("user", Some("/users/:id")),
    ("user-post", Some("/users/:id/posts/:post_id")),
    ("me", Some("/users/me")),
    ("static", Some("/static/...")),
    ("static-img", Some("/static/img/...")),
    ("api", Some("/api/:version/...")),
    ("json-file", Some("/files/:name.json")),
    ("encoded", Some("/a%20b")),
    ("fallback", Some("/...")),
    ("internal", None),
];

struct Case {
    target: &'static str,
    component: &'static str,
    matched_route: &'static str,
    raw_route: &'static str,
    component_route: &'static str,
    path_info: &'static str,
    params: &'static [(&'static str, &'static str)],
}

const fn case(
    target: &'static str,
    component: &'static str,
    raw_route: &'static str,
    path_info: &'static str,
) -> Case {
    Case {
        target,
        component,
        matched_route: raw_route,
        raw_route,
        component_route: raw_route,
        path_info,
        params: &[],
    }
}

#[test]
fn routes_paths_like_spin() {
    let router = router(SITE);
    let mut cases = vec![
        // The root route beats `/...` for `/`, and its matched route is empty, as in Spin.
        Case {
            matched_route: "",
            ..case("/", "root", "/", "")
        },
        case("/hello", "hello", "/hello", ""),
        // Trailing and repeated leading slashes are ignored; the query is not routed.
        case("/hello/", "hello", "/hello", ""),
        case("//hello//", "hello", "/hello", ""),
        case("/hello?name=world", "hello", "/hello", ""),
        case("/hello/world", "hello-world", "/hello/world", ""),
        // Exact beats parameter.
        case("/users/me", "me", "/users/me", ""),
        Case {
            params: &[("id", "42")],
            ..case("/users/42", "user", "/users/:id", "")
        },
        Case {
            params: &[("id", "42"), ("post_id", "7")],
            ..case(
                "/users/42/posts/7",
                "user-post",
                "/users/:id/posts/:post_id",
                "",
            )
        },
        // Parameters are raw: no percent-decoding.
        Case {
            params: &[("id", "j%C3%B6rg")],
            ..case("/users/j%C3%B6rg?x", "user", "/users/:id", "")
        },
        // A parameter never matches an empty segment: `/users/` falls through to `/...`.
        fallback("/users/", "/users/"),
        fallback("/users//", "/users/"),
        // Wildcards keep Spin's slashes: none, `/`, `/rest`, `/rest/`.
        wildcard("/static", "static", "/static/...", ""),
        wildcard("/static/", "static", "/static/...", "/"),
        wildcard(
            "/static/css/site.css",
            "static",
            "/static/...",
            "/css/site.css",
        ),
        wildcard("/static/css/", "static", "/static/...", "/css/"),
        wildcard("/static//x", "static", "/static/...", "//x"),
        // The longer wildcard prefix wins.
        wildcard(
            "/static/img/logo.png",
            "static-img",
            "/static/img/...",
            "/logo.png",
        ),
        wildcard("/static/img", "static-img", "/static/img/...", ""),
        // A prefix match is not a segment match.
        fallback("/staticx", "/staticx"),
        Case {
            params: &[("version", "v1")],
            ..wildcard("/api/v1/things/1", "api", "/api/:version/...", "/things/1")
        },
        Case {
            params: &[("version", "v1")],
            ..wildcard("/api/v1", "api", "/api/:version/...", "")
        },
        Case {
            params: &[("name", "report")],
            ..case("/files/report.json", "json-file", "/files/:name.json", "")
        },
        fallback("/files/report.tar.json", "/files/report.tar.json"),
        // Routes and paths are compared raw, percent-encoding included.
        case("/a%20b", "encoded", "/a%20b", ""),
        fallback("/a%20B", "/a%20B"),
        // Reserved paths are routed like any other: the ingress answers them first.
        fallback("/.well-known/spin/health", "/.well-known/spin/health"),
    ];
    // The cases of Spin's `test_router_wildcard`.
    cases.push(fallback("/abc/", "/abc/"));
    cases.push(fallback(
        "/this/should/be/captured?abc=def",
        "/this/should/be/captured",
    ));

    for case in cases {
        let target = case.target;
        let found = route_target(&router, target).unwrap_or_else(|| panic!("{target}: no match"));
        assert_eq!(found.component_id(), case.component, "{target}: component");
        assert_eq!(
            found.matched_route(),
            case.matched_route,
            "{target}: matched"
        );
        assert_eq!(found.raw_component_route(), case.raw_route, "{target}: raw");
        assert_eq!(
            found.component_route(),
            case.component_route,
            "{target}: route"
        );
        assert_eq!(found.path_info(), case.path_info, "{target}: path info");
        assert_eq!(found.params(), case.params, "{target}: params");
        assert_eq!(found.base_path(), "/", "{target}: base");
    }
}

fn wildcard(
    target: &'static str,
    component: &'static str,
    raw_route: &'static str,
    path_info: &'static str,
) -> Case {
    Case {
        component_route: raw_route.strip_suffix("/...").unwrap_or(raw_route),
        ..case(target, component, raw_route, path_info)
    }
}

fn fallback(target: &'static str, path_info: &'static str) -> Case {
    wildcard(target, "fallback", "/...", path_info)
}

#[test]
fn private_routes_are_never_matched() {
    let router = router(&[("public", Some("/public")), ("internal", None)]);
    assert_eq!(router.routes().collect::<Vec<_>>(), [("public", "/public")]);
    assert_eq!(component_for(&router, "/internal"), None);
    assert_eq!(component_for(&router, "/"), None);
}

#[test]
fn unmatched_paths_find_nothing() {
    let router = router(&[("hello", Some("/hello")), ("user", Some("/users/:id"))]);
    for target in ["/", "/nothing", "/hello/world", "/users", "/users/1/2"] {
        assert_eq!(component_for(&router, target), None, "{target}");
    }
}

#[test]
fn precedence_does_not_depend_on_manifest_order() {
    let orders: [&[(&str, Option<&str>)]; 2] = [
        &[
            ("one", Some("/one/...")),
            ("two", Some("/one/two/...")),
            ("three", Some("/one/two/three/...")),
            ("exact", Some("/one")),
            ("param", Some("/:x")),
            ("both", Some("/a/:x")),
            ("other", Some("/:y/b")),
            ("all", Some("/...")),
        ],
        &[
            ("all", Some("/...")),
            ("other", Some("/:y/b")),
            ("both", Some("/a/:x")),
            ("param", Some("/:x")),
            ("exact", Some("/one")),
            ("three", Some("/one/two/three/...")),
            ("two", Some("/one/two/...")),
            ("one", Some("/one/...")),
        ],
    ];
    for routes in orders {
        let router = router(routes);
        for (target, expected) in [
            ("/one/two/three/four", "three"),
            ("/one/two/x", "two"),
            ("/one/x", "one"),
            ("/one", "exact"),
            ("/x", "param"),
            ("/a/b", "both"),
            ("/c/b", "other"),
            ("/c/d/e", "all"),
            ("/", "all"),
        ] {
            assert_eq!(
                component_for(&router, target).as_deref(),
                Some(expected),
                "{target}"
            );
        }
    }
}

#[test]
fn a_leading_dot_follows_routefinders_insertion_order() {
    // routefinder's order is inconsistent between `.` and other segments, so the route added
    // last wins there; Spin adds routes in manifest order.
    let dot_last = router(&[("all", Some("/...")), ("dot", Some("/.well-known/x"))]);
    assert_eq!(
        component_for(&dot_last, "/.well-known/x").as_deref(),
        Some("dot")
    );
    let dot_first = router(&[("dot", Some("/.well-known/x")), ("all", Some("/..."))]);
    assert_eq!(
        component_for(&dot_first, "/.well-known/x").as_deref(),
        Some("all")
    );
}

#[test]
fn spin_route_test_cases() {
    // `trailing_wildcard_is_captured`
    let router_all = router(&[("comp", Some("/..."))]);
    assert_eq!(router_all.route("/1/2/3").unwrap().path_info(), "/1/2/3");
    let router_one = router(&[("comp", Some("/1/..."))]);
    assert_eq!(router_one.route("/1/2/3").unwrap().path_info(), "/2/3");
    // `named_wildcard_is_captured`
    let named = router(&[("comp", Some("/1/:two/3"))]);
    assert_eq!(named.route("/1/2/3").unwrap().param("two"), Some("2"));
    let named_rest = router(&[("comp", Some("/1/:two/..."))]);
    assert_eq!(named_rest.route("/1/2/3").unwrap().param("two"), Some("2"));
    // `reserved_routes_are_reserved` / `unreserved_routes_are_unreserved`
    for (route, reserved) in [
        ("/.well-known/spin/...", true),
        ("/.well-known/spin/fie", true),
        ("/.well-known/spindle/...", false),
        ("/.well-known/spi/...", false),
        ("/.well-known/spin", false),
    ] {
        let router = router(&[("comp", Some(route))]);
        assert_eq!(router.contains_reserved_route(), reserved, "{route}");
    }
}

#[test]
fn repeated_parameter_names_keep_the_last_value() {
    let router = router(&[("comp", Some("/:id/:id"))]);
    let found = router.route("/a/b").unwrap();
    assert_eq!(found.params(), [("id", "a"), ("id", "b")]);
    assert_eq!(found.param("id"), Some("b"));
    let headers = spin_headers(&found, "http://x/a/b", "127.0.0.1:1".parse().unwrap());
    let matches: Vec<_> = headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with(PATH_MATCH_PREFIX))
        .collect();
    assert_eq!(matches.len(), 1);
    assert_eq!(matches[0].1, "b");
}

#[test]
fn duplicate_routes_are_refused() {
    for (first, second) in [
        ("/foo", "/foo"),
        ("/foo", "/foo/"),
        ("/foo", "foo"),
        ("/", ""),
        ("/a/:x", "/a/:y"),
        ("/...", "/*"),
        ("/api/...", "/api/*"),
    ] {
        let error = Router::build(&app(&[("first", Some(first)), ("second", Some(second))]))
            .expect_err(second);
        assert_eq!(
            error,
            RoutingError::DuplicateRoute {
                route: second.to_owned(),
                component: "second".to_owned(),
                previous_route: first.to_owned(),
                previous_component: "first".to_owned(),
            }
        );
    }
    // Overlapping but distinct routes are fine, as is a private trigger next to a route.
    for (first, second) in [
        ("/", "/..."),
        ("/foo", "/foo/..."),
        ("/:x", "/..."),
        ("/a", "/b"),
    ] {
        assert!(
            Router::build(&app(&[("first", Some(first)), ("second", Some(second))])).is_ok(),
            "{first} {second}"
        );
    }
    assert!(Router::build(&app(&[("first", None), ("second", None)])).is_ok());
}

#[test]
fn invalid_routes_and_unknown_components_are_refused() {
    for route in ["/*rest", "/a/:", "/*/a", "/files/*.json"] {
        let error = Router::build(&app(&[("comp", Some(route))])).expect_err(route);
        assert!(
            matches!(&error, RoutingError::InvalidRoute { route: r, .. } if r == route),
            "{route}: {error}"
        );
    }
    let mut unknown = app(&[("comp", Some("/"))]);
    unknown.components.clear();
    assert_eq!(
        Router::build(&unknown).unwrap_err(),
        RoutingError::UnknownComponent {
            component: "comp".to_owned()
        }
    );
}

#[test]
fn path_info_borrows_from_the_path_when_it_can() {
    let router = router(&[("comp", Some("/s/...")), ("dotted", Some("/d.*"))]);
    let found = router.route("/s/a/b/").unwrap();
    assert!(matches!(found.path_info(), Cow::Borrowed("/a/b/")));
    // After a `.` the leading slash has to be added.
    let dotted = router.route("/d.x").unwrap();
    assert_eq!(dotted.component_id(), "dotted");
    assert!(matches!(dotted.path_info(), Cow::Owned(ref info) if info == "/x"));
}

mod headers;
mod spin_differential;
