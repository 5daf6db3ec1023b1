//! The destination an outbound address string names (Redis, MQTT…), read the way Spin's
//! `OutboundUrl::parse` reads it (`crates/factor-outbound-networking/src/config.rs`), so that a
//! guest's address is allowed or denied exactly as Spin would decide.
//!
//! The client library then parses the same address on its own. Callers compare where the
//! client will connect with [`OutboundAddress::is_target`] and refuse any difference, so a
//! connection only ever goes to the host and port that were checked.

use super::allowed_hosts::{AllowedHosts, Destination, default_port};

/// An outbound address as the allow-list sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundAddress {
    scheme: String,
    host: String,
    port: u16,
}

impl OutboundAddress {
    /// Parses `address` as a URL; when that fails or the URL has no host, parses
    /// `{default_scheme}://{address}` instead, as Spin does. The user information is
    /// percent-encoded first, so a password with `#` or `/` cannot hide the host.
    ///
    /// `None` when the address names no host, or no port and its scheme has no default:
    /// Spin denies such an address.
    pub fn parse(address: &str, default_scheme: &str) -> Option<Self> {
        let address = encode_user_info(address.trim());
        let parsed = match url::Url::parse(&address) {
            Ok(url) if url.has_host() => url,
            _ => url::Url::parse(&format!("{default_scheme}://{address}")).ok()?,
        };
        let scheme = parsed.scheme().to_owned();
        let host = normalize_host(parsed.host_str()?);
        if host.is_empty() {
            return None;
        }
        let port = parsed.port().or_else(|| default_port(&scheme))?;
        Some(Self { scheme, host, port })
    }

    /// Whether `allowed` lets a component reach this address.
    pub fn is_allowed_by(&self, allowed: &AllowedHosts) -> bool {
        let allowed_here = allowed.allows(&Destination {
            scheme: &self.scheme,
            host: &self.host,
            port: self.port,
        });
        if !allowed_here {
            tracing::info!(
                scheme = %self.scheme,
                host = %self.host,
                port = self.port,
                "outbound connection denied by allowed_outbound_hosts"
            );
        }
        allowed_here
    }

    /// Whether a client about to connect to `host:port` goes where this address points.
    pub fn is_target(&self, host: &str, port: u16) -> bool {
        self.port == port && self.host == normalize_host(host)
    }

    /// `host:port`, as a URL writes them (an IPv6 host in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The URL scheme, lowercase.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }
}

/// Lowercase, without the brackets of an IPv6 literal: the form [`Destination`] expects.
fn normalize_host(host: &str) -> String {
    host.strip_prefix('[')
        .and_then(|inner| inner.strip_suffix(']'))
        .unwrap_or(host)
        .to_ascii_lowercase()
}

/// Percent-encodes the `user:password` part of `address`, if it has one before the path.
fn encode_user_info(address: &str) -> String {
    let Some(at) = address.find('@') else {
        return address.to_owned();
    };
    let authority_start = address.find("://").map_or(0, |index| index + 3);
    let path_start = address[authority_start..]
        .find('/')
        .map_or(usize::MAX, |index| index + authority_start);
    if at < authority_start || at >= path_start {
        return address.to_owned();
    }
    let user_info = &address[authority_start..at];
    let mut encoded = String::with_capacity(address.len() + 2 * user_info.len());
    encoded.push_str(&address[..authority_start]);
    for byte in user_info.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded.push_str(&address[at..]);
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(address: &str, default_scheme: &str) -> Option<(String, String, u16)> {
        OutboundAddress::parse(address, default_scheme)
            .map(|address| (address.scheme, address.host, address.port))
    }

    fn triple(scheme: &str, host: &str, port: u16) -> Option<(String, String, u16)> {
        Some((scheme.to_owned(), host.to_owned(), port))
    }

    #[test]
    fn reads_scheme_host_and_port_like_spin() {
        let cases = [
            (
                "redis://127.0.0.1:6379",
                "redis",
                triple("redis", "127.0.0.1", 6379),
            ),
            (
                "redis://cache.internal",
                "redis",
                triple("redis", "cache.internal", 6379),
            ),
            (
                "redis://Cache.Internal:7000/2",
                "redis",
                triple("redis", "cache.internal", 7000),
            ),
            (
                "rediss://[::1]:6380",
                "redis",
                triple("rediss", "::1", 6380),
            ),
            (
                "127.0.0.1:6379",
                "redis",
                triple("redis", "127.0.0.1", 6379),
            ),
            (
                "localhost:6379",
                "redis",
                triple("redis", "localhost", 6379),
            ),
            (
                "mqtt://127.0.0.1:1883?client_id=probe",
                "mqtt",
                triple("mqtt", "127.0.0.1", 1883),
            ),
            (
                "mqtt://broker?client_id=probe",
                "mqtt",
                triple("mqtt", "broker", 1883),
            ),
            ("tcp://broker?client_id=probe", "mqtt", None),
            (
                "tcp://broker:1883?client_id=probe",
                "mqtt",
                triple("tcp", "broker", 1883),
            ),
            // Not a URL with a host: Spin retries with the scheme prepended, which makes the
            // scheme the host. The client parses these differently, so they never connect.
            ("redis://", "redis", triple("redis", "redis", 6379)),
            ("", "redis", None),
        ];
        for (address, default_scheme, expected) in cases {
            assert_eq!(parsed(address, default_scheme), expected, "{address}");
        }
    }

    #[test]
    fn user_info_cannot_hide_the_host() {
        assert_eq!(
            parsed("redis://user:pa#ss@10.0.0.1:6379", "redis"),
            triple("redis", "10.0.0.1", 6379)
        );
        // A `/` in the password ends the authority for Spin too, and what is left is not a
        // URL with a host.
        assert_eq!(
            parsed("redis://:se/cret@10.0.0.1", "redis"),
            triple("redis", "redis", 6379)
        );
        assert_eq!(
            parsed("redis://10.0.0.1:6379/0?name=a@b", "redis"),
            triple("redis", "10.0.0.1", 6379)
        );
    }

    #[test]
    fn checks_against_the_allow_list_and_the_client_target() {
        let allowed = AllowedHosts::parse(&["redis://127.0.0.1:6379".to_owned()]).unwrap();
        let address = OutboundAddress::parse("redis://127.0.0.1:6379/0", "redis").unwrap();
        assert!(address.is_allowed_by(&allowed));
        assert!(address.is_target("127.0.0.1", 6379));
        assert!(!address.is_target("127.0.0.1", 6380));
        assert!(!address.is_target("/tmp/redis.sock", 6379));
        let other_port = OutboundAddress::parse("redis://127.0.0.1:6380", "redis").unwrap();
        assert!(!other_port.is_allowed_by(&allowed));
        let v6 = OutboundAddress::parse("redis://[::1]:6379", "redis").unwrap();
        assert!(v6.is_target("::1", 6379));
        assert!(v6.is_target("[::1]", 6379));
    }
}
