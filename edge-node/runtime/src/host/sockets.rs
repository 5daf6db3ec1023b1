//! `wasi:sockets` (TCP, UDP, name lookup), limited by `allowed_outbound_hosts`.
//!
//! A connection to `ip:port` is allowed when `tcp://ip:port` (or `udp://ip:port`) is, exactly
//! as Spin's outbound networking checks sockets. Guests are clients only: binding a specific
//! address, listening and accepting are refused; the implicit bind to an ephemeral port that
//! every connection performs is allowed. Datagrams from addresses the component may not reach
//! are dropped before the guest sees them (wasmtime checks `UdpReceive` per datagram).

use std::net::SocketAddr;
use std::sync::Arc;

use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::sockets::SocketAddrUse;

use super::allowed_hosts::{AllowedHosts, SocketProtocol};

/// Configures the socket permissions of one instance's WASI context.
pub fn configure(wasi: &mut WasiCtxBuilder, allowed: &Arc<AllowedHosts>) {
    // A component that may reach nothing has no use for a resolver either.
    let any_outbound = !allowed.is_empty();
    wasi.allow_tcp(any_outbound)
        .allow_udp(any_outbound)
        .allow_ip_name_lookup(any_outbound);
    let allowed = Arc::clone(allowed);
    wasi.socket_addr_check(move |address, usage| {
        let permitted = permits(&allowed, address, usage);
        Box::pin(async move { permitted })
    });
}

/// Whether `usage` of `address` is allowed.
pub fn permits(allowed: &AllowedHosts, address: SocketAddr, usage: SocketAddrUse) -> bool {
    match usage {
        SocketAddrUse::TcpBind | SocketAddrUse::UdpBind => is_implicit_bind(address),
        SocketAddrUse::TcpListen | SocketAddrUse::TcpAccept => false,
        SocketAddrUse::TcpConnect => allowed.allows_socket(address, SocketProtocol::Tcp),
        SocketAddrUse::UdpSend | SocketAddrUse::UdpReceive => {
            allowed.allows_socket(address, SocketProtocol::Udp)
        }
    }
}

/// The wildcard address with port 0: what the OS binds a client socket to.
fn is_implicit_bind(address: SocketAddr) -> bool {
    address.ip().is_unspecified() && address.port() == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_only() {
        let allowed = AllowedHosts::parse(&[
            "tcp://127.0.0.1:5432".to_owned(),
            "udp://10.0.0.0/8:53".to_owned(),
        ])
        .unwrap();
        let address = |text: &str| text.parse::<SocketAddr>().unwrap();
        assert!(permits(
            &allowed,
            address("0.0.0.0:0"),
            SocketAddrUse::TcpBind
        ));
        assert!(permits(&allowed, address("[::]:0"), SocketAddrUse::UdpBind));
        assert!(!permits(
            &allowed,
            address("0.0.0.0:8080"),
            SocketAddrUse::TcpBind
        ));
        assert!(!permits(
            &allowed,
            address("127.0.0.1:0"),
            SocketAddrUse::TcpBind
        ));
        assert!(!permits(
            &allowed,
            address("0.0.0.0:0"),
            SocketAddrUse::TcpListen
        ));
        assert!(!permits(
            &allowed,
            address("127.0.0.1:5432"),
            SocketAddrUse::TcpAccept
        ));
        assert!(permits(
            &allowed,
            address("127.0.0.1:5432"),
            SocketAddrUse::TcpConnect
        ));
        assert!(!permits(
            &allowed,
            address("127.0.0.1:5433"),
            SocketAddrUse::TcpConnect
        ));
        assert!(permits(
            &allowed,
            address("10.1.1.1:53"),
            SocketAddrUse::UdpSend
        ));
        assert!(permits(
            &allowed,
            address("10.1.1.1:53"),
            SocketAddrUse::UdpReceive
        ));
        assert!(!permits(
            &allowed,
            address("11.1.1.1:53"),
            SocketAddrUse::UdpReceive
        ));
    }
}
