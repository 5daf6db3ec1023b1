//! SPIFFE IDs: `spiffe://<trust-domain>/<path>`, checked as the SPIFFE ID standard says.

use std::fmt;
use std::str::FromStr;

/// The longest SPIFFE ID the standard allows.
const MAX_ID_BYTES: usize = 2048;
/// The longest trust domain name the standard allows.
const MAX_TRUST_DOMAIN_BYTES: usize = 255;

/// A SPIFFE ID, e.g. `spiffe://nexus.local/edge/edge-a`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SpiffeId {
    trust_domain: String,
    path: String,
}

/// Why a string is not a SPIFFE ID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{id}` is not a SPIFFE ID: {reason}")]
pub struct InvalidSpiffeId {
    id: String,
    reason: &'static str,
}

impl SpiffeId {
    /// The coordinator's identity in `trust_domain`.
    pub fn coordinator(trust_domain: &str) -> Result<Self, InvalidSpiffeId> {
        format!("spiffe://{trust_domain}/coordinator").parse()
    }

    /// The identity of the edge node named `node` in `trust_domain`.
    pub fn edge(trust_domain: &str, node: &str) -> Result<Self, InvalidSpiffeId> {
        format!("spiffe://{trust_domain}/edge/{node}").parse()
    }

    /// The trust domain, e.g. `nexus.local`.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The path, with its leading `/`.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The node's name, when this is an edge node's identity.
    pub fn edge_node(&self) -> Option<&str> {
        self.path
            .strip_prefix("/edge/")
            .filter(|name| !name.contains('/'))
    }
}

impl fmt::Display for SpiffeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "spiffe://{}{}", self.trust_domain, self.path)
    }
}

impl FromStr for SpiffeId {
    type Err = InvalidSpiffeId;

    fn from_str(id: &str) -> Result<Self, Self::Err> {
        let invalid = |reason| InvalidSpiffeId {
            id: id.chars().take(128).collect(),
            reason,
        };
        if id.len() > MAX_ID_BYTES {
            return Err(invalid("longer than 2048 bytes"));
        }
        let rest = id
            .strip_prefix("spiffe://")
            .ok_or_else(|| invalid("the scheme must be spiffe://"))?;
        let (trust_domain, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        check_trust_domain(trust_domain).map_err(invalid)?;
        if path.is_empty() {
            return Err(invalid("a workload's ID has a path"));
        }
        for segment in path[1..].split('/') {
            if segment.is_empty() || segment == "." || segment == ".." {
                return Err(invalid("path segments are non-empty and not . or .."));
            }
            if !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'))
            {
                return Err(invalid(
                    "path segments hold only letters, digits, `.`, `-` and `_`",
                ));
            }
        }
        Ok(Self {
            trust_domain: trust_domain.to_owned(),
            path: path.to_owned(),
        })
    }
}

/// Checks a trust domain name: lowercase letters, digits, `.`, `-` and `_`.
pub fn check_trust_domain(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_TRUST_DOMAIN_BYTES {
        return Err("the trust domain has 1 to 255 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_'))
    {
        return Err("the trust domain holds only lowercase letters, digits, `.`, `-` and `_`");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_names_roles() {
        let edge: SpiffeId = "spiffe://nexus.local/edge/edge-a".parse().unwrap();
        assert_eq!(edge.trust_domain(), "nexus.local");
        assert_eq!(edge.edge_node(), Some("edge-a"));
        assert_eq!(edge, SpiffeId::edge("nexus.local", "edge-a").unwrap());
        assert_eq!(edge.to_string(), "spiffe://nexus.local/edge/edge-a");
        let coordinator = SpiffeId::coordinator("nexus.local").unwrap();
        assert_eq!(coordinator.edge_node(), None);
        for bad in [
            "https://nexus.local/edge/a",
            "spiffe://Nexus.Local/edge/a",
            "spiffe://nexus.local",
            "spiffe://nexus.local/",
            "spiffe://nexus.local/edge//a",
            "spiffe://nexus.local/edge/../coordinator",
            "spiffe://nexus.local/edge/a?b",
            "spiffe:///edge/a",
        ] {
            assert!(bad.parse::<SpiffeId>().is_err(), "{bad}");
        }
        assert_eq!(
            "spiffe://nexus.local/edge/a/b"
                .parse::<SpiffeId>()
                .unwrap()
                .edge_node(),
            None
        );
    }
}
