//! The seeded generator of route sets and request paths.

/// xorshift64*: deterministic, tiny and good enough to pick test cases.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(super) fn below(&mut self, bound: usize) -> usize {
        // The modulo bias is irrelevant for choosing test cases.
        (self.next_u64() >> 33) as usize % bound
    }

    fn percent(&mut self, chance: usize) -> bool {
        self.below(100) < chance
    }

    fn pick<'a>(&mut self, choices: &[&'a str]) -> &'a str {
        choices[self.below(choices.len())]
    }
}

/// Route sections, including the ones routefinder treats specially.
const ROUTE_LITERALS: &[&str] = &[
    "a", "b", "ab", "users", "v1", "json", "x.y", "a.", "a%20b", "é", "a*", "...x", "..",
];
const ROUTE_PARAMS: &[&str] = &[":id", ":x", ":name.json", ":a.:b", ":a..b", ":é", ":id.x.y"];
const ROUTE_ODDITIES: &[&str] = &[":", "*rest", "*", "...", "", ".well-known", ".x", "*.json"];

pub(super) fn random_route(rng: &mut Rng) -> String {
    let mut raw_route = String::new();
    if rng.percent(90) {
        raw_route.push('/');
    }
    let section_count = rng.below(4);
    for index in 0..section_count {
        if index > 0 {
            raw_route.push_str(if rng.percent(5) { "//" } else { "/" });
        }
        let roll = rng.below(100);
        let section = if roll < 50 {
            rng.pick(ROUTE_LITERALS)
        } else if roll < 80 {
            rng.pick(ROUTE_PARAMS)
        } else {
            rng.pick(ROUTE_ODDITIES)
        };
        raw_route.push_str(section);
    }
    let roll = rng.below(100);
    if roll < 30 {
        raw_route.push_str(if raw_route.ends_with('/') {
            "..."
        } else {
            "/..."
        });
    } else if roll < 40 {
        raw_route.push('/');
    }
    raw_route
}

/// Path sections: what the routes above expect, and what trips them up.
const PATH_WORDS: &[&str] = &[
    "a",
    "b",
    "ab",
    "users",
    "v1",
    "json",
    "x",
    "y",
    "a%20b",
    "é",
    "",
    ".",
    "..",
    "a.b",
    "x.y",
    "well-known",
    "42",
];

pub(super) fn random_path(rng: &mut Rng, routes: &[(String, String)]) -> String {
    let mut path = if !routes.is_empty() && rng.percent(60) {
        let (_, raw_route) = &routes[rng.below(routes.len())];
        path_for(rng, raw_route)
    } else {
        let mut path = String::from("/");
        for index in 0..rng.below(5) {
            if index > 0 {
                path.push_str(if rng.percent(20) { "." } else { "/" });
            }
            path.push_str(rng.pick(PATH_WORDS));
        }
        path
    };
    if rng.percent(15) {
        path.push('/');
    }
    if rng.percent(5) {
        path.insert(0, '/');
    }
    path
}

/// A path that the route probably matches: each `:name` replaced by a value, and a trailing
/// wildcard by zero or more sections.
fn path_for(rng: &mut Rng, raw_route: &str) -> String {
    let (body, wildcard) = match raw_route.strip_suffix("...") {
        Some(prefix) if prefix.is_empty() || prefix.ends_with('/') => (prefix, true),
        _ => (raw_route, false),
    };
    let mut path = String::from("/");
    let mut in_name = false;
    for character in body.chars() {
        match character {
            ':' => {
                path.push_str(rng.pick(&["p", "42", "x", "a%2Fb", "é", "a.b"]));
                in_name = true;
            }
            '/' | '.' => {
                in_name = false;
                path.push(character);
            }
            '*' => path.push_str(rng.pick(&["", "a", "a/b"])),
            _ if in_name => {}
            _ => path.push(character),
        }
    }
    if wildcard {
        for _ in 0..rng.below(3) {
            path.push_str(rng.pick(PATH_WORDS));
            path.push('/');
        }
    }
    path
}
