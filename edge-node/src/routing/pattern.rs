//! Route patterns: parsing, precedence and matching, exactly as Spin's HTTP trigger does them.
//!
//! Spin (`spin-http`, `crates/http/src/routes.rs`) hands each route to the `routefinder` crate
//! (0.5): a route is split at `/` and `.` into [`Segment`]s, routes are kept in a `BTreeMap`
//! ordered by `RouteSpec`'s `Ord`, and a path is tried against each route in that order, the
//! first match winning. This module reimplements those rules without the dependency so that
//! matching allocates nothing; every quirk kept on purpose is marked "routefinder:".
//!
//! The manifest loader (`nexus-manifest`, `src/route.rs`) carries a copy of [`parse`] to reject
//! bad routes at load time; keep the two in step.

use std::cmp::Ordering;

/// One piece of a parsed route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    /// A `/` between two other segments; matches one `/`.
    Slash,
    /// A `.` after a parameter or at the start; matches one `.`.
    Dot,
    /// Literal text; matches itself (a prefix test, as routefinder does).
    Exact(Box<str>),
    /// `:name`; matches up to the next `/` (or `.` when a dot follows in the route).
    Param(Box<str>),
    /// `*`, which Spin writes `/...`; matches the rest of the path, possibly nothing.
    Wildcard,
}

/// Why a route cannot be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatternError {
    /// routefinder: `*name` is rejected when the route is added.
    NamedWildcard(String),
    /// routefinder: a lone `:` is rejected when the route is added.
    UnnamedParam,
    /// routefinder accepts the route but panics when it reaches this segment during matching,
    /// so Spin would fail every request that gets that far; we refuse the route instead.
    Unmatchable(&'static str),
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NamedWildcard(section) => write!(
                f,
                "there can only be one wildcard, so it takes no name: replace `{section}` with `*` or `...`"
            ),
            Self::UnnamedParam => f.write_str("a `:` parameter must have a name"),
            Self::Unmatchable(reason) => f.write_str(reason),
        }
    }
}

/// The route Spin matches against: the pattern made absolute with one trailing `/` removed
/// (`sanitize_with_base("/", route)` in `routes.rs`). This is also the `spin-matched-route`
/// header value, so `/` becomes the empty string, as in Spin.
pub(crate) fn based_route(raw_route: &str) -> String {
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
/// routefinder's `RouteSpec::from_str`.
pub(crate) fn parse(based_route: &str) -> Result<Vec<Segment>, PatternError> {
    let spec_text = match based_route.strip_suffix("/...") {
        Some(prefix) => format!("{prefix}/*"),
        None => based_route.to_owned(),
    };
    let segments = parse_spec(&spec_text)?;
    check_matchable(&segments)?;
    Ok(segments)
}

/// routefinder's `RouteSpec::from_str`.
fn parse_spec(source: &str) -> Result<Vec<Segment>, PatternError> {
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
            return Err(PatternError::NamedWildcard(section.to_owned()));
        } else if section == ":" {
            return Err(PatternError::UnnamedParam);
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
fn check_matchable(segments: &[Segment]) -> Result<(), PatternError> {
    for (index, segment) in segments.iter().enumerate() {
        let next = segments.get(index + 1);
        match (segment, next) {
            (Segment::Wildcard, Some(_)) => {
                return Err(PatternError::Unmatchable(
                    "a wildcard (`*` or `/...`) must be the last part of a route",
                ));
            }
            (
                Segment::Param(_),
                Some(Segment::Exact(_) | Segment::Param(_) | Segment::Wildcard),
            ) => {
                return Err(PatternError::Unmatchable(
                    "a `:` parameter must be followed by `/`, `.` or the end of the route",
                ));
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether two routes match exactly the same paths, so only the first could ever be chosen:
/// the same segments, parameter names aside.
pub(crate) fn same_shape(left: &[Segment], right: &[Segment]) -> bool {
    left.len() == right.len()
        && left.iter().zip(right).all(|pair| match pair {
            (Segment::Param(_), Segment::Param(_)) => true,
            (mine, theirs) => mine == theirs,
        })
}

/// routefinder's `Segment::cmp`, the order of preference of two segments at the same position:
/// exact beats parameter beats wildcard beats separator.
///
/// routefinder: a `Dot` compares as greater than a literal, parameter or wildcard in both
/// directions. Kept: it only matters for routes starting with `.` or with a `.` after a
/// parameter, and [`insertion_position`] reproduces what the `BTreeMap` makes of it.
fn compare_segments(mine: &Segment, theirs: &Segment) -> Ordering {
    use Segment::{Dot, Exact, Param, Slash, Wildcard};
    match (mine, theirs) {
        (Exact(_), Exact(_))
        | (Slash | Dot, Slash | Dot)
        | (Param(_), Param(_))
        | (Wildcard, Wildcard) => Ordering::Equal,
        (Dot, _) | (Exact(_), _) => Ordering::Greater,
        (Param(_), Exact(_)) => Ordering::Less,
        (Param(_), _) => Ordering::Greater,
        (Wildcard, Exact(_) | Param(_)) => Ordering::Less,
        (Wildcard, _) => Ordering::Greater,
        (Slash, _) => Ordering::Less,
    }
}

/// routefinder's `RouteSpec::cmp`: `Less` sorts first, so is tried first. The first differing
/// segment decides, then fewer dots, then more segments; two routes that tie compare as
/// `Greater`, so a route added later sorts after the ones it ties with.
fn compare_routes(mine: &[Segment], theirs: &[Segment]) -> Ordering {
    let dots = |segments: &[Segment]| segments.iter().filter(|s| **s == Segment::Dot).count();
    mine.iter()
        .zip(theirs)
        .map(|(m, t)| compare_segments(m, t))
        .chain(std::iter::once_with(|| dots(mine).cmp(&dots(theirs))))
        .chain(std::iter::once_with(|| theirs.len().cmp(&mine.len())))
        .find(|ordering| *ordering != Ordering::Equal)
        .unwrap_or(Ordering::Less)
        .reverse()
}

/// Where a route added to routes already in precedence order goes: before the first route it
/// compares `Less` to. This is the search `BTreeMap::insert` does in a node, so it reproduces
/// routefinder's order exactly whenever the order is consistent, and for up to 11 routes (one
/// `BTreeMap` leaf) even when `Dot` makes it inconsistent.
pub(crate) fn insertion_position<'a>(
    new_route: &[Segment],
    existing: impl IntoIterator<Item = &'a [Segment]>,
) -> usize {
    let mut count = 0;
    for (index, route) in existing.into_iter().enumerate() {
        if compare_routes(new_route, route) == Ordering::Less {
            return index;
        }
        count = index + 1;
    }
    count
}

/// Receives what a successful match captures, in route order.
pub(crate) trait Captures<'path> {
    /// Records the value of the next `:` parameter.
    fn param(&mut self, value: &'path str);
    /// Records what the trailing wildcard matched.
    fn wildcard(&mut self, value: &'path str);
}

/// A [`Captures`] that keeps nothing, for the first pass over the routes.
pub(crate) struct Discard;

impl Captures<'_> for Discard {
    fn param(&mut self, _value: &str) {}
    fn wildcard(&mut self, _value: &str) {}
}

/// routefinder's `RouteSpec::matches`: whether `path` matches `segments`, reporting captures.
///
/// `path` is the raw request path, percent-encoding included and query excluded. Leading and
/// trailing slashes are ignored, so `/foo/` matches `/foo`.
pub(crate) fn matches<'path>(
    segments: &[Segment],
    path: &'path str,
    captures: &mut impl Captures<'path>,
) -> bool {
    let mut rest = path.trim_start_matches('/').trim_end_matches('/');
    for (index, segment) in segments.iter().enumerate() {
        let next = segments.get(index + 1);
        match segment {
            Segment::Exact(text) => match rest.strip_prefix(&**text) {
                Some(after) => rest = after,
                None => return false,
            },
            Segment::Param(_) => {
                if rest.is_empty() {
                    return false;
                }
                if next == Some(&Segment::Dot) {
                    let Some(end) = rest.find(['.', '/']) else {
                        return false;
                    };
                    // routefinder: checks the separator with `chars().nth(byte index)`.
                    if rest.chars().nth(end) != Some('.') {
                        return false;
                    }
                    let (value, after) = rest.split_at(end);
                    captures.param(value);
                    rest = after;
                } else {
                    // `check_matchable` guarantees a `Slash` or the end follows.
                    let end = rest.find('/').unwrap_or(rest.len());
                    let (value, after) = rest.split_at(end);
                    captures.param(value);
                    rest = after;
                }
            }
            Segment::Wildcard => {
                // `check_matchable` guarantees this is the last segment.
                captures.wildcard(rest);
                rest = "";
            }
            Segment::Slash => match (rest.strip_prefix('/'), next) {
                (Some(after), Some(_)) => rest = after,
                // routefinder: `/foo/*` matches `/foo`, the wildcard matching nothing.
                (None, None | Some(Segment::Wildcard)) if rest.is_empty() => {}
                _ => return false,
            },
            Segment::Dot => match rest.strip_prefix('.') {
                Some(after) => rest = after,
                None => return false,
            },
        }
    }
    rest.is_empty() || rest == "/"
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn rejects_what_routefinder_rejects_or_panics_on() {
        assert_eq!(
            parse("/*rest"),
            Err(PatternError::NamedWildcard("*rest".to_owned()))
        );
        assert_eq!(parse("/a/:"), Err(PatternError::UnnamedParam));
        assert!(matches!(parse("/*/a"), Err(PatternError::Unmatchable(_))));
        assert!(parse("/.../a").is_ok(), "`...` mid-route is literal text");
        assert!(matches!(
            parse("/*.json"),
            Err(PatternError::Unmatchable(_))
        ));
        assert!(matches!(parse("/:é/x"), Err(PatternError::Unmatchable(_))));
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
        assert!(same_shape(&route("/..."), &route("/*")));
        assert!(!same_shape(&route("/"), &route("/...")));
        assert!(!same_shape(&route("/a"), &route("/b")));
        assert!(!same_shape(&route("/a/..."), &route("/a")));
    }
}
