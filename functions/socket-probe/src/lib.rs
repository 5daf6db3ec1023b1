//! `socket-probe`: sends `ping` to an address over `wasi:sockets` with Rust's `std::net` and
//! answers with the reply (test fixture, spin-sdk 5.2).
//!
//! Query parameters: `proto=tcp|udp` and `addr=<host>:<port>` (a name is resolved through
//! `wasi:sockets/ip-name-lookup`). Answers `200 <reply>`, or `500` with the error's `Debug`
//! text (for example `Os { code: 2, kind: PermissionDenied, … }` when the address is not
//! allowed).

extern crate spin_sdk_5 as spin_sdk;

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

const TIMEOUT: Duration = Duration::from_secs(5);

/// Runs the probe described in the crate docs.
#[http_component]
fn handle_socket_probe(request: Request) -> Response {
    let mut proto = None;
    let mut addr = None;
    for (key, value) in form_urlencoded::parse(request.query().as_bytes()) {
        match key.as_ref() {
            "proto" => proto = Some(value.into_owned()),
            "addr" => addr = Some(value.into_owned()),
            _ => {}
        }
    }
    let outcome = match (proto.as_deref(), addr) {
        (Some("tcp"), Some(addr)) => tcp_ping(&addr),
        (Some("udp"), Some(addr)) => udp_ping(&addr),
        _ => Err("query must have proto=tcp|udp and addr=<host>:<port>".to_owned()),
    };
    let (status, body) = match outcome {
        Ok(reply) => (200, reply),
        Err(reason) => (500, reason),
    };
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body)
        .build()
}

fn tcp_ping(addr: &str) -> Result<String, String> {
    let mut last_error = "no address".to_owned();
    // A name may resolve to several addresses (`localhost` to ::1 and 127.0.0.1): try each.
    for target in addr.to_socket_addrs().map_err(|e| format!("{e:?}"))? {
        match TcpStream::connect_timeout(&target, TIMEOUT) {
            Ok(stream) => return exchange(stream),
            Err(error) => last_error = format!("{error:?}"),
        }
    }
    Err(last_error)
}

fn exchange(mut stream: TcpStream) -> Result<String, String> {
    stream.write_all(b"ping").map_err(|e| format!("{e:?}"))?;
    stream
        .shutdown(std::net::Shutdown::Write)
        .map_err(|e| format!("{e:?}"))?;
    let mut reply = String::new();
    stream
        .read_to_string(&mut reply)
        .map_err(|e| format!("{e:?}"))?;
    Ok(reply)
}

fn udp_ping(addr: &str) -> Result<String, String> {
    let socket = UdpSocket::bind("0.0.0.0:0").map_err(|e| format!("{e:?}"))?;
    // No read timeout: wasi-libc has no SO_RCVTIMEO for UDP; the invocation deadline bounds it.
    socket
        .send_to(b"ping", addr)
        .map_err(|e| format!("{e:?}"))?;
    let mut buffer = [0u8; 512];
    let (length, _from) = socket
        .recv_from(&mut buffer)
        .map_err(|e| format!("{e:?}"))?;
    Ok(String::from_utf8_lossy(&buffer[..length]).into_owned())
}
