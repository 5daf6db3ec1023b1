//! Spin HTTP route patterns: parsing and duplicate detection.
//!
//! The one implementation shared by the manifest loader (`nexus-manifest`), which refuses bad
//! or duplicate routes at load time with the manifest's names in the error, and the edge
//! node's router (`nexus-edge`, `src/routing.rs`), which adds precedence and matching on top of
//! the [`Segment`]s parsed here. Both must agree on what a route is, so neither carries a copy.
//!
//! The rules are Spin's (`spin-http`, `crates/http/src/routes.rs`), which hands each route to
//! the `routefinder` crate (0.5): [`based_route`] is Spin's `sanitize_with_base("/", route)`,
//! and [`parse`] is Spin's `Router::parse_route` followed by routefinder's
//! `RouteSpec::from_str`. Every quirk kept on purpose is marked "routefinder:". Where Spin
//! would accept a route and then fail requests, or let one of two routes silently win, this
//! module reports it instead ([`RouteError::Unmatchable`], [`same_shape`]).
//!
//! It also splits a trigger path (`/{project}/{function}[@{alias}]/…`), which the coordinator's trigger
//! and an edge node's own ingress both serve.
//!
//! Only `std` is used, so both sides can depend on it without pulling anything in.

use std::fmt;

/// The alias a trigger path that names none goes through.
pub const DEFAULT_ALIAS: &str = "live";

/// A trigger path, `/{project}/{function}[@{alias}][/rest]`, split without decoding (names
/// never need it): project, function, alias ([`DEFAULT_ALIAS`] when it names none) and the
/// length of the mount prefix `/{project}/{function}[@{alias}]`. The coordinator's trigger and
/// an edge node's own ingress serve the same paths.
pub fn split_trigger_path(path: &str) -> Option<(&str, &str, &str, usize)> {
    let rest = path.strip_prefix('/')?;
    let (project, rest) = rest.split_once('/')?;
    let (function, prefix_len) = match rest.split_once('/') {
        Some((function, _)) => (function, 1 + project.len() + 1 + function.len()),
        None => (rest, path.len()),
    };
    let (function, alias) = function
        .split_once('@')
        .unwrap_or((function, DEFAULT_ALIAS));
    Some((project, function, alias, prefix_len))
}

/// One piece of a parsed route.
///
/// `/hello/:planet/...` is `[Exact("hello"), Slash, Param("planet"), Slash, Wildcard]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// A `/` between two other segments; matches one `/`.
    Slash,
    /// A `.` after a parameter or at the start; matches one `.`.
    Dot,
    /// Literal text; matches itself (a prefix test, as routefinder does). A `.` that follows
    /// literal text in the route is part of the text (`/a.b` is `Exact("a.")`, `Exact("b")`).
    Exact(Box<str>),
    /// `:name`, holding the name without the colon; matches up to the next `/` (or `.` when a
    /// [`Segment::Dot`] follows in the route), never an empty string.
    Param(Box<str>),
    /// `*`, which Spin writes `/...`; matches the rest of the path, possibly nothing. Always the
    /// last segment of a route that [`parse`] accepts.
    Wildcard,
}

/// Why a route cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RouteError {
    /// A wildcard with a name (`*rest`, holding that section); routefinder refuses the route.
    NamedWildcard(String),
    /// A lone `:`; routefinder refuses the route.
    UnnamedParam,
    /// routefinder accepts the route but panics when a match reaches this part of it, so Spin
    /// would fail every request that gets that far. Holds the rule the route breaks.
    Unmatchable(&'static str),
}

impl fmt::Display for RouteError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NamedWildcard(section) => write!(
                formatter,
                "there can only be one wildcard, so it takes no name: replace `{section}` with `*` or `...`"
            ),
            Self::UnnamedParam => formatter.write_str("a `:` parameter must have a name"),
            Self::Unmatchable(reason) => formatter.write_str(reason),
        }
    }
}

impl std::error::Error for RouteError {}

/// The route Spin matches against: `raw_route` made absolute, with one trailing `/` removed
/// (`sanitize_with_base("/", route)` in Spin's `routes.rs`).
///
/// This is also the `spin-matched-route` header value, so `/` becomes the empty string, as in
/// Spin. Pass the result to [`parse`].
pub fn based_route(raw_route: &str) -> String {
    let absolute = if raw_route.starts_with('/') {
        raw_route.to_owned()
    } else {
        format!("/{raw_route}")
    };
    match absolute.strip_suffix('/') {
        Some(stripped) => stripped.to_owned(),
        None => absolute,
    }
}

/// Parses a based route (see [`based_route`]) into segments.
///
/// Spin's `Router::parse_route` turns a trailing `/...` into routefinder's `/*`; the rest is
/// routefinder's `RouteSpec::from_str`. Leading, trailing and repeated slashes are ignored.
/// Fails when routefinder would refuse the route, or when matching it would panic.
pub fn parse(based_route: &str) -> Result<Vec<Segment>, RouteError> {
    let spec_text = match based_route.strip_suffix("/...") {
        Some(prefix) => format!("{prefix}/*"),
        None => based_route.to_owned(),
    };
    let segments = parse_spec(&spec_text)?;
    check_matchable(&segments)?;
    Ok(segments)
}

/// routefinder's `RouteSpec::from_str`.
fn parse_spec(source: &str) -> Result<Vec<Segment>, RouteError> {
    let trimmed = source.trim_start_matches('/').trim_end_matches('/');
    let boundaries = trimmed
        .match_indices(['.', '/'])
        .map(|(index, _)| index)
        .chain(std::iter::once(trimmed.len()));
    let mut segments: Vec<Segment> = Vec::new();
    let mut section_start = 0;
    for boundary in boundaries {
        // routefinder: the separator before a section is looked up with `chars().nth(byte
        // index)`, which only finds it when everything before it is ASCII. Kept, so non-ASCII
        // routes parse as they do in Spin.
        let separator = match section_start {
            0 => None,
            start => trimmed.chars().nth(start - 1),
        };
        let section = trimmed.get(section_start..boundary).unwrap_or_default();
        section_start = boundary + 1;

        let segment = if section == "*" {
            Some(Segment::Wildcard)
        } else if section.starts_with('*') {
            return Err(RouteError::NamedWildcard(section.to_owned()));
        } else if section == ":" {
            return Err(RouteError::UnnamedParam);
        } else if let Some(name) = section.strip_prefix(':') {
            Some(Segment::Param(name.into()))
        } else if section.is_empty() {
            None
        } else {
            Some(Segment::Exact(section.into()))
        };

        // routefinder: a `.` joins the preceding literal (`/a.b` is `Exact("a.")`,
        // `Exact("b")`) and is only a segment of its own after a parameter or at the start.
        if separator == Some('.') {
            match segments.last_mut() {
                Some(Segment::Exact(text)) => *text = format!("{text}.").into(),
                _ => segments.push(Segment::Dot),
            }
        }
        if let Some(segment) = segment {
            if separator == Some('/') {
                segments.push(Segment::Slash);
            }
            segments.push(segment);
        }
    }
    Ok(segments)
}

/// Refuses the segment sequences that make routefinder's matcher panic.
fn check_matchable(segments: &[Segment]) -> Result<(), RouteError> {
    for (index, segment) in segments.iter().enumerate() {
        let next = segments.get(index + 1);
        match (segment, next) {
            (Segment::Wildcard, Some(_)) => {
                return Err(RouteError::Unmatchable(
                    "a wildcard (`*` or `/...`) must be the last part of a route",
                ));
            }
            (
                Segment::Param(_),
                Some(Segment::Exact(_) | Segment::Param(_) | Segment::Wildcard),
            ) => {
                return Err(RouteError::Unmatchable(
                    "a `:` parameter must be followed by `/`, `.` or the end of the route",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether two parsed routes match exactly the same paths, so that only one of them could ever
/// be chosen: the same segments, parameter names aside (`/a/:x` and `/a/:y`, `/foo` and
/// `/foo/`, `/...` and `/*`).
///
/// Spin logs such duplicates and lets one of them win; the loader and the router refuse them.
pub fn same_shape(left: &[Segment], right: &[Segment]) -> bool {
    left.len() == right.len()
        && left.iter().zip(right).all(|pair| match pair {
            (Segment::Param(_), Segment::Param(_)) => true,
            (mine, theirs) => mine == theirs,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trigger_paths_split_into_names_and_the_mount() {
        assert_eq!(
            split_trigger_path("/p/f"),
            Some(("p", "f", DEFAULT_ALIAS, 4))
        );
        assert_eq!(
            split_trigger_path("/p/f/"),
            Some(("p", "f", DEFAULT_ALIAS, 4))
        );
        assert_eq!(
            split_trigger_path("/p/f/a/b"),
            Some(("p", "f", DEFAULT_ALIAS, 4))
        );
        assert_eq!(
            split_trigger_path("/p/f@canary/a"),
            Some(("p", "f", "canary", 11))
        );
        assert_eq!(split_trigger_path("/p"), None);
        assert_eq!(split_trigger_path("p/f"), None);
    }

    fn exact(text: &str) -> Segment {
        Segment::Exact(text.into())
    }

    fn param(name: &str) -> Segment {
        Segment::Param(name.into())
    }

    #[test]
    fn parses_like_routefinder() {
        use Segment::{Dot, Slash, Wildcard};
        let cases: Vec<(&str, Vec<Segment>)> = vec![
            ("", vec![]),
            ("/...", vec![Wildcard]),
            ("/*", vec![Wildcard]),
            ("/foo", vec![exact("foo")]),
            ("/foo/bar", vec![exact("foo"), Slash, exact("bar")]),
            ("/foo/...", vec![exact("foo"), Slash, Wildcard]),
            ("/users/:id", vec![exact("users"), Slash, param("id")]),
            (
                "/:a/:b/...",
                vec![param("a"), Slash, param("b"), Slash, Wildcard],
            ),
            ("/a.b", vec![exact("a."), exact("b")]),
            ("/:name.json", vec![param("name"), Dot, exact("json")]),
            (
                "/.well-known/x",
                vec![Dot, exact("well-known"), Slash, exact("x")],
            ),
            ("/a//b", vec![exact("a"), Slash, exact("b")]),
            ("/foo...", vec![exact("foo...")]),
            ("/a*", vec![exact("a*")]),
            ("/a.*", vec![exact("a."), Wildcard]),
            ("/:a..b", vec![param("a"), Dot, Dot, exact("b")]),
            // routefinder's `chars().nth(byte index)`: the `/` after `é` is not seen.
            ("/é/foo", vec![exact("é"), exact("foo")]),
        ];
        for (route, expected) in cases {
            assert_eq!(parse(route), Ok(expected), "{route}");
        }
    }

    #[test]
    fn parses_raw_routes_through_based_route() {
        use Segment::{Dot, Slash, Wildcard};
        let parse_raw = |raw: &str| parse(&based_route(raw));
        assert_eq!(parse_raw("/"), Ok(vec![]));
        assert_eq!(parse_raw("/..."), Ok(vec![Wildcard]));
        assert_eq!(
            parse_raw("users/:id/"),
            Ok(vec![exact("users"), Slash, param("id")])
        );
        assert_eq!(
            parse_raw("/:name.json"),
            Ok(vec![param("name"), Dot, exact("json")])
        );
    }

    #[test]
    fn rejects_what_routefinder_rejects_or_panics_on() {
        assert_eq!(
            parse("/*rest"),
            Err(RouteError::NamedWildcard("*rest".to_owned()))
        );
        assert_eq!(parse("/:"), Err(RouteError::UnnamedParam));
        assert_eq!(parse("/a/:"), Err(RouteError::UnnamedParam));
        assert!(matches!(parse("/*/a"), Err(RouteError::Unmatchable(_))));
        assert!(parse("/.../a").is_ok(), "`...` mid-route is literal text");
        assert!(matches!(parse("/*.json"), Err(RouteError::Unmatchable(_))));
        assert!(matches!(parse("/:é/x"), Err(RouteError::Unmatchable(_))));
    }

    #[test]
    fn errors_explain_the_fix() {
        assert_eq!(
            RouteError::NamedWildcard("*rest".to_owned()).to_string(),
            "there can only be one wildcard, so it takes no name: replace `*rest` with `*` or `...`"
        );
        assert_eq!(
            RouteError::UnnamedParam.to_string(),
            "a `:` parameter must have a name"
        );
    }

    #[test]
    fn based_route_is_absolute_without_one_trailing_slash() {
        assert_eq!(based_route("/"), "");
        assert_eq!(based_route(""), "");
        assert_eq!(based_route("foo"), "/foo");
        assert_eq!(based_route("/foo/"), "/foo");
        assert_eq!(based_route("/foo//"), "/foo/");
        assert_eq!(based_route("/foo/.../"), "/foo/...");
    }

    #[test]
    fn same_shape_ignores_parameter_names_only() {
        let route = |text: &str| parse(&based_route(text)).unwrap();
        assert!(same_shape(&route("/a/:x"), &route("/a/:y")));
        assert!(same_shape(&route("/foo"), &route("foo/")));
        assert!(same_shape(&route("/foo"), &route("/foo/")));
        assert!(same_shape(&route("/..."), &route("/*")));
        assert!(!same_shape(&route("/"), &route("/...")));
        assert!(!same_shape(&route("/a"), &route("/b")));
        assert!(!same_shape(&route("/a/..."), &route("/a")));
    }
}
