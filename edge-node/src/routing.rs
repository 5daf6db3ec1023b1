//! Spin-compatible HTTP routing: which component serves a request path, and the `spin-*`
//! request headers the component sees.
//!
//! A [`Router`] is built once per app from its [`ResolvedApp`] and then answers
//! [`Router::route`] for every request without allocating, except for the `:name` parameters
//! it returns. Matching, precedence and header values follow Spin's HTTP trigger exactly
//! (`spin-http` `crates/http/src/routes.rs` on top of the `routefinder` crate, and
//! `spin-trigger-http` `crates/trigger-http/src/headers.rs`):
//!
//! - routes match the raw request path (percent-encoding kept, query excluded), ignoring
//!   leading and trailing slashes, so `/hello/` is served by `route = "/hello"`;
//! - an exact segment beats a `:param`, which beats a trailing `/...` wildcard, at the first
//!   position where two routes differ; so `/one/two/...` beats `/one/...`, and `/` beats `/...`
//!   for the path `/`;
//! - that order is routefinder's, quirks included: a `.` segment where another route has text,
//!   a parameter or a wildcard (`/.well-known/...` against `/...`) makes it depend on the
//!   order routes were added, and past 11 routes on the shape of routefinder's `BTreeMap`, so
//!   in some larger apps `/...` wins over `/` and `/.well-known/...`, exactly as in Spin;
//! - `{ private = true }` routes are never matched from outside;
//! - unlike Spin, which logs duplicate routes and lets one of them win, [`Router::build`]
//!   refuses routes that match exactly the same paths (`/a/:x` and `/a/:y`, `/foo` and `/foo/`),
//!   since one of them could never be reached;
//! - unlike Spin, whose executors append the `spin-*` headers after any the client sent under
//!   the same names, the ingress drops client-sent `spin-*` headers, so a guest sees exactly
//!   one of each and only the values computed here;
//! - unlike Spin, which answers 500 when a request header value is not UTF-8, such values reach
//!   the guest unchanged.
//!
//! Route parsing and duplicate detection are [`nexus_proto::route`], shared with the manifest
//! loader so that a manifest it accepts always routes; precedence and matching live here.
//!
//! This module does not serve the reserved [`WELL_KNOWN_PREFIX`] paths; the ingress answers
//! those before routing, as Spin's server does.

mod headers;
mod pattern;
#[cfg(test)]
mod tests;

use std::borrow::Cow;

use http::{HeaderName, HeaderValue};
use nexus_proto::ResolvedApp;
use nexus_proto::app::HttpRoute;
use nexus_proto::route::{self, Segment};

pub use headers::{
    BASE_PATH, CLIENT_ADDR, COMPONENT_ROUTE, FULL_URL, MATCHED_ROUTE, PATH_INFO, PATH_MATCH_PREFIX,
    RAW_COMPONENT_ROUTE, full_url, spin_headers,
};
use pattern::{Captures, Discard};

/// Paths under this prefix belong to the runtime (`health`, `info`), never to a component
/// (`spin_http::WELL_KNOWN_PREFIX`).
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

/// The base path every route is relative to. Spin manifest v2 has no `base` (the loader rejects
/// any other value), so it is always `/`, and so is the `spin-base-path` header.
pub const BASE_PATH_VALUE: &str = "/";

/// Why an app's HTTP triggers cannot be routed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RoutingError {
    /// A trigger names a component the app does not define.
    #[error("an http trigger refers to component `{component}`, which the app does not define")]
    UnknownComponent {
        /// The missing component id.
        component: String,
    },
    /// A route pattern cannot be parsed, or could never be matched.
    #[error("invalid route `{route}` for component `{component}`: {reason}")]
    InvalidRoute {
        /// The component the route leads to.
        component: String,
        /// The route as written.
        route: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two routes match exactly the same paths, so the second could never be chosen.
    #[error(
        "route `{route}` for component `{component}` duplicates route `{previous_route}` for \
         component `{previous_component}`: both match exactly the same paths"
    )]
    DuplicateRoute {
        /// The later route, as written.
        route: String,
        /// The component of the later route.
        component: String,
        /// The earlier route, as written.
        previous_route: String,
        /// The component of the earlier route.
        previous_component: String,
    },
}

/// Maps request paths to the components of one app.
#[derive(Debug, Clone)]
pub struct Router {
    /// Public routes in precedence order: the first that matches a path wins.
    routes: Vec<CompiledRoute>,
}

/// A route with everything a match needs precomputed.
#[derive(Debug, Clone)]
struct CompiledRoute {
    component_id: Box<str>,
    /// The route as written in the manifest (`spin-raw-component-route`).
    raw_route: Box<str>,
    /// Absolute, one trailing slash removed (`spin-matched-route`).
    based_route: Box<str>,
    /// Length of the raw route without a trailing `/...` (`spin-component-route`).
    component_route_len: usize,
    segments: Vec<Segment>,
    /// The names of the `:name` parameters, in route order.
    param_names: Vec<Box<str>>,
    /// For each parameter, its `spin-path-match-<name>` header name, or `None` when the header
    /// is not sent: the name is not a valid header name, or a later parameter has the same name
    /// (Spin collects parameters into a map, so the last value wins).
    param_headers: Vec<Option<HeaderName>>,
    matched_route_value: Option<HeaderValue>,
    raw_route_value: Option<HeaderValue>,
    component_route_value: Option<HeaderValue>,
}

impl Router {
    /// Builds the router for `app`'s HTTP triggers, in manifest order.
    ///
    /// Fails when a trigger names an unknown component, a route is invalid, or two routes match
    /// exactly the same paths.
    pub fn build(app: &ResolvedApp) -> Result<Self, RoutingError> {
        let mut manifest_order: Vec<CompiledRoute> = Vec::new();
        for trigger in &app.http_triggers {
            if !app.components.contains_key(&trigger.component) {
                return Err(RoutingError::UnknownComponent {
                    component: trigger.component.clone(),
                });
            }
            let HttpRoute::Path(raw_route) = &trigger.route else {
                continue;
            };
            let compiled = CompiledRoute::new(&trigger.component, raw_route)?;
            if let Some(previous) = manifest_order
                .iter()
                .find(|existing| route::same_shape(&existing.segments, &compiled.segments))
            {
                return Err(RoutingError::DuplicateRoute {
                    route: raw_route.clone(),
                    component: trigger.component.clone(),
                    previous_route: previous.raw_route.to_string(),
                    previous_component: previous.component_id.to_string(),
                });
            }
            manifest_order.push(compiled);
        }
        // Spin adds the routes to routefinder's map in manifest order; do the same.
        let order = pattern::precedence_order(
            manifest_order
                .iter()
                .map(|compiled| compiled.segments.as_slice()),
        );
        let mut slots: Vec<Option<CompiledRoute>> = manifest_order.into_iter().map(Some).collect();
        let routes = order
            .into_iter()
            .filter_map(|index| slots.get_mut(index)?.take())
            .collect();
        Ok(Self { routes })
    }

    /// The route that serves `path`, if any.
    ///
    /// `path` is the request URI's raw path (`Uri::path()`): still percent-encoded, without the
    /// query. Paths under [`WELL_KNOWN_PREFIX`] are routed like any other; the caller handles
    /// them first.
    pub fn route<'router, 'path>(
        &'router self,
        path: &'path str,
    ) -> Option<RouteMatch<'router, 'path>> {
        let route = self
            .routes
            .iter()
            .find(|route| pattern::matches(&route.segments, path, &mut Discard))?;
        let mut captured = Captured {
            names: route.param_names.iter(),
            params: Vec::with_capacity(route.param_names.len()),
            wildcard: None,
        };
        pattern::matches(&route.segments, path, &mut captured);
        Some(RouteMatch {
            route,
            path,
            params: captured.params,
            wildcard: captured.wildcard,
        })
    }

    /// The public routes in precedence order, as `(component id, route as written)`.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.routes
            .iter()
            .map(|route| (&*route.component_id, &*route.raw_route))
    }

    /// Whether a route lies under [`WELL_KNOWN_PREFIX`], where the runtime answers instead of
    /// the component; worth a warning at startup, as Spin gives.
    pub fn contains_reserved_route(&self) -> bool {
        self.routes
            .iter()
            .any(|route| route.based_route.starts_with(WELL_KNOWN_PREFIX))
    }
}

impl CompiledRoute {
    fn new(component_id: &str, raw_route: &str) -> Result<Self, RoutingError> {
        let based_route = route::based_route(raw_route);
        let segments = route::parse(&based_route).map_err(|error| RoutingError::InvalidRoute {
            component: component_id.to_owned(),
            route: raw_route.to_owned(),
            reason: error.to_string(),
        })?;
        let param_names: Vec<Box<str>> = segments
            .iter()
            .filter_map(|segment| match segment {
                Segment::Param(name) => Some(name.clone()),
                _ => None,
            })
            .collect();
        let param_headers = param_names
            .iter()
            .enumerate()
            .map(|(index, name)| {
                let shadowed = param_names
                    .iter()
                    .skip(index + 1)
                    .any(|later| later == name);
                if shadowed {
                    None
                } else {
                    headers::path_match_header(name)
                }
            })
            .collect();
        let component_route = raw_route.strip_suffix("/...").unwrap_or(raw_route);
        Ok(Self {
            component_id: component_id.into(),
            raw_route: raw_route.into(),
            component_route_len: component_route.len(),
            matched_route_value: HeaderValue::from_bytes(based_route.as_bytes()).ok(),
            raw_route_value: HeaderValue::from_bytes(raw_route.as_bytes()).ok(),
            component_route_value: HeaderValue::from_bytes(component_route.as_bytes()).ok(),
            based_route: based_route.into(),
            segments,
            param_names,
            param_headers,
        })
    }
}

/// Collects the captures of the winning route.
struct Captured<'router, 'path> {
    names: std::slice::Iter<'router, Box<str>>,
    params: Vec<(&'router str, &'path str)>,
    wildcard: Option<&'path str>,
}

impl<'path> Captures<'path> for Captured<'_, 'path> {
    fn param(&mut self, value: &'path str) {
        if let Some(name) = self.names.next() {
            self.params.push((name, value));
        }
    }

    fn wildcard(&mut self, value: &'path str) {
        self.wildcard = Some(value);
    }
}

/// How a request path matched a route.
#[derive(Debug, Clone)]
pub struct RouteMatch<'router, 'path> {
    route: &'router CompiledRoute,
    path: &'path str,
    params: Vec<(&'router str, &'path str)>,
    wildcard: Option<&'path str>,
}

impl<'router, 'path> RouteMatch<'router, 'path> {
    /// The id of the component that serves the request.
    pub fn component_id(&self) -> &'router str {
        &self.route.component_id
    }

    /// The matched route made absolute, with one trailing slash removed: `spin-matched-route`.
    /// Spin's quirk is kept: the route `/` gives the empty string.
    pub fn matched_route(&self) -> &'router str {
        &self.route.based_route
    }

    /// The route exactly as written in the manifest: `spin-raw-component-route`.
    pub fn raw_component_route(&self) -> &'router str {
        &self.route.raw_route
    }

    /// The route as written, without a trailing `/...`: `spin-component-route` (`/api/...`
    /// gives `/api`, `/...` gives the empty string).
    pub fn component_route(&self) -> &'router str {
        self.route
            .raw_route
            .get(..self.route.component_route_len)
            .unwrap_or_default()
    }

    /// The part of the path matched by a trailing wildcard, with its leading slash and keeping
    /// a trailing slash of the request path: `spin-path-info`. Empty for routes without a
    /// wildcard. For `/static/...`: `/static` gives `""`, `/static/` gives `/`, `/static/a/b/`
    /// gives `/a/b/`.
    pub fn path_info(&self) -> Cow<'path, str> {
        let Some(captured) = self.wildcard else {
            return Cow::Borrowed("");
        };
        // Spin re-adds the slashes routefinder trims (`RouteMatch::trailing_wildcard`).
        let keeps_trailing_slash = self.path.ends_with('/');
        if captured.is_empty() {
            return Cow::Borrowed(if keeps_trailing_slash { "/" } else { "" });
        }
        // The capture usually sits right after a `/` in the path, so the answer is a slice of it.
        if let Some(start) = offset_in(self.path, captured) {
            let end = start + captured.len() + usize::from(keeps_trailing_slash);
            if let Some(slice) = start
                .checked_sub(1)
                .and_then(|slash| self.path.get(slash..end))
                .filter(|slice| slice.starts_with('/'))
            {
                return Cow::Borrowed(slice);
            }
        }
        Cow::Owned(if keeps_trailing_slash {
            format!("/{captured}/")
        } else {
            format!("/{captured}")
        })
    }

    /// The `:name` parameters in route order, as `(name, raw value)`. Values are not
    /// percent-decoded, as in Spin.
    pub fn params(&self) -> &[(&'router str, &'path str)] {
        &self.params
    }

    /// The value of parameter `name`; when a route repeats a name, the last one, as in Spin.
    pub fn param(&self, name: &str) -> Option<&'path str> {
        self.params
            .iter()
            .rev()
            .find(|(param_name, _)| *param_name == name)
            .map(|(_, value)| *value)
    }

    /// The app's base path: always [`BASE_PATH_VALUE`] (`spin-base-path`).
    pub fn base_path(&self) -> &'static str {
        BASE_PATH_VALUE
    }
}

/// The byte offset of `inner` within `outer`, when `inner` is a slice of it.
fn offset_in(outer: &str, inner: &str) -> Option<usize> {
    let offset = inner.as_ptr().addr().checked_sub(outer.as_ptr().addr())?;
    (offset + inner.len() <= outer.len()).then_some(offset)
}
