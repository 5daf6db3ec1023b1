//! A raw HTTP/1.1 client: the request line and headers go out byte for byte as written (case,
//! order, repeated names, any request-target), the response's header lines are kept in wire
//! order, and the client's own address is known, for `spin-client-addr`.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

/// Headers every HTTP/1.1 server may add to frame a response (hyper, and so `spin up`, adds
/// them); anything else in a response must come from the guest.
pub const FRAMING: [&str; 3] = ["content-length", "date", "transfer-encoding"];

/// A request, written exactly as given.
#[derive(Debug, Clone)]
pub struct WireRequest {
    pub method: String,
    pub target: String,
    /// Sent in this order and case; `host` is not added for you.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl WireRequest {
    /// `method target` with a `Host` header naming `server`.
    pub fn new(method: &str, target: &str, server: SocketAddr) -> Self {
        Self {
            method: method.to_owned(),
            target: target.to_owned(),
            headers: vec![("Host".to_owned(), server.to_string())],
            body: Vec::new(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Sets the body and its `content-length`.
    pub fn body(mut self, body: &[u8]) -> Self {
        self.body = body.to_vec();
        self.header("content-length", &body.len().to_string())
    }

    fn bytes(&self) -> Vec<u8> {
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        for (name, value) in &self.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }
}

/// A response as it came over the wire.
#[derive(Debug)]
pub struct WireResponse {
    pub status: u16,
    /// Header lines in wire order, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl WireResponse {
    /// The headers without the ones HTTP framing adds.
    pub fn guest_headers(&self) -> Vec<(String, String)> {
        self.headers
            .iter()
            .filter(|(name, _)| !FRAMING.contains(&name.to_ascii_lowercase().as_str()))
            .cloned()
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|error| panic!("body is not JSON ({error}): {}", self.text()))
    }
}

/// One keep-alive connection to the server.
pub struct Connection {
    stream: BufReader<TcpStream>,
    /// The client side of the connection: what Spin reports in `spin-client-addr`.
    pub local_addr: SocketAddr,
}

impl Connection {
    pub async fn open(server: SocketAddr) -> Self {
        let stream = TcpStream::connect(server).await.expect("connect failed");
        let local_addr = stream.local_addr().unwrap();
        Self {
            stream: BufReader::new(stream),
            local_addr,
        }
    }

    /// Sends `request` and reads its response; a stuck server fails the test instead of
    /// hanging it.
    pub async fn send(&mut self, request: &WireRequest) -> WireResponse {
        tokio::time::timeout(Duration::from_secs(30), self.exchange(request))
            .await
            .unwrap_or_else(|_| panic!("no response to {} {}", request.method, request.target))
    }

    async fn exchange(&mut self, request: &WireRequest) -> WireResponse {
        self.stream
            .get_mut()
            .write_all(&request.bytes())
            .await
            .unwrap();
        let status_line = self.line().await;
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let mut headers = Vec::new();
        loop {
            let line = self.line().await;
            if line.is_empty() {
                break;
            }
            let (name, value) = line.split_once(':').expect("bad header line");
            headers.push((name.to_owned(), value.trim().to_owned()));
        }
        let response_header = |wanted: &str| {
            headers
                .iter()
                .find(|(name, _)| name.eq_ignore_ascii_case(wanted))
                .map(|(_, value)| value.clone())
        };
        let no_body = request.method == "HEAD" || matches!(status, 100..=199 | 204 | 304);
        let body = if no_body {
            Vec::new()
        } else if response_header("transfer-encoding").is_some_and(|te| te.contains("chunked")) {
            self.chunked_body().await
        } else if let Some(length) = response_header("content-length") {
            let mut body = vec![0; length.parse().unwrap()];
            self.stream.read_exact(&mut body).await.unwrap();
            body
        } else {
            let mut body = Vec::new();
            self.stream.read_to_end(&mut body).await.unwrap();
            body
        };
        WireResponse {
            status,
            headers,
            body,
        }
    }

    async fn line(&mut self) -> String {
        let mut line = String::new();
        self.stream.read_line(&mut line).await.unwrap();
        assert!(line.ends_with("\r\n"), "truncated line {line:?}");
        line.truncate(line.len() - 2);
        line
    }

    async fn chunked_body(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let size_line = self.line().await;
            let size = usize::from_str_radix(size_line.split(';').next().unwrap().trim(), 16)
                .unwrap_or_else(|_| panic!("bad chunk size {size_line:?}"));
            if size == 0 {
                // Trailers, then the empty line.
                while !self.line().await.is_empty() {}
                return body;
            }
            let start = body.len();
            body.resize(start + size, 0);
            self.stream.read_exact(&mut body[start..]).await.unwrap();
            assert_eq!(self.line().await, "", "chunk not followed by CRLF");
        }
    }
}

/// Sends `request` on a fresh connection; returns the response and the client's address.
pub async fn send(server: SocketAddr, request: &WireRequest) -> (WireResponse, SocketAddr) {
    let mut connection = Connection::open(server).await;
    let response = connection.send(request).await;
    (response, connection.local_addr)
}
