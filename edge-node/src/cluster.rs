//! The node's side of the cluster: it registers with the coordinator and holds a lease by
//! heartbeat ([`lease`]), serves the coordinator's invocations ([`edge_service`]), and keeps
//! components on disk by digest ([`artifacts`]).

use std::time::Duration;

use nexus_proto::node::v1::node_service_client::NodeServiceClient;
use nexus_proto::wire::AddToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};

pub mod artifacts;
pub mod edge_service;
pub mod lease;

/// The coordinator's `NodeService`, every call carrying the join token.
pub type CoordinatorClient = NodeServiceClient<InterceptedService<Channel, AddToken>>;

/// A client of the coordinator at `url` (`http://host:port`). It connects on first use and
/// again after a failure; HTTP/2 keep-alive notices a coordinator that went away.
pub fn coordinator_client(url: &str, token: &str) -> anyhow::Result<CoordinatorClient> {
    let channel = Endpoint::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(2))
        .http2_keep_alive_interval(Duration::from_secs(1))
        .keep_alive_timeout(Duration::from_secs(2))
        .keep_alive_while_idle(true)
        .tcp_nodelay(true)
        .connect_lazy();
    Ok(NodeServiceClient::with_interceptor(
        channel,
        AddToken::new(token)?,
    ))
}
