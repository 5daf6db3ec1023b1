//! Route patterns, checked at load time with the rules of the edge node's router.
//!
//! This is a copy of the parsing half of `nexus-edge`'s `src/routing/pattern.rs` (which mirrors
//! Spin's `spin-http` `crates/http/src/routes.rs` and the `routefinder` crate it uses), so that
//! a route the router would refuse is refused here, with the manifest's names in the error. The
//! two crates share no dependency to put it in; keep the copies identical.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_like_the_router() {
        use Segment::{Dot, Slash, Wildcard};
        let exact = |text: &str| Segment::Exact(text.into());
        let param = |name: &str| Segment::Param(name.into());
        assert_eq!(parse(&based_route("/")), Ok(vec![]));
        assert_eq!(parse(&based_route("/...")), Ok(vec![Wildcard]));
        assert_eq!(
            parse(&based_route("users/:id/")),
            Ok(vec![exact("users"), Slash, param("id")])
        );
        assert_eq!(
            parse(&based_route("/:name.json")),
            Ok(vec![param("name"), Dot, exact("json")])
        );
        assert_eq!(
            parse("/*rest"),
            Err(PatternError::NamedWildcard("*rest".to_owned()))
        );
        assert_eq!(parse("/:"), Err(PatternError::UnnamedParam));
        assert!(matches!(parse("/*/x"), Err(PatternError::Unmatchable(_))));
    }

    #[test]
    fn same_shape_means_same_paths() {
        let route = |text: &str| parse(&based_route(text)).unwrap();
        assert!(same_shape(&route("/a/:x"), &route("/a/:y")));
        assert!(same_shape(&route("/foo"), &route("/foo/")));
        assert!(!same_shape(&route("/"), &route("/...")));
    }
}
