//! Route precedence and matching, exactly as Spin's HTTP trigger does them.
//!
//! Spin (`spin-http`, `crates/http/src/routes.rs`) hands each route to the `routefinder` crate
//! (0.5): a route is split at `/` and `.` into [`Segment`]s (parsed by [`nexus_proto::route`],
//! which the manifest loader shares), routes are kept in a `BTreeMap` ordered by `RouteSpec`'s
//! `Ord`, and a path is tried against each route in that order, the first match winning. This
//! module reimplements those rules without the dependency so that matching allocates nothing;
//! every quirk kept on purpose is marked "routefinder:". The differential test in
//! `tests/spin_differential.rs` checks the router against routefinder itself.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use nexus_proto::route::Segment;

/// routefinder's `Segment::cmp`, the order of preference of two segments at the same position:
/// exact beats parameter beats wildcard beats separator.
///
/// routefinder: a `Dot` compares as greater than a literal, parameter or wildcard in both
/// directions. Kept: it only matters for routes starting with `.` or with a `.` after a
/// parameter, and [`precedence_order`] reproduces what the `BTreeMap` makes of it.
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

/// The precedence order of routes given in manifest order, as indices into them: the first
/// route that matches a path wins.
///
/// routefinder keeps its routes in a `BTreeMap` keyed by `RouteSpec`, whose `Ord` is not a
/// total order ([`compare_routes`] never says `Equal`, and `Dot` is inconsistent), so the order
/// depends on the tree's shape, not only on the routes. Inserting them the same way, in the
/// same order, into the same `BTreeMap` is what reproduces it; simulating a sorted list does
/// not once the routes outgrow one tree node (11 routes).
pub(crate) fn precedence_order<'a>(
    manifest_order: impl IntoIterator<Item = &'a [Segment]>,
) -> Vec<usize> {
    let mut tree = BTreeMap::new();
    for (index, segments) in manifest_order.into_iter().enumerate() {
        tree.insert(RouteSpecKey(segments), index);
    }
    tree.into_values().collect()
}

/// A route as a `BTreeMap` key, compared as routefinder compares `RouteSpec`s.
struct RouteSpecKey<'a>(&'a [Segment]);

impl Ord for RouteSpecKey<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        compare_routes(self.0, other.0)
    }
}

impl PartialOrd for RouteSpecKey<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

// As in routefinder, where `RouteSpec` derives `PartialEq` but `Ord` never says `Equal`: two
// keys are never the same for the map, so every route is kept.
impl PartialEq for RouteSpecKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for RouteSpecKey<'_> {}

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
                    // `route::parse` guarantees a `Slash` or the end follows.
                    let end = rest.find('/').unwrap_or(rest.len());
                    let (value, after) = rest.split_at(end);
                    captures.param(value);
                    rest = after;
                }
            }
            Segment::Wildcard => {
                // `route::parse` guarantees this is the last segment.
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
