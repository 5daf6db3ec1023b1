//! A copy of Spin's HTTP routing (`spin-http`, `crates/http/src/routes.rs`) over the real
//! `routefinder`, reduced to what the router under test reports: base `/`, public routes only.

use nexus_proto::route::Segment;

/// What a route leads to: `RouteHandler` in Spin's `routes.rs`.
#[derive(Debug)]
struct SpinHandler {
    component_id: String,
    based_route: String,
    raw_route: String,
}

/// Spin's `Router` with base `/`, over the real routefinder.
pub(super) struct SpinRouter {
    router: routefinder::Router<SpinHandler>,
}

/// What both routers report for a path: the header values that depend on the match.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Outcome {
    pub(super) component_id: String,
    pub(super) matched_route: String,
    pub(super) path_info: String,
    pub(super) params: Vec<(String, String)>,
}

impl SpinRouter {
    /// Spin's `Router::build("/", routes, None)` for public routes in manifest order.
    pub(super) fn build(routes: &[(String, String)]) -> Result<Self, String> {
        // Spin keys routes by raw route in an `IndexMap`: a repeated raw route replaces the
        // earlier handler and keeps its position.
        let mut entries: Vec<SpinHandler> = Vec::new();
        for (component_id, raw_route) in routes {
            let entry = SpinHandler {
                component_id: component_id.clone(),
                based_route: sanitize_with_base("/", raw_route),
                raw_route: raw_route.clone(),
            };
            match entries.iter_mut().find(|e| e.raw_route == *raw_route) {
                Some(existing) => *existing = entry,
                None => entries.push(entry),
            }
        }
        let mut router = routefinder::Router::new();
        for entry in entries {
            let spec = spin_parse_route(&entry.based_route)?;
            router.add(spec, entry).map_err(|error| error.to_string())?;
        }
        Ok(Self { router })
    }

    /// Spin's `Router::route`, then `component_id`, `based_route`, `named_wildcards` (in
    /// route order rather than as a map) and `trailing_wildcard` of its `RouteMatch`.
    pub(super) fn route(&self, path: &str) -> Option<Outcome> {
        let best_match = self.router.best_match(path)?;
        let handler = best_match.handler();
        let captures = best_match.captures();
        let path_info = captures
            .wildcard()
            .map(|s| match (s.is_empty(), path.ends_with('/')) {
                (true, false) => s.to_owned(),
                (true, true) => "/".to_owned(),
                (false, false) => format!("/{s}"),
                (false, true) => format!("/{s}/"),
            })
            .unwrap_or_default();
        Some(Outcome {
            component_id: handler.component_id.clone(),
            matched_route: handler.based_route.clone(),
            path_info,
            params: captures
                .iter()
                .map(|(name, value)| (name.to_owned(), value.to_owned()))
                .collect(),
        })
    }

    /// `(component id, raw route)` in routefinder's precedence order.
    pub(super) fn routes(&self) -> Vec<(&str, &str)> {
        self.router
            .iter()
            .map(|(_, handler)| (&*handler.component_id, &*handler.raw_route))
            .collect()
    }
}

/// Spin's `Router::parse_route`, without the display form it also builds.
pub(super) fn spin_parse_route(based_route: &str) -> Result<routefinder::RouteSpec, String> {
    if let Some(wild_suffixed) = based_route.strip_suffix("/...") {
        format!("{wild_suffixed}/*").try_into()
    } else {
        // Spin's separate `/*` branch parses the same text.
        based_route.try_into()
    }
}

/// Spin's `sanitize_with_base`, `absolutize` and `sanitize`.
pub(super) fn sanitize_with_base(base: &str, path: &str) -> String {
    format!("{}{}", sanitize(base), sanitize(&absolutize(path)))
}

fn absolutize(path: &str) -> String {
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

fn sanitize(path: &str) -> String {
    path.strip_suffix('/').unwrap_or(path).to_owned()
}

pub(super) fn from_routefinder(segment: &routefinder::Segment) -> Segment {
    match segment {
        routefinder::Segment::Slash => Segment::Slash,
        routefinder::Segment::Dot => Segment::Dot,
        routefinder::Segment::Exact(text) => Segment::Exact(text.as_str().into()),
        routefinder::Segment::Param(name) => Segment::Param(name.as_str().into()),
        routefinder::Segment::Wildcard => Segment::Wildcard,
    }
}

/// Whether routefinder's `RouteSpec::matches` can reach one of its `panic!`s: a wildcard that
/// is not last, or a parameter followed by anything but `/`, `.` or the end.
pub(super) fn panics_in_routefinder(segments: &[Segment]) -> bool {
    segments.windows(2).any(|pair| {
        matches!(
            pair,
            [Segment::Wildcard, _]
                | [
                    Segment::Param(_),
                    Segment::Exact(_) | Segment::Param(_) | Segment::Wildcard
                ]
        )
    })
}
