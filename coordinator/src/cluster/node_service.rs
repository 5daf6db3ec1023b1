//! The coordinator's `NodeService`: nodes register, hold their lease over a stream of
//! heartbeats, fetch component bytes by digest, read the routing table they serve their own
//! ingress by, and forward what they accepted on their own.

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use nexus_http::PeerCertificates;
use nexus_identity::{Identity, Peers, SpiffeId, peer_id};
use nexus_proto::Digest;
use nexus_proto::node::v1::node_service_server::NodeService;
use nexus_proto::node::v1::{
    ComponentChunk, FetchComponentRequest, ForwardRequest, ForwardResponse, Heartbeat, LeaseUpdate,
    RegisterRequest, RegisterResponse, RoutesRequest, RoutesResponse,
};
use nexus_proto::wire::AddToken;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use super::edge_sync::EdgeSync;
use super::registry::{HEARTBEAT_INTERVAL, LEASE, NodeRegistry, NodeState};
use crate::functions::BlobStore;

/// Bytes per component chunk.
const CHUNK_BYTES: usize = 256 * 1024;

/// Serves `NodeService`.
pub struct NodeServer {
    pub(super) registry: Arc<NodeRegistry>,
    pub(super) blobs: Arc<dyn BlobStore>,
    /// Carried by the coordinator's calls to nodes.
    pub(super) token: AddToken,
    /// With mutual TLS, each call's peer must be the node it speaks for.
    pub(super) identity: Option<Identity>,
    /// Set when the coordinator stops: lease streams end so that shutdown need not wait.
    pub(super) closing: watch::Receiver<bool>,
    /// The routing table nodes serve their own ingress by, and what they forward.
    pub(super) sync: EdgeSync,
}

fn millis(duration: std::time::Duration) -> u32 {
    u32::try_from(duration.as_millis()).unwrap_or(u32::MAX)
}

fn state_message(state: NodeState) -> i32 {
    use nexus_proto::node::v1::NodeState as Wire;
    (match state {
        NodeState::Active => Wire::Active,
        NodeState::Draining => Wire::Draining,
        NodeState::Lost => Wire::Lost,
    }) as i32
}

/// The identity a node named `name` must prove.
fn node_identity(identity: &Identity, name: &str) -> Result<SpiffeId, Status> {
    SpiffeId::edge(&identity.trust_domain(), name).map_err(|error| {
        Status::invalid_argument(format!("the node's name cannot be in a SPIFFE ID: {error}"))
    })
}

/// The SPIFFE ID the caller's certificate proves (the TLS layer has checked the chain).
fn peer_of<T>(request: &Request<T>) -> Result<SpiffeId, Status> {
    let certificates = request
        .extensions()
        .get::<PeerCertificates>()
        .ok_or_else(|| Status::unauthenticated("mutual TLS is required"))?;
    peer_id(&certificates.0).map_err(|error| Status::unauthenticated(error.to_string()))
}

/// Refuses a caller whose identity is not `expected`.
fn check_peer<T>(request: &Request<T>, expected: &SpiffeId) -> Result<(), Status> {
    let peer = peer_of(request)?;
    if &peer == expected {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "the node's identity {peer} does not match its registration as {expected}"
        )))
    }
}

type ChunkStream = Pin<Box<dyn Stream<Item = Result<ComponentChunk, Status>> + Send>>;

#[tonic::async_trait]
impl NodeService for NodeServer {
    async fn register(
        &self,
        request: Request<RegisterRequest>,
    ) -> Result<Response<RegisterResponse>, Status> {
        let tls = match &self.identity {
            None => None,
            Some(identity) => {
                let expected = node_identity(identity, &request.get_ref().name)?;
                check_peer(&request, &expected)?;
                let connector = identity
                    .connector(Peers::Exactly(expected))
                    .map_err(|error| Status::internal(error.to_string()))?;
                Some(connector)
            }
        };
        let node = self
            .registry
            .register(request.into_inner(), &self.token, tls)
            .map_err(|error| Status::invalid_argument(error.to_string()))?;
        Ok(Response::new(RegisterResponse {
            node_id: node.id.to_string(),
            heartbeat_interval_ms: millis(HEARTBEAT_INTERVAL),
            lease_ms: millis(LEASE),
        }))
    }

    type LeaseStream = ReceiverStream<Result<LeaseUpdate, Status>>;

    async fn lease(
        &self,
        request: Request<Streaming<Heartbeat>>,
    ) -> Result<Response<Self::LeaseStream>, Status> {
        let peer = self
            .identity
            .as_ref()
            .map(|_| peer_of(&request))
            .transpose()?;
        let mut heartbeats = request.into_inner();
        let first = heartbeats
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("a lease starts with a heartbeat"))?;
        let node = first
            .node_id
            .parse()
            .ok()
            .and_then(|id| self.registry.get(id))
            .ok_or_else(|| Status::not_found("unknown node id: register first"))?;
        if let (Some(identity), Some(peer)) = (&self.identity, peer) {
            check_identity(identity, &peer, &node.name)?;
        }
        let (updates, stream) = mpsc::channel(4);
        let registry = Arc::clone(&self.registry);
        let mut closing = self.closing.clone();
        let sync = self.sync.clone();
        tokio::spawn(async move {
            let mut heartbeat = Some(first);
            let reason = loop {
                if let Some(beat) = heartbeat.take() {
                    let state = registry.heartbeat(&node, beat);
                    let update = LeaseUpdate {
                        lease_ms: millis(LEASE),
                        state: state_message(state),
                        routes_revision: sync.revision(),
                    };
                    if updates.send(Ok(update)).await.is_err() {
                        break "the node hung up";
                    }
                    if state == NodeState::Lost {
                        break "the node was lost";
                    }
                }
                tokio::select! {
                    next = tokio::time::timeout(LEASE, heartbeats.message()) => match next {
                        Ok(Ok(Some(beat))) => heartbeat = Some(beat),
                        Ok(Ok(None)) => break "the lease stream ended",
                        Ok(Err(_)) => break "the lease stream broke",
                        Err(_) => break "lease lapsed",
                    },
                    _ = closing.wait_for(|closing| *closing) => return,
                }
            };
            registry.lose(&node, reason);
        });
        Ok(Response::new(ReceiverStream::new(stream)))
    }

    type FetchComponentStream = ChunkStream;

    async fn fetch_component(
        &self,
        request: Request<FetchComponentRequest>,
    ) -> Result<Response<Self::FetchComponentStream>, Status> {
        let digest: Digest = request.into_inner().digest.parse().map_err(
            |error: nexus_proto::digest::InvalidDigest| Status::invalid_argument(error.to_string()),
        )?;
        let bytes = self
            .blobs
            .get(&digest)
            .await
            .map_err(|error| {
                tracing::error!(%error, %digest, "reading a component failed");
                Status::internal("reading the component failed")
            })?
            .ok_or_else(|| Status::not_found(format!("no component {digest}")))?;
        let bytes = bytes::Bytes::from(bytes);
        let size = bytes.len() as u64;
        let chunks: Vec<Result<ComponentChunk, Status>> = (0..bytes.len().max(1))
            .step_by(CHUNK_BYTES)
            .enumerate()
            .map(|(index, start)| {
                Ok(ComponentChunk {
                    data: bytes.slice(start..(start + CHUNK_BYTES).min(bytes.len())),
                    size: if index == 0 { size } else { 0 },
                })
            })
            .collect();
        Ok(Response::new(Box::pin(futures::stream::iter(chunks))))
    }

    async fn routes(
        &self,
        request: Request<RoutesRequest>,
    ) -> Result<Response<RoutesResponse>, Status> {
        let peer = self
            .identity
            .as_ref()
            .map(|_| peer_of(&request))
            .transpose()?;
        let request = request.into_inner();
        if let (Some(identity), Some(peer)) = (&self.identity, peer) {
            let node = request
                .node_id
                .parse()
                .ok()
                .and_then(|id| self.registry.get(id))
                .ok_or_else(|| Status::not_found("unknown node id: register first"))?;
            check_identity(identity, &peer, &node.name)?;
        }
        Ok(Response::new(
            self.sync.routes(&self.registry, request).await?,
        ))
    }

    async fn forward(
        &self,
        request: Request<ForwardRequest>,
    ) -> Result<Response<ForwardResponse>, Status> {
        if let Some(identity) = &self.identity {
            let peer = peer_of(&request)?;
            check_identity(identity, &peer, &request.get_ref().node_name)?;
        }
        Ok(Response::new(
            self.sync.forward(request.into_inner()).await?,
        ))
    }
}

/// Refuses a peer that is not the node named `name`.
fn check_identity(identity: &Identity, peer: &SpiffeId, name: &str) -> Result<(), Status> {
    let expected = node_identity(identity, name)?;
    if peer == &expected {
        Ok(())
    } else {
        Err(Status::permission_denied(format!(
            "{peer} cannot speak for {expected}"
        )))
    }
}
