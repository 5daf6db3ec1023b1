//! `allowed_outbound_hosts`: which destinations a component may reach. Deny by default.
//!
//! Each entry is `scheme://host[:port]` as Spin documents it: scheme `http`, `https` or `*`;
//! host a name, `*`, `*.suffix` or an IP address (`[v6]` bracketed); port a number, `*` or a
//! range `low..high` (exclusive end, as in Spin). Without a port the scheme's default applies
//! (80 for http, 443 for https); `*` as scheme requires a port.

use std::collections::BTreeMap;
use std::net::IpAddr;

use nexus_proto::app::ResolvedComponent;

use crate::error::LoadError;

/// A parsed `allowed_outbound_hosts` list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    scheme: SchemePattern,
    host: HostPattern,
    ports: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemePattern {
    Any,
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`: stored as `.example.com`, matches any name ending with it.
    Subdomains(String),
    Name(String),
    Ip(IpAddr),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PortPattern {
    Any,
    /// Inclusive low, exclusive high.
    Range(u16, u32),
}

/// A destination to check: what the request's URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination<'a> {
    /// `http` or `https`.
    pub scheme: &'a str,
    /// The host as written in the URL, lowercase, without brackets.
    pub host: &'a str,
    /// The port, explicit or the scheme's default.
    pub port: u16,
}

impl AllowedHosts {
    /// The component's list with its `{{ variable }}` templates rendered from the app's
    /// resolved variables, then parsed.
    pub fn resolve(
        component: &ResolvedComponent,
        app_values: &BTreeMap<String, String>,
    ) -> Result<Self, LoadError> {
        let entries = component
            .allowed_outbound_hosts
            .iter()
            .map(|template| {
                template
                    .render(|name| app_values.get(name).map(String::as_str))
                    .map_err(|reference| LoadError::UndefinedVariable {
                        component: component.id.clone(),
                        variable: "allowed_outbound_hosts".to_owned(),
                        reference,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::parse(&entries).map_err(|(entry, reason)| LoadError::InvalidOutboundHost {
            component: component.id.clone(),
            entry,
            reason,
        })
    }

    /// Parses every entry; the first malformed one is returned with the reason.
    pub fn parse(entries: &[String]) -> Result<Self, (String, String)> {
        let rules = entries
            .iter()
            .map(|entry| Rule::parse(entry).map_err(|reason| (entry.clone(), reason)))
            .collect::<Result<_, _>>()?;
        Ok(Self { rules })
    }

    /// Whether some rule allows `destination`.
    pub fn allows(&self, destination: &Destination<'_>) -> bool {
        self.rules.iter().any(|rule| rule.matches(destination))
    }

    /// Whether some IP-address rule could allow a connection with this scheme and port, so
    /// that resolving a name that is not itself allowed is worth it.
    pub fn has_address_rule_for(&self, scheme: &str, port: u16) -> bool {
        self.rules.iter().any(|rule| {
            matches!(rule.host, HostPattern::Ip(_)) && rule.matches_scheme_and_port(scheme, port)
        })
    }

    /// Whether no destination at all is allowed.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Rule {
    fn parse(entry: &str) -> Result<Self, String> {
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| "expected `scheme://host[:port]`".to_owned())?;
        let scheme = match scheme {
            "*" => SchemePattern::Any,
            s if !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'-' || b == b'.') =>
            {
                SchemePattern::Exact(s.to_ascii_lowercase())
            }
            _ => return Err(format!("invalid scheme `{scheme}`")),
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') {
            return Err("a path is not allowed".to_owned());
        }
        let (host, port) = split_host_port(rest)?;
        let host = parse_host(host)?;
        let ports = match port {
            Some(port) => parse_ports(port)?,
            None => match &scheme {
                SchemePattern::Exact(s) => match default_port(s) {
                    Some(port) => PortPattern::Range(port, u32::from(port) + 1),
                    None => return Err(format!("a port is required for scheme `{s}`")),
                },
                SchemePattern::Any => {
                    return Err("a port is required when the scheme is `*`".to_owned());
                }
            },
        };
        Ok(Self {
            scheme,
            host,
            ports,
        })
    }

    fn matches(&self, destination: &Destination<'_>) -> bool {
        self.matches_scheme_and_port(destination.scheme, destination.port)
            && self.host.matches(destination.host)
    }

    fn matches_scheme_and_port(&self, scheme: &str, port: u16) -> bool {
        let scheme_matches = match &self.scheme {
            SchemePattern::Any => true,
            SchemePattern::Exact(allowed) => allowed == scheme,
        };
        let port_matches = match self.ports {
            PortPattern::Any => true,
            PortPattern::Range(low, high) => port >= low && u32::from(port) < high,
        };
        scheme_matches && port_matches
    }
}

impl HostPattern {
    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Subdomains(suffix) => {
                host.len() > suffix.len() && host.ends_with(suffix.as_str())
            }
            Self::Name(name) => name == host,
            Self::Ip(ip) => host
                .parse::<IpAddr>()
                .is_ok_and(|candidate| candidate == *ip),
        }
    }
}

/// The default port of a URL scheme, if it has one (the schemes Spin's outbound interfaces
/// use).
pub fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" => Some(80),
        "https" => Some(443),
        "redis" | "rediss" => Some(6379),
        "postgres" | "postgresql" => Some(5432),
        "mysql" => Some(3306),
        "mqtt" => Some(1883),
        "mqtts" => Some(8883),
        _ => None,
    }
}

fn split_host_port(authority: &str) -> Result<(&str, Option<&str>), String> {
    if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "unclosed `[` in IPv6 address".to_owned())?;
        return match after {
            "" => Ok((host, None)),
            after => after
                .strip_prefix(':')
                .map(|port| (host, Some(port)))
                .ok_or_else(|| format!("unexpected `{after}` after IPv6 address")),
        };
    }
    Ok(match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    })
}

fn parse_host(host: &str) -> Result<HostPattern, String> {
    if host.is_empty() {
        return Err("the host is empty".to_owned());
    }
    if host == "*" {
        return Ok(HostPattern::Any);
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(HostPattern::Ip(ip));
    }
    let (subdomains, name) = match host.strip_prefix("*.") {
        Some(name) => (true, name),
        None => (false, host),
    };
    let valid = !name.is_empty()
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if !valid {
        return Err(format!("invalid host `{host}`"));
    }
    let name = name.to_ascii_lowercase();
    Ok(if subdomains {
        HostPattern::Subdomains(format!(".{name}"))
    } else {
        HostPattern::Name(name)
    })
}

fn parse_ports(port: &str) -> Result<PortPattern, String> {
    if port == "*" {
        return Ok(PortPattern::Any);
    }
    let number = |text: &str| {
        text.parse::<u16>()
            .map_err(|_| format!("invalid port `{text}`"))
    };
    match port.split_once("..") {
        Some((low, high)) => {
            let (low, high) = (number(low)?, number(high)?);
            if low >= high {
                return Err(format!("empty port range `{port}`"));
            }
            Ok(PortPattern::Range(low, u32::from(high)))
        }
        None => {
            let port = number(port)?;
            Ok(PortPattern::Range(port, u32::from(port) + 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>()).unwrap()
    }

    fn dest(scheme: &'static str, host: &'static str, port: u16) -> Destination<'static> {
        Destination { scheme, host, port }
    }

    #[test]
    fn denies_everything_by_default() {
        assert!(!allowed(&[]).allows(&dest("https", "example.com", 443)));
    }

    #[test]
    fn matches_scheme_host_and_port() {
        let hosts = allowed(&[
            "https://example.com",
            "http://127.0.0.1:*",
            "*://*.internal:8000..8010",
        ]);
        let cases = [
            (dest("https", "example.com", 443), true),
            (dest("http", "example.com", 80), false),
            (dest("https", "example.com", 8443), false),
            (dest("https", "sub.example.com", 443), false),
            (dest("http", "127.0.0.1", 3000), true),
            (dest("https", "127.0.0.1", 3000), false),
            (dest("http", "localhost", 3000), false),
            (dest("http", "api.internal", 8000), true),
            (dest("https", "api.internal", 8009), true),
            (dest("https", "api.internal", 8010), false),
            (dest("https", "internal", 8000), false),
        ];
        for (destination, expected) in cases {
            assert_eq!(hosts.allows(&destination), expected, "{destination:?}");
        }
    }

    #[test]
    fn wildcard_allows_all() {
        let hosts = allowed(&["*://*:*"]);
        assert!(hosts.allows(&dest("http", "anything.example", 1)));
    }

    #[test]
    fn ipv6_literals() {
        let hosts = allowed(&["http://[::1]:8080"]);
        assert!(hosts.allows(&dest("http", "::1", 8080)));
        assert!(!hosts.allows(&dest("http", "::1", 8081)));
    }

    #[test]
    fn rejects_malformed_entries() {
        for bad in [
            "example.com",
            "https://",
            "*://example.com",
            "https://exa mple.com",
            "http://a.com:99999",
            "http://a.com:9..3",
            "https://a.com/path",
        ] {
            assert!(AllowedHosts::parse(&[bad.to_owned()]).is_err(), "{bad}");
        }
    }
}
