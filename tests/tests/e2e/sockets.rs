//! `wasi:sockets` through Rust's `std::net`, limited by `allowed_outbound_hosts`
//! (`tcp://127.0.0.0/30:{{ tcp_echo_port }}`, `udp://127.0.0.1:1..65535`).

use std::net::SocketAddr;

use http::StatusCode;
use nexus_tests::TestPlatform;
use tokio::net::UdpSocket;

/// A TCP server on `ip` that answers whatever it reads with `pong`.
async fn tcp_echo(ip: &str) -> SocketAddr {
    nexus_tests::tcp_pong_server(ip).await
}

/// A UDP server on 127.0.0.1 that answers every datagram with `pong`.
async fn udp_echo() -> SocketAddr {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let address = socket.local_addr().unwrap();
    tokio::spawn(async move {
        let mut buffer = [0u8; 512];
        while let Ok((_, from)) = socket.recv_from(&mut buffer).await {
            let _ = socket.send_to(b"pong", from).await;
        }
    });
    address
}

async fn platform_for(echo: SocketAddr) -> TestPlatform {
    TestPlatform::builder()
        .env("SPIN_VARIABLE_TCP_ECHO_PORT", &echo.port().to_string())
        .start()
        .await
}

async fn probe(platform: &TestPlatform, proto: &str, addr: &str) -> (StatusCode, String) {
    let response = platform
        .get(&format!("/socket-probe?proto={proto}&addr={addr}"))
        .await;
    (response.status, response.text())
}

#[tokio::test]
async fn tcp_to_an_allowed_address_and_port_works_by_ip_and_by_name() {
    let echo = tcp_echo("127.0.0.1").await;
    let platform = platform_for(echo).await;
    assert_eq!(
        probe(&platform, "tcp", &echo.to_string()).await,
        (StatusCode::OK, "pong".to_owned())
    );
    let by_name = format!("localhost:{}", echo.port());
    assert_eq!(
        probe(&platform, "tcp", &by_name).await,
        (StatusCode::OK, "pong".to_owned())
    );
}

#[tokio::test]
async fn tcp_outside_the_network_or_port_is_refused_before_connecting() {
    let echo = tcp_echo("127.0.0.1").await;
    let platform = platform_for(echo).await;
    // 127.0.0.8 is outside 127.0.0.0/30; the second port is not the templated one.
    for ip in ["127.0.0.8", "127.0.0.1"] {
        let witness = std::net::TcpListener::bind((ip, 0)).unwrap();
        witness.set_nonblocking(true).unwrap();
        let target = witness.local_addr().unwrap();
        let (status, body) = probe(&platform, "tcp", &target.to_string()).await;
        assert_eq!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "{target}: {body}"
        );
        assert!(body.contains("PermissionDenied"), "{target}: {body}");
        let pending = witness.accept();
        assert!(
            matches!(&pending, Err(error) if error.kind() == std::io::ErrorKind::WouldBlock),
            "{target} saw a connection: {pending:?}"
        );
    }
}

#[tokio::test]
async fn udp_to_an_allowed_address_works_and_others_are_refused() {
    let echo = udp_echo().await;
    let platform = platform_for(echo).await;
    assert_eq!(
        probe(&platform, "udp", &echo.to_string()).await,
        (StatusCode::OK, "pong".to_owned())
    );
    let (status, body) = probe(&platform, "udp", &format!("127.0.0.2:{}", echo.port())).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert!(body.contains("PermissionDenied"), "{body}");
}
