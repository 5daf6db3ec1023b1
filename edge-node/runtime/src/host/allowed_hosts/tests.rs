//! The grammar and matching cases of Spin's `config.rs` tests, plus sockets and `self`.

use std::net::SocketAddr;

use super::*;

fn allowed(entries: &[&str]) -> AllowedHosts {
    AllowedHosts::parse(&entries.iter().map(|e| (*e).to_owned()).collect::<Vec<_>>()).unwrap()
}

fn dest(scheme: &'static str, host: &'static str, port: u16) -> Destination<'static> {
    Destination { scheme, host, port }
}

#[test]
fn denies_everything_by_default() {
    let hosts = allowed(&[]);
    assert!(!hosts.allows(&dest("https", "example.com", 443)));
    assert!(!hosts.allows_relative("http"));
}

#[test]
fn scheme_host_and_port_must_all_match() {
    let hosts = allowed(&[
        "https://example.com",
        "http://127.0.0.1:*",
        "*://*.internal:8000..8010",
        "http://spin.fermyon.dev:4444/",
        "redis://cache",
    ]);
    let cases = [
        (dest("https", "example.com", 443), true),
        (dest("https", "EXAMPLE.com", 443), true),
        (dest("http", "example.com", 80), false),
        (dest("https", "example.com", 8443), false),
        (dest("https", "sub.example.com", 443), false),
        (dest("http", "127.0.0.1", 3000), true),
        (dest("https", "127.0.0.1", 3000), false),
        (dest("http", "localhost", 3000), false),
        (dest("http", "api.internal", 8000), true),
        (dest("https", "a.b.internal", 8009), true),
        (dest("https", "api.internal", 8010), false),
        (dest("https", "internal", 8000), false),
        (dest("http", "spin.fermyon.dev", 4444), true),
        (dest("redis", "cache", 6379), true),
        (dest("redis", "cache", 6380), false),
    ];
    for (destination, expected) in cases {
        assert_eq!(hosts.allows(&destination), expected, "{destination:?}");
    }
}

#[test]
fn wildcards_networks_and_addresses() {
    let hosts = allowed(&["*://*:*"]);
    assert!(hosts.allows(&dest("postgres", "db.example", 1)));
    assert!(hosts.allows_relative("http"));

    let hosts = allowed(&[
        "*://127.0.0.0/24:80",
        "tcp://10.0.0.0/8:6000..7000",
        "http://[::1]:8001",
    ]);
    assert!(hosts.allows(&dest("http", "127.0.0.9", 80)));
    assert!(!hosts.allows(&dest("http", "127.0.1.9", 80)));
    assert!(!hosts.allows(&dest("http", "127.0.0.9", 81)));
    assert!(hosts.allows(&dest("tcp", "10.1.2.3", 6500)));
    assert!(!hosts.allows(&dest("udp", "10.1.2.3", 6500)));
    assert!(hosts.allows(&dest("http", "::1", 8001)));
    assert!(hosts.allows(&dest("http", "0:0::1", 8001)));
    assert!(hosts.has_address_rule_for("http", 80));
    assert!(!hosts.has_address_rule_for("https", 443));
}

#[test]
fn self_allows_only_relative_urls() {
    let hosts = allowed(&["http://self", "https://self.alt"]);
    assert!(hosts.allows_relative("http"));
    assert!(hosts.allows_relative("https"));
    assert!(!hosts.allows_relative("redis"));
    assert!(!hosts.allows(&dest("http", "self", 80)));
}

#[test]
fn service_chaining_hosts_are_names() {
    let hosts = allowed(&["http://*.spin.internal", "http://billing.spin.internal"]);
    assert!(hosts.allows(&dest("http", "users.spin.internal", 80)));
    assert!(!hosts.allows(&dest("https", "users.spin.internal", 443)));
}

#[test]
fn sockets_are_checked_as_tcp_and_udp_urls() {
    let hosts = allowed(&["tcp://127.0.0.1:5000..6000", "udp://10.0.0.0/8:53"]);
    let tcp = |address: &str| {
        hosts.allows_socket(address.parse::<SocketAddr>().unwrap(), SocketProtocol::Tcp)
    };
    let udp = |address: &str| {
        hosts.allows_socket(address.parse::<SocketAddr>().unwrap(), SocketProtocol::Udp)
    };
    assert!(tcp("127.0.0.1:5432"));
    assert!(!tcp("127.0.0.1:6000"));
    assert!(!udp("127.0.0.1:5432"));
    assert!(udp("10.9.8.7:53"));
    assert!(!tcp("10.9.8.7:53"));
}

#[test]
fn rejects_what_spin_rejects() {
    for bad in [
        "example.com",
        "example.com:80",
        "*://example.com",
        "ftp://example.com",
        "h2c://example.com:80",
        "https://",
        "http://a.com:99999",
        "http://a.com:x..3",
        "https://a.com/path",
        "https://a.com:443/path",
        "http://*.a.*.com",
        "http://a*.com",
        "http://{a,b}.com",
        "{http,https}://a.com",
        "http://a.com:{80,81}",
        "http://[::1]",
        "*://127.0.0.0/24",
    ] {
        assert!(
            AllowedHosts::parse(&[bad.to_owned()]).is_err(),
            "{bad} should be refused"
        );
    }
    assert!(AllowedHosts::parse(&["insecure:allow-all".to_owned()]).is_err());
}

#[test]
fn accepts_what_spin_accepts() {
    for good in [
        "http://spin.fermyon.dev/",
        "https://spin.fermyon.dev:5555",
        "http://localhost",
        "http://localhost:3001",
        "http://192.168.1.1",
        "http://[::1]:8001",
        "*://ff00::/8:80",
        "mysql://xyz.com",
        "postgres://db",
        "mqtt://broker",
        "http://self",
    ] {
        assert!(
            AllowedHosts::parse(&[good.to_owned()]).is_ok(),
            "{good} should be accepted"
        );
    }
}
