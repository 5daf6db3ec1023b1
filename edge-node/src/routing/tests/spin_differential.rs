//! Differential test: [`Router`] against Spin's own routing, which is `spin-http`'s wrapper
//! (`crates/http/src/routes.rs`, copied in `spin.rs` here) over the real `routefinder` crate,
//! at the version Spin uses (0.5.4).
//!
//! A fixed seed drives a small PRNG that generates route sets and request paths, biased towards
//! the corners where routefinder has quirks: dots, parameters before dots, wildcards, empty and
//! repeated segments, percent-encoding and non-ASCII text. For every route, the parse must agree
//! with routefinder's; for every route set the router accepts, the precedence order must be
//! routefinder's; for every path, both must pick the same component and report the same matched
//! route, path info and parameters. A failure prints the seed, the routes and the path.

use std::collections::{BTreeMap, HashMap};

use nexus_proto::app::{HttpRoute, HttpTrigger, ResolvedComponent};
use nexus_proto::route::{self, RouteError, Segment};
use nexus_proto::{Digest, ResolvedApp};

use super::{Router, RoutingError};

mod generate;
mod spin;

use generate::{Rng, random_path, random_route};
use spin::{
    Outcome, SpinRouter, from_routefinder, panics_in_routefinder, sanitize_with_base,
    spin_parse_route,
};

/// Change it to explore; a failure message names the seed it came from.
const SEED: u64 = 0x5eed_f00d_5b14_2024;
const ROUTE_SETS: usize = 2_000;
/// Candidates per set; more than 11 routes means more than one `BTreeMap` leaf in routefinder.
const MAX_ROUTES_PER_SET: usize = 20;
const PATHS_PER_SET: usize = 40;

/// How much of the interesting space a run reached, so a generator change cannot quietly
/// make the test vacuous.
#[derive(Debug, Default)]
struct Coverage {
    routes_parsed: usize,
    invalid_routes: usize,
    unmatchable_routes: usize,
    duplicate_routes: usize,
    route_sets: usize,
    sets_over_one_leaf: usize,
    paths: usize,
    matched: usize,
    with_params: usize,
    with_path_info: usize,
}

/// Checks that `nexus_proto::route` parses `raw_route` as Spin and routefinder do, or refuses
/// it for the reason they would fail; returns the segments of a usable route.
fn check_parse(raw_route: &str, coverage: &mut Coverage) -> Option<Vec<Segment>> {
    coverage.routes_parsed += 1;
    let based_route = route::based_route(raw_route);
    assert_eq!(
        based_route,
        sanitize_with_base("/", raw_route),
        "{raw_route:?}"
    );
    let ours = route::parse(&based_route);
    let theirs = spin_parse_route(&based_route).map(|spec| {
        spec.segments()
            .iter()
            .map(from_routefinder)
            .collect::<Vec<_>>()
    });
    match (&ours, &theirs) {
        (Ok(ours), Ok(theirs)) => assert_eq!(ours, theirs, "{raw_route:?}"),
        (Err(RouteError::Unmatchable(_)), Ok(theirs)) => {
            coverage.unmatchable_routes += 1;
            assert!(panics_in_routefinder(theirs), "{raw_route:?}: {theirs:?}");
        }
        (Err(RouteError::NamedWildcard(section)), Err(message)) => {
            assert!(message.contains(&format!("`{section}`")), "{raw_route:?}");
        }
        (Err(RouteError::UnnamedParam), Err(message)) => {
            assert_eq!(message, "params must be named", "{raw_route:?}");
        }
        _ => panic!("{raw_route:?}: ours {ours:?}, routefinder {theirs:?}"),
    }
    if ours.is_err() {
        coverage.invalid_routes += 1;
    }
    ours.ok()
}

/// Builds the router for `(component id, raw route)` pairs, one component per route.
fn build(routes: &[(String, String)], digest: Digest) -> Result<Router, RoutingError> {
    // `super::app` would hash every component id; routing never looks at the digest.
    let component = |id: &str| ResolvedComponent {
        id: id.to_owned(),
        source: digest,
        allowed_outbound_hosts: Vec::new(),
        key_value_stores: Vec::new(),
        sqlite_databases: Vec::new(),
        variables: BTreeMap::new(),
        environment: BTreeMap::new(),
    };
    let app = ResolvedApp {
        name: "differential".to_owned(),
        version: None,
        variables: BTreeMap::new(),
        components: routes
            .iter()
            .map(|(id, _)| (id.clone(), component(id)))
            .collect(),
        http_triggers: routes
            .iter()
            .map(|(id, raw_route)| HttpTrigger {
                route: HttpRoute::Path(raw_route.clone()),
                component: id.clone(),
            })
            .collect(),
    };
    Router::build(&app)
}

fn our_outcome(router: &Router, path: &str) -> Option<Outcome> {
    let found = router.route(path)?;
    Some(Outcome {
        component_id: found.component_id().to_owned(),
        matched_route: found.matched_route().to_owned(),
        path_info: found.path_info().into_owned(),
        params: found
            .params()
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect(),
    })
}

#[test]
fn precedence_follows_routefinders_tree_beyond_one_node() {
    // Found by the test below. routefinder keeps routes in a `BTreeMap` whose order is
    // inconsistent for a `.` segment, so past 11 routes (one tree node) the order depends on the
    // tree's shape. In this app Spin routes `/` and the ACME challenge to `/...`; a router that
    // kept a sorted list did not.
    let manifest = [
        ("health", "/health"),
        ("api", "/api/..."),
        ("admin", "/admin/..."),
        ("feed", "/feed.xml"),
        ("blog", "/blog/:slug"),
        ("posts", "/users/:id/posts"),
        ("acme", "/.well-known/acme-challenge/..."),
        ("user", "/users/:id"),
        ("login", "/login"),
        ("file", "/files/:name.json"),
        ("fallback", "/..."),
        ("hello", "/hello"),
        ("about", "/about"),
        ("static", "/static/..."),
        ("root", "/"),
        ("logout", "/logout"),
    ]
    .map(|(id, raw_route)| (id.to_owned(), raw_route.to_owned()));
    let digest = Digest::of(b"");
    let ours = build(&manifest, digest).unwrap();
    let spin = SpinRouter::build(&manifest).unwrap();
    assert_eq!(ours.routes().collect::<Vec<_>>(), spin.routes());
    for (path, expected) in [
        ("/", "fallback"),
        ("/.well-known/acme-challenge/token", "fallback"),
        ("/hello", "hello"),
        ("/users/1", "user"),
        ("/nothing", "fallback"),
    ] {
        let found = our_outcome(&ours, path);
        assert_eq!(found, spin.route(path), "{path}");
        assert_eq!(
            found.map(|outcome| outcome.component_id).as_deref(),
            Some(expected),
            "{path}"
        );
    }
    // Within one node the order is the sorted one, and `/` wins.
    let small = build(&manifest[11..], digest).unwrap();
    assert_eq!(
        our_outcome(&small, "/")
            .map(|outcome| outcome.component_id)
            .as_deref(),
        Some("root")
    );
}

#[test]
fn routes_exactly_like_spin_over_routefinder() {
    let digest = Digest::of(b"");
    let mut rng = Rng::new(SEED);
    let mut coverage = Coverage::default();
    for set_index in 0..ROUTE_SETS {
        // Grow a route set as a manifest would, keeping the routes the router would accept.
        let mut routes: Vec<(String, String)> = Vec::new();
        let mut accepted_segments: Vec<Vec<Segment>> = Vec::new();
        for candidate in 0..1 + rng.below(MAX_ROUTES_PER_SET) {
            let raw_route = random_route(&mut rng);
            let Some(segments) = check_parse(&raw_route, &mut coverage) else {
                continue;
            };
            if accepted_segments
                .iter()
                .any(|accepted| route::same_shape(accepted, &segments))
            {
                coverage.duplicate_routes += 1;
                continue;
            }
            accepted_segments.push(segments);
            routes.push((format!("c{candidate}"), raw_route));
        }
        coverage.route_sets += 1;
        if routes.len() > 11 {
            coverage.sets_over_one_leaf += 1;
        }
        let context = format!("seed {SEED:#x}, set {set_index}, routes {routes:?}");
        let ours = build(&routes, digest).unwrap_or_else(|error| panic!("{context}: {error}"));
        let spin = SpinRouter::build(&routes).unwrap_or_else(|error| panic!("{context}: {error}"));
        assert_eq!(
            ours.routes().collect::<Vec<_>>(),
            spin.routes(),
            "{context}: precedence"
        );

        for _ in 0..PATHS_PER_SET {
            let path = random_path(&mut rng, &routes);
            let expected = spin.route(&path);
            assert_eq!(
                our_outcome(&ours, &path),
                expected,
                "{context}, path {path:?}"
            );
            coverage.paths += 1;
            let Some(expected) = expected else {
                continue;
            };
            coverage.matched += 1;
            coverage.with_params += usize::from(!expected.params.is_empty());
            coverage.with_path_info += usize::from(!expected.path_info.is_empty());
            // Spin's `named_wildcards` is a map: the last value of a repeated name wins.
            let named: HashMap<&str, &str> = expected
                .params
                .iter()
                .map(|(name, value)| (name.as_str(), value.as_str()))
                .collect();
            let found = ours.route(&path).unwrap_or_else(|| panic!("{path:?}"));
            for (name, value) in named {
                assert_eq!(found.param(name), Some(value), "{context}, path {path:?}");
            }
        }
    }

    // Guard against a generator that stops reaching the interesting cases.
    let Coverage { paths, matched, .. } = coverage;
    assert!(matched * 2 > paths, "{coverage:?}");
    assert!(matched * 10 < paths * 9, "{coverage:?}");
    assert!(coverage.with_params * 10 > matched, "{coverage:?}");
    assert!(coverage.with_path_info * 10 > matched, "{coverage:?}");
    assert!(coverage.invalid_routes > 100, "{coverage:?}");
    assert!(coverage.unmatchable_routes > 100, "{coverage:?}");
    assert!(coverage.duplicate_routes > 100, "{coverage:?}");
    assert!(coverage.sets_over_one_leaf > 20, "{coverage:?}");
    println!("{coverage:?}");
}
