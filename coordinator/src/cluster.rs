//! The coordinator's side of the cluster: edge nodes register and hold leases
//! ([`node_service`]), the [`registry`] tracks them, and [`dispatch`] places invocations on
//! them.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nexus_identity::Identity;
use nexus_proto::node::v1::node_service_server::NodeServiceServer;
use nexus_proto::wire::{AddToken, RequireToken};
use tokio::sync::watch;
use tonic::service::Routes;
use tonic::service::interceptor::InterceptedService;

use crate::functions::BlobStore;

pub mod autoscale;
mod channel;
pub mod dispatch;
pub mod edge_sync;
pub mod node_service;
pub mod registry;
pub mod routes;
pub mod scheduler;

pub use dispatch::RemoteDispatch;
pub use registry::{NodeRegistry, NodeState, NodeView};
pub use scheduler::{Priority, SchedulerConfig};

/// The largest gRPC message between coordinator and nodes: a body chunk or an invocation head.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// How often lapsed leases are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(250);

/// The cluster as this coordinator runs it.
pub struct Cluster {
    registry: Arc<NodeRegistry>,
    token: String,
    /// Mutual TLS with SPIFFE identities between the coordinator and its nodes; `None` speaks
    /// plain HTTP/2 (the join token alone admits a node).
    identity: Option<Identity>,
    closing: watch::Sender<bool>,
}

impl Cluster {
    /// A cluster whose nodes join with `token`. Starts the task that marks lapsed leases lost.
    pub fn new(token: String) -> Self {
        let registry = Arc::new(NodeRegistry::default());
        let (closing, mut closed) = watch::channel(false);
        let sweeping = Arc::clone(&registry);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(SWEEP_EVERY);
            loop {
                tokio::select! {
                    _ = ticks.tick() => sweeping.sweep(),
                    _ = closed.wait_for(|closed| *closed) => return,
                }
            }
        });
        Self {
            registry,
            token,
            identity: None,
            closing,
        }
    }

    /// Nodes join, and are called, over mutual TLS only, each proving the identity
    /// `spiffe://<trust domain>/edge/<its name>`; the coordinator proves `…/coordinator`.
    #[must_use]
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = Some(identity);
        self
    }

    /// The coordinator's identity, when the cluster uses mutual TLS.
    pub fn identity(&self) -> Option<&Identity> {
        self.identity.as_ref()
    }

    /// The nodes.
    pub fn registry(&self) -> &Arc<NodeRegistry> {
        &self.registry
    }

    /// Dispatch to the nodes, preferring `region`, admitting invocations by `scheduler`.
    pub fn dispatch(&self, region: Option<String>, scheduler: SchedulerConfig) -> RemoteDispatch {
        RemoteDispatch::new(Arc::clone(&self.registry), region, scheduler)
    }

    /// Whether `token` is the join token.
    pub fn is_token(&self, token: &str) -> bool {
        nexus_proto::wire::constant_time_eq(token.as_bytes(), self.token.as_bytes())
    }

    /// `NodeService` (with `sync`, what nodes serve on their own and send back): on the API's listener, or with an identity on a listener of its own
    /// that takes mutual TLS only.
    pub fn routes(
        &self,
        blobs: Arc<dyn BlobStore>,
        sync: edge_sync::EdgeSync,
    ) -> Result<Routes, nexus_proto::wire::InvalidHead> {
        let server = node_service::NodeServer {
            registry: Arc::clone(&self.registry),
            blobs,
            sync,
            token: AddToken::new(&self.token)?,
            identity: self.identity.clone(),
            closing: self.closing.subscribe(),
        };
        Ok(Routes::new(InterceptedService::new(
            NodeServiceServer::new(server)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            RequireToken::new(&self.token),
        )))
    }

    /// Ends every lease stream, so that the coordinator's shutdown need not wait for them.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }
}

/// The join token in `path`, created (random, owner-only) when missing.
pub fn join_token(path: &Path) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(text.trim().to_owned()),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret)
                .map_err(|error| std::io::Error::other(error.to_string()))?;
            let token = hex::encode(secret);
            crate::server::write_private(path, token.as_bytes())?;
            Ok(token)
        }
        Err(error) => Err(error),
    }
}
