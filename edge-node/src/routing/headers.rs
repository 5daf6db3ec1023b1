//! The `spin-*` request headers Spin's HTTP trigger adds for the component.
//!
//! Names, values and order follow `compute_default_headers` and `prepare_request_headers` in
//! `spin-trigger-http` (`crates/trigger-http/src/headers.rs`); like Spin's wasi-http executor
//! (`crates/trigger-http/src/wasi.rs`), a header whose value is not a valid header value is
//! left out rather than failing the request.

use std::net::SocketAddr;

use http::{HeaderName, HeaderValue};

use super::{BASE_PATH_VALUE, RouteMatch};

/// `spin-path-info`: the part of the path matched by a trailing `/...`.
pub const PATH_INFO: HeaderName = HeaderName::from_static("spin-path-info");
/// `spin-full-url`: scheme, host, path and query of the request (see [`full_url`]).
pub const FULL_URL: HeaderName = HeaderName::from_static("spin-full-url");
/// `spin-matched-route`: the matched route, absolute, one trailing slash removed.
pub const MATCHED_ROUTE: HeaderName = HeaderName::from_static("spin-matched-route");
/// `spin-base-path`: always `/`.
pub const BASE_PATH: HeaderName = HeaderName::from_static("spin-base-path");
/// `spin-raw-component-route`: the matched route as written in the manifest.
pub const RAW_COMPONENT_ROUTE: HeaderName = HeaderName::from_static("spin-raw-component-route");
/// `spin-component-route`: the matched route as written, without a trailing `/...`.
pub const COMPONENT_ROUTE: HeaderName = HeaderName::from_static("spin-component-route");
/// `spin-client-addr`: the client's socket address, `ip:port` (`[ip]:port` for IPv6).
pub const CLIENT_ADDR: HeaderName = HeaderName::from_static("spin-client-addr");
/// The prefix of `spin-path-match-<name>`, one header per `:name` parameter of the route.
pub const PATH_MATCH_PREFIX: &str = "spin-path-match-";

/// The `spin-path-match-<name>` header for parameter `name`, if it makes a valid header name.
///
/// Spin writes `SPIN_PATH_MATCH_<NAME>` and turns it into a header name by lowercasing and
/// replacing `_` with `-`, so `:user_id` gives `spin-path-match-user-id`.
pub(super) fn path_match_header(name: &str) -> Option<HeaderName> {
    let header = format!(
        "{PATH_MATCH_PREFIX}{}",
        name.to_ascii_lowercase().replace('_', "-")
    );
    HeaderName::from_bytes(header.as_bytes()).ok()
}

/// The `spin-full-url` value: `{scheme}://{host}{path_and_query}`, where `host` is the `Host`
/// header, or `localhost` when the request has none (Spin does not fall back to the URI's
/// authority, so an HTTP/2 request without `Host` gets `localhost`), and `scheme` is the
/// listener's, `http` or `https`.
pub fn full_url(scheme: &str, host: Option<&str>, path_and_query: &str) -> String {
    let host = host.unwrap_or("localhost");
    format!("{scheme}://{host}{path_and_query}")
}

/// The headers Spin adds to a request routed by `route_match`, in Spin's order: path info,
/// full URL, matched route, base path, raw component route, component route, client address,
/// then one `spin-path-match-<name>` per parameter.
///
/// Spin's wasi-http executor appends these to the client's headers rather than replacing any
/// the client sent with the same names; the caller decides which to do.
pub fn spin_headers(
    route_match: &RouteMatch<'_, '_>,
    full_url: &str,
    client_addr: SocketAddr,
) -> Vec<(HeaderName, HeaderValue)> {
    let route = route_match.route;
    let mut headers = Vec::with_capacity(7 + route_match.params.len());
    let mut push = |name: HeaderName, value: Option<HeaderValue>| {
        if let Some(value) = value {
            headers.push((name, value));
        }
    };
    push(
        PATH_INFO,
        HeaderValue::from_bytes(route_match.path_info().as_bytes()).ok(),
    );
    push(FULL_URL, HeaderValue::from_bytes(full_url.as_bytes()).ok());
    push(MATCHED_ROUTE, route.matched_route_value.clone());
    push(BASE_PATH, Some(HeaderValue::from_static(BASE_PATH_VALUE)));
    push(RAW_COMPONENT_ROUTE, route.raw_route_value.clone());
    push(COMPONENT_ROUTE, route.component_route_value.clone());
    push(
        CLIENT_ADDR,
        HeaderValue::from_str(&client_addr.to_string()).ok(),
    );
    for ((_, value), header) in route_match.params.iter().zip(&route.param_headers) {
        if let Some(header) = header {
            push(
                header.clone(),
                HeaderValue::from_bytes(value.as_bytes()).ok(),
            );
        }
    }
    headers
}
