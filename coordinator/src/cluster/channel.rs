//! The gRPC transport to an edge node: one HTTP/2 connection, driven by `h2` itself.
//!
//! tonic's `Channel` reaches hyper's client through a buffer task, and hyper sends a request
//! body from a task of its own once the stream has flow-control capacity, which a new stream
//! never has before the connection task opens it. So every invocation cost the coordinator two
//! socket writes (HEADERS, then DATA) and the node two reads and two wake-ups before it saw the
//! invocation's head. Here the body frames that are ready when the call starts are queued with
//! the HEADERS, and both leave in one write; only a body that is still arriving gets a task.

use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::http::{HeaderMap, Request, Response, Uri};
use bytes::Bytes;
use futures::future::BoxFuture;
use h2::client::SendRequest;
use h2::{RecvStream, SendStream};
use http_body::{Body as _, Frame};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// How long connecting to a node may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A ping this often on every connection, answered within [`PING_TIMEOUT`] or the connection is
/// dropped, failing its calls: a node that vanished without closing its socket is noticed.
const PING_INTERVAL: Duration = Duration::from_secs(1);
const PING_TIMEOUT: Duration = Duration::from_secs(2);
/// Windows as hyper's client sets them: invocations stream bodies both ways.
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const CONNECTION_WINDOW: u32 = 5 * 1024 * 1024;
/// The gRPC metadata a node may answer with.
const MAX_HEADER_LIST_BYTES: u32 = 64 * 1024;
/// Body bytes sent before the node has granted the stream any window: the default initial
/// window every HTTP/2 peer grants. Beyond it, each chunk waits for capacity.
const UNGRANTED_BYTES: usize = 65_535;

/// Why a call to a node failed before it had an answer.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("connecting to {address}: {source}")]
    Connect {
        address: String,
        source: std::io::Error,
    },
    #[error("the TLS handshake with {address} failed: {source}")]
    Tls {
        address: String,
        source: std::io::Error,
    },
    #[error("connecting to {address}: no answer within {CONNECT_TIMEOUT:?}")]
    ConnectTimedOut { address: String },
    #[error("HTTP/2 with {address}: {source}")]
    Http2 { address: String, source: h2::Error },
}

/// A cheap-to-clone gRPC service that sends every call to one node over one connection,
/// opened on first use and again after it breaks.
#[derive(Clone)]
pub struct NodeChannel {
    shared: Arc<Shared>,
}

struct Shared {
    /// `host:port`, what is dialled.
    address: String,
    /// Mutual TLS, expecting the node's own identity; plain HTTP/2 without.
    tls: Option<TlsConnector>,
    current: Mutex<Option<Connection>>,
    /// One connect at a time: calls that find no connection wait for the same one.
    connecting: tokio::sync::Mutex<()>,
}

#[derive(Clone)]
struct Connection {
    generation: u64,
    sender: SendRequest<Bytes>,
}

impl NodeChannel {
    /// A channel to the node at `origin` (`http://host:port`, or `https://` with `tls`);
    /// nothing is dialled yet.
    pub fn lazy(origin: &Uri, tls: Option<TlsConnector>) -> Option<Self> {
        let authority = origin.authority()?;
        let default_port = if tls.is_some() { 443 } else { 80 };
        let address = format!(
            "{}:{}",
            authority.host(),
            authority.port_u16().unwrap_or(default_port)
        );
        Some(Self {
            shared: Arc::new(Shared {
                address,
                tls,
                current: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
            }),
        })
    }
}

impl NodeChannel {
    /// A channel over a connection already open on `io`, which it never redials.
    #[cfg(test)]
    async fn over<T>(io: T) -> Result<Self, h2::Error>
    where
        T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let sender = start(io).await?;
        Ok(Self {
            shared: Arc::new(Shared {
                address: "test".to_owned(),
                tls: None,
                current: Mutex::new(Some(Connection {
                    generation: 0,
                    sender,
                })),
                connecting: tokio::sync::Mutex::new(()),
            }),
        })
    }
}

impl Shared {
    fn current(&self) -> Option<Connection> {
        self.current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// A sender ready for a new stream. A connection that turns out closed has sent nothing of
    /// this call, so it is replaced once.
    async fn ready(&self) -> Result<SendRequest<Bytes>, ChannelError> {
        let connection = match self.current() {
            Some(connection) => connection,
            None => self.connect(None).await?,
        };
        let generation = connection.generation;
        match connection.sender.ready().await {
            Ok(sender) => Ok(sender),
            Err(_) => self
                .connect(Some(generation))
                .await?
                .sender
                .ready()
                .await
                .map_err(|source| self.http2(source)),
        }
    }

    /// Connects, unless another call did since `broken` (the connection found closed) was
    /// current.
    async fn connect(&self, broken: Option<u64>) -> Result<Connection, ChannelError> {
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(connection) = self.current()
            && Some(connection.generation) != broken
        {
            return Ok(connection);
        }
        let dialled = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&self.address))
            .await
            .map_err(|_| ChannelError::ConnectTimedOut {
                address: self.address.clone(),
            })?
            .and_then(|dialled| dialled.set_nodelay(true).map(|()| dialled))
            .map_err(|source| ChannelError::Connect {
                address: self.address.clone(),
                source,
            })?;
        let sender = match &self.tls {
            None => start(dialled).await,
            Some(tls) => {
                let handshake = tls.connect(nexus_identity::Identity::server_name(), dialled);
                let secured = tokio::time::timeout(CONNECT_TIMEOUT, handshake)
                    .await
                    .map_err(|_| ChannelError::ConnectTimedOut {
                        address: self.address.clone(),
                    })?
                    .map_err(|source| ChannelError::Tls {
                        address: self.address.clone(),
                        source,
                    })?;
                start(secured).await
            }
        }
        .map_err(|source| self.http2(source))?;
        let connection = Connection {
            generation: broken.map_or(0, |generation| generation + 1),
            sender,
        };
        *self
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(connection.clone());
        Ok(connection)
    }

    fn http2(&self, source: h2::Error) -> ChannelError {
        ChannelError::Http2 {
            address: self.address.clone(),
            source,
        }
    }

    async fn call(
        &self,
        request: Request<tonic::body::Body>,
    ) -> Result<Response<NodeBody>, ChannelError> {
        let mut sender = self.ready().await?;
        let (parts, body) = request.into_parts();
        let ends_with_headers = body.is_end_stream();
        let (response, stream) = sender
            .send_request(Request::from_parts(parts, ()), ends_with_headers)
            .map_err(|source| self.http2(source))?;
        if !ends_with_headers {
            let mut sending = Box::pin(send_body(body, stream));
            if futures::poll!(sending.as_mut()).is_pending() {
                tokio::spawn(sending);
            }
        }
        let response = response.await.map_err(|source| self.http2(source))?;
        Ok(response.map(NodeBody::new))
    }
}

/// Opens HTTP/2 over `io` and drives the connection from a task until it closes, its last
/// sender is gone, or it stops answering pings.
async fn start<T>(io: T) -> Result<SendRequest<Bytes>, h2::Error>
where
    T: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (sender, mut connection) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(MAX_HEADER_LIST_BYTES)
        .enable_push(false)
        .handshake::<_, Bytes>(io)
        .await?;
    let pings = connection.ping_pong();
    tokio::spawn(async move {
        let keep_alive = async move {
            let Some(mut pings) = pings else {
                return std::future::pending().await;
            };
            loop {
                tokio::time::sleep(PING_INTERVAL).await;
                let pong = tokio::time::timeout(PING_TIMEOUT, pings.ping(h2::Ping::opaque()));
                if !matches!(pong.await, Ok(Ok(_))) {
                    return;
                }
            }
        };
        tokio::select! {
            _ = &mut connection => {}
            () = keep_alive => tracing::debug!("an edge node stopped answering pings"),
        }
    });
    Ok(sender)
}

impl tonic::codegen::Service<Request<tonic::body::Body>> for NodeChannel {
    type Response = Response<NodeBody>;
    type Error = ChannelError;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        let shared = Arc::clone(&self.shared);
        Box::pin(async move { shared.call(request).await })
    }
}

/// What the request body has next.
enum Next {
    Frame(Frame<Bytes>),
    End,
    /// Nothing yet: a chunk held back in case the end came with it goes out now.
    NotYet,
    /// The body failed, or the node reset the stream.
    Stop,
}

/// Sends `body` on `stream`. A chunk is held back only while the body has more ready, so that
/// the last one carries END_STREAM; a body that is still arriving is sent as it arrives.
async fn send_body(mut body: tonic::body::Body, mut stream: SendStream<Bytes>) {
    let mut held: Option<Bytes> = None;
    let mut ungranted = UNGRANTED_BYTES;
    loop {
        let next = poll_fn(|cx| {
            if stream.poll_reset(cx).is_ready() {
                return Poll::Ready(Next::Stop);
            }
            match Pin::new(&mut body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Next::Frame(frame)),
                Poll::Ready(Some(Err(_))) => Poll::Ready(Next::Stop),
                Poll::Ready(None) => Poll::Ready(Next::End),
                Poll::Pending if held.is_some() => Poll::Ready(Next::NotYet),
                Poll::Pending => Poll::Pending,
            }
        })
        .await;
        let sent = match next {
            Next::Frame(frame) => match frame.into_data() {
                Ok(data) => match held.replace(data) {
                    Some(previous) => send_data(&mut stream, previous, &mut ungranted).await,
                    None => Ok(()),
                },
                Err(frame) => {
                    if let Some(previous) = held.take()
                        && send_data(&mut stream, previous, &mut ungranted)
                            .await
                            .is_err()
                    {
                        return;
                    }
                    if let Ok(trailers) = frame.into_trailers() {
                        let _ = stream.send_trailers(trailers);
                        return;
                    }
                    Ok(())
                }
            },
            Next::NotYet => match held.take() {
                Some(previous) => send_data(&mut stream, previous, &mut ungranted).await,
                None => Ok(()),
            },
            Next::End => {
                let _ = stream.send_data(held.take().unwrap_or_default(), true);
                return;
            }
            Next::Stop => {
                stream.send_reset(h2::Reason::CANCEL);
                return;
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Queues `data`. h2 buffers what the window does not cover yet; up to `ungranted` bytes in
/// all go without waiting, so a small invocation leaves with its HEADERS, and after that each
/// chunk waits until the stream has capacity, which bounds what is buffered.
async fn send_data(
    stream: &mut SendStream<Bytes>,
    data: Bytes,
    ungranted: &mut usize,
) -> Result<(), h2::Error> {
    if data.len() <= *ungranted {
        *ungranted -= data.len();
    } else {
        *ungranted = 0;
        stream.reserve_capacity(data.len());
        while stream.capacity() == 0 {
            match poll_fn(|cx| stream.poll_capacity(cx)).await {
                Some(Ok(_)) => {}
                Some(Err(error)) => return Err(error),
                None => return Err(h2::Error::from(h2::Reason::CANCEL)),
            }
        }
    }
    stream.send_data(data, false)
}

/// A node's response body: data as it arrives, its window given back as it is read, then the
/// gRPC trailers.
#[derive(Default)]
pub struct NodeBody {
    receiving: Option<RecvStream>,
    data_done: bool,
}

impl NodeBody {
    fn new(receiving: RecvStream) -> Self {
        Self {
            receiving: Some(receiving),
            data_done: false,
        }
    }
}

impl http_body::Body for NodeBody {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let this = &mut *self;
        let Some(receiving) = this.receiving.as_mut() else {
            return Poll::Ready(None);
        };
        if !this.data_done {
            match ready!(receiving.poll_data(cx)) {
                Some(Ok(data)) => {
                    let _ = receiving.flow_control().release_capacity(data.len());
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Some(Err(error)) => return Poll::Ready(Some(Err(error))),
                None => this.data_done = true,
            }
        }
        let trailers: Result<Option<HeaderMap>, h2::Error> = ready!(receiving.poll_trailers(cx));
        this.receiving = None;
        Poll::Ready(
            trailers
                .map(|trailers| trailers.map(Frame::trailers))
                .transpose(),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.receiving
            .as_ref()
            .is_none_or(RecvStream::is_end_stream)
    }
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use nexus_proto::node::v1::edge_service_client::EdgeServiceClient;
    use nexus_proto::node::v1::{BodyEnd, InvokeHead, InvokeRequest, invoke_request};

    use super::*;

    /// Records the bytes of every write, as one writev would send them.
    struct Recording {
        inner: tokio::io::DuplexStream,
        writes: Arc<Mutex<Vec<Vec<u8>>>>,
    }

    impl AsyncRead for Recording {
        fn poll_read(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_read(cx, buf)
        }
    }

    impl AsyncWrite for Recording {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            self.poll_write_vectored(cx, &[io::IoSlice::new(buf)])
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            bufs: &[io::IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let bytes: Vec<u8> = bufs.iter().flat_map(|buf| buf.iter().copied()).collect();
            let written = ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes))?;
            self.writes.lock().unwrap().push(bytes[..written].to_vec());
            Poll::Ready(Ok(written))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_flush(cx)
        }

        fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Pin::new(&mut self.inner).poll_shutdown(cx)
        }
    }

    /// A node that reads each invocation to its end and answers with an empty stream.
    async fn answer_every_call(io: tokio::io::DuplexStream) {
        let mut connection = h2::server::handshake(io).await.unwrap();
        while let Some(accepted) = connection.accept().await {
            let (request, mut respond) = accepted.unwrap();
            tokio::spawn(async move {
                let mut body = request.into_body();
                while let Some(data) = body.data().await {
                    let data = data.unwrap();
                    body.flow_control().release_capacity(data.len()).unwrap();
                }
                let response = Response::builder()
                    .header("content-type", "application/grpc")
                    .header("grpc-status", "0")
                    .body(())
                    .unwrap();
                respond.send_response(response, true).unwrap();
            });
        }
    }

    fn invocation(body: Bytes) -> Vec<InvokeRequest> {
        [
            invoke_request::Part::Head(InvokeHead {
                method: "POST".into(),
                uri: "/".into(),
                ..InvokeHead::default()
            }),
            invoke_request::Part::Body(body),
            invoke_request::Part::End(BodyEnd {}),
        ]
        .into_iter()
        .map(|part| InvokeRequest { part: Some(part) })
        .collect()
    }

    /// `(stream id, frame type, flags)` of each frame and the indexes of the writes its first
    /// and last byte went out in.
    fn frames(writes: &[Vec<u8>]) -> Vec<((u32, u8, u8), usize, usize)> {
        let wire: Vec<u8> = writes.concat();
        let write_of = |offset: usize| {
            let mut end = 0;
            writes
                .iter()
                .position(|write| {
                    end += write.len();
                    offset < end
                })
                .unwrap()
        };
        let mut frames = Vec::new();
        let mut at = 0;
        while at + 9 <= wire.len() {
            let length = u32::from_be_bytes([0, wire[at], wire[at + 1], wire[at + 2]]) as usize;
            let stream = u32::from_be_bytes(wire[at + 5..at + 9].try_into().unwrap()) & !(1 << 31);
            let last = at + 9 + length - 1;
            frames.push((
                (stream, wire[at + 3], wire[at + 4]),
                write_of(at),
                write_of(last),
            ));
            at = last + 1;
        }
        assert_eq!(at, wire.len(), "the writes end inside a frame");
        frames
    }

    #[tokio::test]
    async fn a_ready_invocation_leaves_in_one_write_with_its_headers() {
        const HEADERS: u8 = 0x1;
        const DATA: u8 = 0x0;
        const END_STREAM: u8 = 0x1;
        let (client, server) = tokio::io::duplex(1 << 20);
        tokio::spawn(answer_every_call(server));
        let writes = Arc::new(Mutex::new(Vec::new()));
        let recording = Recording {
            inner: client,
            writes: Arc::clone(&writes),
        };
        let channel = NodeChannel::over(recording).await.unwrap();
        let mut node = EdgeServiceClient::with_origin(channel, Uri::from_static("http://node"));
        // The first call also carries the connection's preface and settings.
        node.invoke(futures::stream::iter(invocation(Bytes::from_static(
            b"first",
        ))))
        .await
        .unwrap();
        writes.lock().unwrap().clear();

        let body = Bytes::from(vec![7_u8; 1000]);
        let mut answer = node
            .invoke(futures::stream::iter(invocation(body)))
            .await
            .unwrap()
            .into_inner();
        assert!(answer.message().await.unwrap().is_none());

        let writes = writes.lock().unwrap().clone();
        let second: Vec<_> = frames(&writes)
            .into_iter()
            .filter(|((stream, _, _), _, _)| *stream == 3)
            .collect();
        let kinds: Vec<_> = second.iter().map(|((_, kind, _), _, _)| *kind).collect();
        assert_eq!(kinds.first(), Some(&HEADERS), "{second:?}");
        assert!(kinds.contains(&DATA), "{second:?}");
        let ((_, last_kind, last_flags), _, _) = second[second.len() - 1];
        assert!(
            last_kind == DATA && last_flags & END_STREAM != 0,
            "the last frame ends the stream: {second:?}"
        );
        let first_write = second[0].1;
        assert!(
            second
                .iter()
                .all(|(_, starts, ends)| *starts == first_write && *ends == first_write),
            "HEADERS and DATA went out in separate writes: {second:?}"
        );
    }
}
