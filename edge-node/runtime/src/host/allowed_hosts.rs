//! `allowed_outbound_hosts`: which destinations a component may reach. Deny by default.
//!
//! The grammar and the matching are Spin's (`spin-factor-outbound-networking`, `config.rs`):
//! each entry is `scheme://host[:port]`.
//! - scheme: `*` or letters (`http`, `https`, `redis`, `postgres`, `mysql`, `mqtt`, `tcp`,
//!   `udp`, …);
//! - host: `*`, `*.example.com` (any subdomain), `self` (the app itself, for relative URLs),
//!   an IP network in CIDR form (`10.0.0.0/8`), or a name or IP address matched exactly
//!   (`[::1]` for IPv6);
//! - port: a number, `*`, or a range `low..high` (high excluded); omitted, the scheme's
//!   well-known port (see [`default_port`]), and an error for schemes without one.
//!
//! Entries may hold `{{ variable }}` templates; [`AllowedHosts::resolve`] renders them with the
//! app's variables before parsing, as Spin does when it prepares an instance.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};

use ipnet::IpNet;
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
    /// `*.example.com`, stored as `.example.com`: any name ending with it.
    Subdomains(String),
    /// `self`: only relative URLs, which go to the app itself.
    ToSelf,
    /// An IP network; matches destinations that are IP addresses inside it.
    Network(IpNet),
    /// One IP address.
    Address(IpAddr),
    /// One name, lowercase.
    Name(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    Port(u16),
    /// Inclusive low, exclusive high, as Spin's `low..high`.
    Range(u16, u16),
}

/// A destination to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Destination<'a> {
    /// The URL scheme (`https`, `redis`, …; `tcp` or `udp` for sockets).
    pub scheme: &'a str,
    /// The host as written in the URL, without the brackets of an IPv6 address.
    pub host: &'a str,
    /// The port, explicit or the scheme's default.
    pub port: u16,
}

/// The transport of a `wasi:sockets` use, checked as scheme `tcp` or `udp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketProtocol {
    /// A TCP connection.
    Tcp,
    /// UDP datagrams.
    Udp,
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
        if let [only] = entries
            && only == "insecure:allow-all"
        {
            return Err((
                only.clone(),
                "'insecure:allow-all' is not allowed; use '*://*:*' to allow all outbound traffic"
                    .to_owned(),
            ));
        }
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

    /// Whether a relative URL (no host: a request to the app itself) with `scheme` is allowed:
    /// some rule for the scheme has host `self` or `*`.
    pub fn allows_relative(&self, scheme: &str) -> bool {
        self.rules.iter().any(|rule| {
            rule.scheme.matches(scheme)
                && matches!(rule.host, HostPattern::ToSelf | HostPattern::Any)
        })
    }

    /// Whether a socket may talk to `address` (checked as `tcp://ip:port` or `udp://ip:port`).
    pub fn allows_socket(&self, address: SocketAddr, protocol: SocketProtocol) -> bool {
        let scheme = match protocol {
            SocketProtocol::Tcp => "tcp",
            SocketProtocol::Udp => "udp",
        };
        let host = address.ip().to_string();
        self.allows(&Destination {
            scheme,
            host: &host,
            port: address.port(),
        })
    }

    /// Whether some rule names IP addresses (a network or an address) for this scheme and
    /// port, so that resolving a name that is not itself allowed can still lead somewhere
    /// allowed.
    pub fn has_address_rule_for(&self, scheme: &str, port: u16) -> bool {
        self.rules.iter().any(|rule| {
            matches!(rule.host, HostPattern::Network(_) | HostPattern::Address(_))
                && rule.scheme.matches(scheme)
                && rule.ports.matches(port)
        })
    }

    /// Whether nothing at all is allowed.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

impl Rule {
    fn parse(entry: &str) -> Result<Self, String> {
        let entry = entry.trim();
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| "no scheme (e.g. 'https://' or '*://')".to_owned())?;
        let (host, port) = rest.rsplit_once(':').unwrap_or((rest, ""));
        let port = match port.split_once('/') {
            Some((_, path)) if !path.is_empty() => return Err("a path is not allowed".to_owned()),
            Some((port, _)) => port,
            None => port,
        };
        Ok(Self {
            scheme: SchemePattern::parse(scheme)?,
            host: HostPattern::parse(host)?,
            ports: PortPattern::parse(port, scheme)?,
        })
    }

    fn matches(&self, destination: &Destination<'_>) -> bool {
        self.scheme.matches(destination.scheme)
            && self.ports.matches(destination.port)
            && self.host.matches(destination.host)
    }
}

impl SchemePattern {
    fn parse(scheme: &str) -> Result<Self, String> {
        if scheme == "*" {
            return Ok(Self::Any);
        }
        if scheme.starts_with('{') {
            return Err("scheme lists are not supported".to_owned());
        }
        if scheme.is_empty() || !scheme.chars().all(char::is_alphabetic) {
            return Err(format!("scheme `{scheme}` must be letters only"));
        }
        Ok(Self::Exact(scheme.to_ascii_lowercase()))
    }

    fn matches(&self, scheme: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(allowed) => allowed.eq_ignore_ascii_case(scheme),
        }
    }
}

impl HostPattern {
    fn parse(host: &str) -> Result<Self, String> {
        let host = host.trim();
        match host {
            "*" => return Ok(Self::Any),
            "self" | "self.alt" => return Ok(Self::ToSelf),
            "" => return Err("the host is empty".to_owned()),
            _ => {}
        }
        if host.starts_with('{') {
            return Err("host lists are not supported".to_owned());
        }
        if let Ok(network) = host.parse::<IpNet>() {
            return Ok(Self::Network(network));
        }
        if matches!(host.split('/').nth(1), Some(path) if !path.is_empty()) {
            return Err("a host must not contain a path".to_owned());
        }
        if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                return Err(format!(
                    "wildcards are allowed only as a `*.` prefix in `{host}`"
                ));
            }
            return Ok(Self::Subdomains(format!(
                ".{}",
                domain.to_ascii_lowercase()
            )));
        }
        if host.contains('*') {
            return Err(format!(
                "wildcards are allowed only as a `*.` prefix in `{host}`"
            ));
        }
        let host = host.trim_end_matches('/');
        let unbracketed = host
            .strip_prefix('[')
            .and_then(|inner| inner.strip_suffix(']'))
            .unwrap_or(host);
        Ok(match unbracketed.parse::<IpAddr>() {
            Ok(address) => Self::Address(address),
            Err(_) => Self::Name(host.to_ascii_lowercase()),
        })
    }

    fn matches(&self, host: &str) -> bool {
        match self {
            Self::Any => true,
            Self::ToSelf => false,
            Self::Subdomains(suffix) => host.to_ascii_lowercase().ends_with(suffix.as_str()),
            Self::Name(name) => name.eq_ignore_ascii_case(host),
            Self::Address(address) => host.parse::<IpAddr>().is_ok_and(|ip| ip == *address),
            Self::Network(network) => host.parse::<IpAddr>().is_ok_and(|ip| network.contains(&ip)),
        }
    }
}

impl PortPattern {
    fn parse(port: &str, scheme: &str) -> Result<Self, String> {
        if port.is_empty() {
            return default_port(scheme).map(Self::Port).ok_or_else(|| {
                format!("no port given and scheme `{scheme}` has no well-known port")
            });
        }
        if port == "*" {
            return Ok(Self::Any);
        }
        if port.starts_with('{') {
            return Err("port lists are not supported".to_owned());
        }
        let number = |text: &str| {
            text.parse::<u16>()
                .map_err(|_| format!("port `{text}` is not a number"))
        };
        match port.split_once("..") {
            Some((low, high)) => Ok(Self::Range(number(low)?, number(high)?)),
            None => Ok(Self::Port(number(port)?)),
        }
    }

    fn matches(&self, port: u16) -> bool {
        match self {
            Self::Any => true,
            Self::Port(allowed) => *allowed == port,
            Self::Range(low, high) => (*low..*high).contains(&port),
        }
    }
}

/// The well-known port of a URL scheme, if it has one (the schemes Spin's outbound interfaces
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

#[cfg(test)]
mod tests;
