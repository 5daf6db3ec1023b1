//! The node's side of the cluster: it registers with the coordinator and holds a lease by
//! heartbeat ([`lease`]), serves the coordinator's invocations ([`edge_service`]), and keeps
//! components on disk by digest ([`artifacts`]).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use nexus_identity::{Identity, Peers, SpiffeId};
use nexus_proto::node::v1::node_service_client::NodeServiceClient;
use nexus_proto::wire::AddToken;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint, Uri};

pub mod artifacts;
pub mod edge_service;
pub mod forward;
pub mod ingress;
pub mod lease;
pub mod outbox;
pub mod routes;

/// The coordinator's `NodeService`, every call carrying the join token.
pub type CoordinatorClient = NodeServiceClient<InterceptedService<Channel, AddToken>>;

/// How long reaching the coordinator, TLS handshake included, may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// A client of the coordinator at `url`: `http://host:port`, or with `identity` the cluster
/// listener's `https://host:port`, where both sides prove their SPIFFE identity. It connects
/// on first use and again after a failure; HTTP/2 keep-alive notices a coordinator that went
/// away.
pub fn coordinator_client(
    url: &str,
    token: &str,
    identity: Option<&Identity>,
) -> anyhow::Result<CoordinatorClient> {
    let channel = match identity {
        None => endpoint(url)?.connect_lazy(),
        Some(identity) => {
            let coordinator = SpiffeId::coordinator(&identity.trust_domain())?;
            mutual_tls_channel(url, identity, Peers::Exactly(coordinator))?
        }
    };
    Ok(NodeServiceClient::with_interceptor(
        channel,
        AddToken::new(token)?,
    ))
}

/// A gRPC channel to `url` (`https://host:port`) over mutual TLS as `identity`, to a server in
/// `peers`; it connects on first use.
pub fn mutual_tls_channel(url: &str, identity: &Identity, peers: Peers) -> anyhow::Result<Channel> {
    let connector = identity.connector(peers)?;
    Ok(endpoint(url)?.connect_with_connector_lazy(MutualTls(connector)))
}

fn endpoint(url: &str) -> anyhow::Result<Endpoint> {
    Ok(Endpoint::from_shared(url.to_owned())?
        .connect_timeout(CONNECT_TIMEOUT)
        .http2_keep_alive_interval(Duration::from_secs(1))
        .keep_alive_timeout(Duration::from_secs(2))
        .keep_alive_while_idle(true)
        .tcp_nodelay(true))
}

/// Dials the coordinator and runs the TLS handshake, for tonic's channel.
#[derive(Clone)]
struct MutualTls(TlsConnector);

type Dialled = Pin<Box<dyn Future<Output = std::io::Result<TokioIo<TlsStream<TcpStream>>>> + Send>>;

impl tonic::codegen::Service<Uri> for MutualTls {
    type Response = TokioIo<TlsStream<TcpStream>>;
    type Error = std::io::Error;
    type Future = Dialled;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connector = self.0.clone();
        Box::pin(async move {
            let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
            let address = format!("{host}:{}", uri.port_u16().unwrap_or(443));
            let dial = async {
                let tcp = TcpStream::connect(&address).await?;
                tcp.set_nodelay(true)?;
                connector.connect(Identity::server_name(), tcp).await
            };
            let tls = tokio::time::timeout(CONNECT_TIMEOUT, dial)
                .await
                .map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "reaching the coordinator at {address} took over {CONNECT_TIMEOUT:?}"
                        ),
                    )
                })??;
            Ok(TokioIo::new(tls))
        })
    }
}
