//! Outbound HTTP (`wasi:http/outgoing-handler` for p2 guests, `wasi:http/client` for p3),
//! restricted by `allowed_outbound_hosts`.
//!
//! The decision is made on the URL the guest asked for, never on a `Host` header (wasi:http
//! forbids guests from setting one, and the inbound request's is never consulted). The host
//! name is resolved once; the connection goes to an address that was checked, so a DNS answer
//! cannot change between the check and the connect.

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::uri::Scheme;
use http_body::Body;
use hyper::body::Incoming;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tracing::Instrument as _;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody, WasiHttpHooks};

use crate::caps::{self, Breaches, check_headers};
use crate::config::Limits;
use crate::error::Cap;

use super::allowed_hosts::{AllowedHosts, Destination, default_port};
use super::local_requests::{LocalDispatchSlot, LocalTarget, local_target};

/// Connect, first-byte and between-bytes timeout when the guest sets none; always also
/// bounded by what is left of the invocation's deadline.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Outbound HTTP policy and state of one instance.
pub struct OutboundHttp {
    allowed: Arc<AllowedHosts>,
    local: LocalDispatchSlot,
    deadline: Option<Instant>,
    /// The span of the invocation the instance serves: outbound calls are its children.
    invocation: tracing::Span,
    limits: Limits,
    breaches: Arc<Breaches>,
    /// Requests sent so far, against [`Limits::max_outbound_requests`]; an instance serves one
    /// invocation, so this is the invocation's count.
    sent: u32,
}

impl OutboundHttp {
    /// Outbound HTTP limited to `allowed`, to `limits.max_outbound_requests` requests and to
    /// the header caps; requests to the app itself go to `local`.
    pub(crate) fn new(
        allowed: Arc<AllowedHosts>,
        local: LocalDispatchSlot,
        limits: Limits,
        breaches: Arc<Breaches>,
    ) -> Self {
        Self {
            allowed,
            local,
            deadline: None,
            invocation: tracing::Span::none(),
            limits,
            breaches,
            sent: 0,
        }
    }

    /// Refuses a request over the per-invocation count or the header caps, counting the
    /// breach; the guest sees the error code.
    fn refusal(&mut self, request: &http::Request<WasiBody>) -> Option<Error> {
        let (cap, error) = if self.sent >= self.limits.max_outbound_requests {
            (Cap::OutboundRequests, Error::ConnectionLimitReached)
        } else {
            let cap = check_headers(request.headers(), &self.limits).err()?;
            let limit = u32::try_from(caps::value(&self.limits, cap)).unwrap_or(u32::MAX);
            (cap, Error::HttpRequestHeaderSectionSize(Some(limit)))
        };
        self.breaches.record(cap);
        tracing::info!(
            parent: &self.invocation,
            cap = cap.setting(),
            limit = caps::value(&self.limits, cap),
            "outbound request refused"
        );
        Some(error)
    }

    /// Makes outbound calls children of `span`, the invocation's.
    pub fn set_caller(&mut self, span: tracing::Span) {
        self.invocation = span;
    }

    /// Bounds every outbound timeout by the invocation's deadline.
    pub fn set_deadline(&mut self, deadline: Instant) {
        self.deadline = Some(deadline);
    }
}

type SendResult = Result<
    (
        http::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
>;

impl WasiHttpHooks for OutboundHttp {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _response_result: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = SendResult> + Send> {
        if let Some(error) = self.refusal(&request) {
            return Box::new(async move { Err(error) });
        }
        self.sent += 1;
        let allowed = Arc::clone(&self.allowed);
        let deadline = self.deadline;
        let span = tracing::info_span!(
            parent: &self.invocation,
            "outbound",
            otel.name = %request.method(),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            http.request.method = %request.method(),
            server.address = request.uri().host(),
            url.full = %request.uri(),
            http.response.status_code = tracing::field::Empty,
        );
        // The callee continues the trace under this call, whatever the guest sent.
        let mut request = request;
        nexus_telemetry::trace::inject(&span, request.headers_mut());
        if let Some(target) = local_target(request.uri()) {
            let local = self.local.clone();
            return Box::new(
                async move {
                    let response = send_local(&allowed, &local, target, request).await;
                    record_outcome(response.as_ref());
                    let response = response?;
                    let finished: Box<dyn Future<Output = Result<(), Error>> + Send> =
                        Box::new(async { Ok(()) });
                    Ok((response, finished))
                }
                .instrument(span),
            );
        }
        Box::new(
            async move {
                let target = Target::of(request.uri())?;
                let addresses = target.checked_addresses(&allowed).await?;
                let timeouts = Timeouts::new(options, deadline);
                let sent = send(request, &target, &addresses, timeouts).await;
                record_outcome(sent.as_ref().map(|(response, _)| response));
                let (response, connection) = sent?;
                Ok((
                    response.map(http_body_util::BodyExt::boxed_unsync),
                    Box::new(connection) as Box<dyn Future<Output = _> + Send>,
                ))
            }
            .instrument(span),
        )
    }
}

/// Records an outbound call's status, or its failure, on the current span.
fn record_outcome<B>(sent: Result<&http::Response<B>, &Error>) {
    let span = tracing::Span::current();
    match sent {
        Ok(response) => {
            span.record(
                "http.response.status_code",
                i64::from(response.status().as_u16()),
            );
        }
        Err(_) => {
            span.record("otel.status_code", "error");
        }
    }
}

/// Sends a request to the app itself, if `allowed_outbound_hosts` lets it.
async fn send_local(
    allowed: &AllowedHosts,
    local: &LocalDispatchSlot,
    target: LocalTarget,
    request: http::Request<WasiBody>,
) -> Result<http::Response<WasiBody>, Error> {
    let uri = request.uri();
    let scheme = uri.scheme_str().unwrap_or("http");
    let permitted = match &target {
        // A relative URL has no scheme of its own; Spin accepts either web scheme.
        LocalTarget::App => allowed.allows_relative("http") || allowed.allows_relative("https"),
        LocalTarget::Component(_) => {
            let host = uri.host().unwrap_or_default();
            let port = uri.port_u16().or_else(|| default_port(scheme)).unwrap_or(0);
            allowed.allows(&Destination { scheme, host, port })
        }
    };
    if !permitted {
        tracing::info!(?target, "local request denied");
        return Err(Error::HttpRequestDenied);
    }
    let dispatcher = local
        .get()
        .ok_or_else(|| Error::InternalError(Some("the app is not being served".to_owned())))?;
    dispatcher.dispatch(target, request).await
}

/// Where a request goes, from its URL.
struct Target {
    tls: bool,
    scheme: &'static str,
    host: String,
    port: u16,
}

impl Target {
    fn of(uri: &http::Uri) -> Result<Self, Error> {
        let (tls, scheme) = match uri.scheme() {
            Some(scheme) if *scheme == Scheme::HTTPS => (true, "https"),
            Some(scheme) if *scheme == Scheme::HTTP => (false, "http"),
            _ => return Err(Error::HttpRequestUriInvalid),
        };
        let authority = uri.authority().ok_or(Error::HttpRequestUriInvalid)?;
        let host = authority.host();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host)
            .to_ascii_lowercase();
        let port = match authority.port_u16() {
            Some(port) => port,
            None => default_port(scheme).ok_or(Error::HttpRequestUriInvalid)?,
        };
        Ok(Self {
            tls,
            scheme,
            host,
            port,
        })
    }

    /// Resolves the host and returns the addresses the policy allows: all of them when the
    /// name itself is allowed, else those an IP rule allows.
    async fn checked_addresses(&self, allowed: &AllowedHosts) -> Result<Vec<SocketAddr>, Error> {
        let by_name = allowed.allows(&Destination {
            scheme: self.scheme,
            host: &self.host,
            port: self.port,
        });
        if !by_name && !allowed.has_address_rule_for(self.scheme, self.port) {
            tracing::info!(host = %self.host, port = self.port, scheme = self.scheme, "outbound request denied");
            return Err(Error::HttpRequestDenied);
        }
        let resolved: Vec<SocketAddr> = tokio::net::lookup_host((self.host.as_str(), self.port))
            .await
            .map_err(|_| {
                if by_name {
                    Error::DnsError {
                        rcode: Some("address not available".to_owned()),
                        info_code: None,
                    }
                } else {
                    // The name is not allowed and no address of it can be known: denied.
                    Error::HttpRequestDenied
                }
            })?
            .collect();
        let permitted: Vec<SocketAddr> = resolved
            .into_iter()
            .filter(|address| {
                by_name || {
                    let ip = address.ip().to_string();
                    allowed.allows(&Destination {
                        scheme: self.scheme,
                        host: &ip,
                        port: self.port,
                    })
                }
            })
            .collect();
        if permitted.is_empty() {
            tracing::info!(host = %self.host, port = self.port, scheme = self.scheme, "outbound request denied");
            return Err(Error::HttpRequestDenied);
        }
        Ok(permitted)
    }
}

#[derive(Clone, Copy)]
struct Timeouts {
    connect: Duration,
    first_byte: Duration,
    between_bytes: Duration,
}

impl Timeouts {
    fn new(options: Option<RequestOptions>, deadline: Option<Instant>) -> Self {
        let remaining = deadline.map_or(DEFAULT_TIMEOUT, |deadline| {
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(1))
        });
        let bound = |chosen: Option<Duration>| {
            chosen
                .unwrap_or(DEFAULT_TIMEOUT)
                .min(remaining)
                .max(Duration::from_millis(1))
        };
        Self {
            connect: bound(options.and_then(|o| o.connect_timeout)),
            first_byte: bound(options.and_then(|o| o.first_byte_timeout)),
            between_bytes: bound(options.and_then(|o| o.between_bytes_timeout)),
        }
    }
}

trait Stream: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T> Stream for T where T: AsyncRead + AsyncWrite + Send + Sync + Unpin + 'static {}

async fn connect(addresses: &[SocketAddr], timeout: Duration) -> Result<TcpStream, Error> {
    let attempt = async {
        let mut last_error = None;
        for address in addresses {
            match TcpStream::connect(address).await {
                Ok(stream) => return Ok(stream),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error.map_or(Error::ConnectionRefused, Error::Connect))
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| Error::ConnectionTimeout)?
}

async fn tls_handshake(stream: TcpStream, host: &str) -> Result<Box<dyn Stream>, Error> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.into(),
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|_| Error::TlsProtocolError)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server_name = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => rustls::pki_types::ServerName::from(ip),
        Err(_) => rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(Error::InvalidDnsNameError)?,
    };
    let stream = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, stream)
        .await
        .map_err(Error::Tls)?;
    Ok(Box::new(stream))
}

async fn send(
    mut request: http::Request<WasiBody>,
    target: &Target,
    addresses: &[SocketAddr],
    timeouts: Timeouts,
) -> Result<
    (
        http::Response<ResponseBody>,
        impl Future<Output = Result<(), Error>> + Send + use<>,
    ),
    Error,
> {
    let tcp = connect(addresses, timeouts.connect).await?;
    let stream: Box<dyn Stream> = if target.tls {
        tokio::time::timeout(timeouts.connect, tls_handshake(tcp, &target.host))
            .await
            .map_err(|_| Error::ConnectionTimeout)??
    } else {
        Box::new(tcp)
    };
    let (mut sender, connection) = tokio::time::timeout(
        timeouts.connect,
        hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // The request line carries only the path: the authority is already the connection's.
    let path = request
        .uri()
        .path_and_query()
        .map_or("/", |path| path.as_str())
        .parse::<http::Uri>()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    *request.uri_mut() = path;

    let response = async move {
        let response = tokio::time::timeout(timeouts.first_byte, sender.send_request(request))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)??;
        Ok::<_, Error>(response.map(|incoming| ResponseBody::new(incoming, timeouts.between_bytes)))
    };
    let mut response = pin!(response);
    let mut connection = Some(connection);
    // Drive the connection while waiting for the response head.
    let response = poll_fn(|cx| match response.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(result),
        Poll::Pending => {
            let Some(io) = connection.as_mut() else {
                return Poll::Pending;
            };
            let finished = ready!(Pin::new(io).poll(cx));
            connection = None;
            match finished {
                Ok(()) => response.as_mut().poll(cx),
                Err(error) => Poll::Ready(Err(Error::from(error))),
            }
        }
    })
    .await?;
    Ok((response, async move {
        match connection {
            Some(io) => io.await.map_err(Error::from),
            None => Ok(()),
        }
    }))
}

/// A response body that fails when the upstream goes quiet for too long.
struct ResponseBody {
    incoming: Incoming,
    idle: Pin<Box<tokio::time::Sleep>>,
    idle_timeout: Duration,
}

impl ResponseBody {
    fn new(incoming: Incoming, idle_timeout: Duration) -> Self {
        Self {
            incoming,
            idle: Box::pin(tokio::time::sleep(idle_timeout)),
            idle_timeout,
        }
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Error>>> {
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let next = Instant::now() + self.idle_timeout;
                self.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(Error::from(error)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                ready!(self.idle.as_mut().poll(cx));
                Poll::Ready(Some(Err(Error::ConnectionReadTimeout)))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.incoming.size_hint()
    }
}
