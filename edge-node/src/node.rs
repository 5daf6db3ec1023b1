//! A cluster edge node (`nexus-edge`): the runtime, the coordinator's `EdgeService` and the
//! node's own HTTP endpoints (`/healthz`, `/readyz`, `/metrics`) on one listener, and the lease.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use anyhow::Context as _;
use bytes::Bytes;
use http::{Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use nexus_http::{PeerCertificates, ServerLimits};
use nexus_identity::{Identity, Peers, SpiffeId, SvidPaths, peer_id};
use nexus_proto::node::v1::edge_service_server::EdgeServiceServer;
use nexus_proto::node::v1::{Capacity, RegisterRequest};
use nexus_proto::wire::RequireToken;
use nexus_runtime::{Limits, Runtime, RuntimeConfig};
use nexus_telemetry::metrics::{self, Registry};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::service::interceptor::InterceptedService;

use crate::cluster::artifacts::ArtifactStore;
use crate::cluster::edge_service::{EdgeServer, NodeLoad, WarmSet};
use crate::cluster::forward::Forwarder;
use crate::cluster::ingress::NodeIngress;
use crate::cluster::lease::LeaseHolder;
use crate::cluster::outbox::Outbox;
use crate::cluster::routes::RouteTable;
use crate::cluster::{CoordinatorClient, coordinator_client};
use crate::hosting::AppHost;
use crate::kv::{KvBackend, start_runtime};

/// The largest gRPC message the node accepts: a body chunk or an invocation head.
const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// Everything a node needs to start.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// The coordinator's URL: `http://host:port`, or with an identity its cluster listener's
    /// `https://host:port`; one per replica when there are several, each holding a lease.
    pub coordinators: Vec<String>,
    /// The node's SPIFFE identity (`spiffe://<trust domain>/edge/<name>`): mutual TLS with the
    /// coordinator both ways; without one, plain HTTP/2 and the join token alone.
    pub identity: Option<SvidPaths>,
    /// The cluster's join token, carried by every call in both directions.
    pub token: String,
    /// The node's name (the host name by default).
    pub name: String,
    /// Where the node runs, for placement by region.
    pub region: String,
    /// Labels placement constraints match against.
    pub labels: BTreeMap<String, String>,
    /// Where the node listens; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where the coordinator reaches the node; `http://<listen address>` by default
    /// (`https://` with an identity).
    pub advertise: Option<String>,
    /// Components (`artifacts/`), compiled code (`compiled/`) and SQLite databases live here.
    pub state_dir: PathBuf,
    /// Where Spin key-value data lives: shared (Redis) in a cluster.
    pub kv: KvBackend,
    /// Limits applied to every invocation.
    pub limits: Limits,
    /// The environment application variables are read from (`SPIN_VARIABLE_*`).
    pub environment: Vec<(String, String)>,
    /// Vault, for variables marked `secret = true` the environment does not have.
    pub vault: Option<Arc<nexus_secrets::SecretStore>>,
    /// The listener's limits.
    pub server: ServerLimits,
    /// Apps no request used for this long are unloaded, their compiled code dropped (scale to
    /// zero), unless the coordinator keeps them warm; `None` keeps every app loaded.
    pub unload_idle_after: Option<Duration>,
    /// Where clients call the node's own ingress (`/{project}/{function}[@alias]/…`), served
    /// from the routing table whether or not a coordinator answers; `None` serves none.
    pub ingress: Option<SocketAddr>,
    /// The most the outbox keeps on disk while no coordinator answers, in bytes: beyond it the
    /// ingress refuses asynchronous invocations (503) and drops events (counted).
    pub outbox_max_bytes: u64,
}

/// The outbox's bound by default: 256 MiB.
pub const DEFAULT_OUTBOX_MAX_BYTES: u64 = 256 * 1024 * 1024;

/// A running edge node.
pub struct EdgeNode {
    local_addr: SocketAddr,
    ingress_addr: Option<SocketAddr>,
    runtime: Arc<Runtime>,
    node_ids: watch::Receiver<Vec<String>>,
    stop: watch::Sender<bool>,
    serving: JoinHandle<std::io::Result<()>>,
    ingress: Option<JoinHandle<std::io::Result<()>>>,
    outbox: Arc<Outbox>,
    leases: Vec<JoinHandle<()>>,
}

impl EdgeNode {
    /// Starts the runtime, binds the listener, and starts registering with the coordinator.
    pub async fn start(config: NodeConfig) -> anyhow::Result<Self> {
        let runtime = start_runtime(
            RuntimeConfig {
                limits: config.limits.clone(),
                compile_cache: Some(config.state_dir.join("compiled")),
                state_dir: Some(config.state_dir.clone()),
                baseline_tier: false,
            },
            &config.kv,
        )
        .await?;
        let artifacts = Arc::new(
            ArtifactStore::open(&config.state_dir.join("artifacts"))
                .context("failed to open the artifact directory")?,
        );
        let variables =
            crate::variables::source(config.environment.iter().cloned(), config.vault.clone());
        let host = Arc::new(AppHost::new(
            Arc::clone(&runtime),
            Arc::clone(&artifacts) as _,
            variables,
        ));
        let identity = config
            .identity
            .clone()
            .map(|paths| Identity::load(paths, nexus_identity::DEFAULT_RELOAD_INTERVAL))
            .transpose()
            .context("failed to load the node's identity")?;
        anyhow::ensure!(
            !config.coordinators.is_empty(),
            "a node needs a coordinator to join"
        );
        let coordinators: Arc<[CoordinatorClient]> = config
            .coordinators
            .iter()
            .map(|url| coordinator_client(url, &config.token, identity.as_ref()))
            .collect::<anyhow::Result<_>>()?;
        // Only the coordinator may call `EdgeService`; any identity of the trust domain (a
        // scraper's) may read `/metrics` and the probes.
        let (tls, caller) = match &identity {
            None => (None, None),
            Some(identity) => (
                Some(identity.acceptor(Peers::TrustDomain)?),
                Some(SpiffeId::coordinator(&identity.trust_domain())?),
            ),
        };
        let (load, warm) = (Arc::new(NodeLoad::default()), Arc::new(WarmSet::default()));
        if let Some(idle) = config.unload_idle_after {
            let warm = Arc::clone(&warm);
            host.unload_when_idle(idle, move |unloaded| warm.remove(&unloaded.components));
        }
        let metrics = host.metrics().registry().clone();
        let in_flight = Arc::clone(&load);
        metrics::sampled_gauge(
            &metrics,
            "nexus_edge_invocations_in_flight",
            "Invocations running now.",
            move || i64::from(in_flight.in_flight()),
        );
        let edge = Arc::new(EdgeServer::new(
            host,
            artifacts,
            Arc::clone(&coordinators),
            Arc::clone(&load),
            Arc::clone(&warm),
        ));
        let outbox = Outbox::open(
            &config.state_dir.join("outbox.sqlite"),
            config.outbox_max_bytes,
        )
        .await
        .context("failed to open the outbox")?;
        observe_outbox(&metrics, &outbox);
        let routes = Arc::new(RouteTable::open(
            config.state_dir.join("routes.pb"),
            Arc::clone(&edge),
        ));
        let grpc = tonic::service::Routes::new(InterceptedService::new(
            EdgeServiceServer::from_arc(Arc::clone(&edge))
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
            RequireToken::new(&config.token),
        ))
        .prepare();
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("failed to listen on {}", config.listen))?;
        let local_addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let (ingress, ingress_addr) = match config.ingress {
            None => (None, None),
            Some(address) => {
                let listener = TcpListener::bind(address)
                    .await
                    .with_context(|| format!("failed to listen on {address}"))?;
                let bound = listener.local_addr()?;
                let ingress = Arc::new(NodeIngress::new(
                    Arc::clone(&edge),
                    Arc::clone(&routes),
                    Arc::clone(&outbox),
                ));
                let mut shutdown = stopped.clone();
                let limits = config.server.clone();
                let task = tokio::spawn(ingress.serve(listener, limits, async move {
                    let _ = shutdown.wait_for(|stop| *stop).await;
                }));
                (Some(task), Some(bound))
            }
        };
        let (node_id_sender, node_ids) = watch::channel(vec![String::new(); coordinators.len()]);
        let endpoints = Arc::new(Endpoints {
            metrics,
            load: Arc::clone(&load),
            node_ids: node_ids.clone(),
        });
        let mut shutdown = stopped.clone();
        let server_limits = config.server.clone();
        let serving = tokio::spawn(async move {
            let shutdown = async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            };
            nexus_http::serve_with(listener, &server_limits, tls, shutdown, move |_client| {
                let (grpc, endpoints, caller) =
                    (grpc.clone(), Arc::clone(&endpoints), caller.clone());
                service_fn(move |request: http::Request<Incoming>| {
                    let (mut grpc, endpoints) = (grpc.clone(), Arc::clone(&endpoints));
                    let refused = caller.as_ref().and_then(|caller| refuse(&request, caller));
                    async move {
                        if is_grpc(&request) {
                            if let Some(refused) = refused {
                                return Ok(refused
                                    .into_http::<tonic::body::Body>()
                                    .map(|body| body.boxed_unsync()));
                            }
                            let response =
                                tonic::codegen::Service::call(&mut grpc, request).await?;
                            return Ok::<_, Infallible>(response.map(|body| body.boxed_unsync()));
                        }
                        Ok(endpoints
                            .answer(request.uri().path())
                            .map(|body| body.map_err(|never| match never {}).boxed_unsync()))
                    }
                })
            })
            .await
        });
        let scheme = if identity.is_some() { "https" } else { "http" };
        let advertise = config
            .advertise
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{local_addr}"));
        let limits = runtime.limits();
        let registration = RegisterRequest {
            name: config.name.clone(),
            region: config.region.clone(),
            labels: config.labels.clone().into_iter().collect(),
            address: advertise,
            capacity: Some(Capacity {
                instance_slots: limits.max_instances,
                memory_bytes: u64::from(limits.max_instances)
                    .saturating_mul(limits.memory_limit_bytes),
            }),
            engine: runtime.engine_id().to_owned(),
            warm_digests: Vec::new(),
        };
        let (routes_wanted, wanted) = watch::channel(None);
        let mut leases: Vec<JoinHandle<()>> = coordinators
            .iter()
            .enumerate()
            .map(|(index, coordinator)| {
                tokio::spawn(
                    LeaseHolder {
                        coordinator: coordinator.clone(),
                        registration: registration.clone(),
                        runtime: Arc::clone(&runtime),
                        load: Arc::clone(&load),
                        warm: Arc::clone(&warm),
                        node_ids: node_id_sender.clone(),
                        index,
                        warm_seen: AtomicU64::new(0),
                        routes_wanted: routes_wanted.clone(),
                    }
                    .run(stopped.clone()),
                )
            })
            .collect();
        leases.push(tokio::spawn(routes.follow(
            Arc::clone(&coordinators),
            wanted,
            stopped.clone(),
        )));
        leases.push(tokio::spawn(
            Forwarder::new(
                Arc::clone(&outbox),
                Arc::clone(&coordinators),
                config.name.clone(),
            )
            .when_leased(node_ids.clone())
            .run(stopped.clone()),
        ));
        Ok(Self {
            local_addr,
            ingress_addr,
            ingress,
            outbox,
            runtime,
            node_ids,
            stop,
            serving,
            leases,
        })
    }

    /// The address the node listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address of the node's own ingress, when it serves one.
    pub fn ingress_addr(&self) -> Option<SocketAddr> {
        self.ingress_addr
    }

    /// The runtime, for its compile-cache use.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// Waits until the node holds a lease and returns its id (the first coordinator's to
    /// answer, when there are several).
    pub async fn registered(&mut self) -> anyhow::Result<String> {
        let ids = self
            .node_ids
            .wait_for(|ids| ids.iter().any(|id| !id.is_empty()))
            .await
            .context("the node stopped before registering")?;
        Ok(ids
            .iter()
            .find(|id| !id.is_empty())
            .cloned()
            .unwrap_or_default())
    }

    /// Gives up the lease, stops taking connections and waits for invocations in flight.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        for lease in self.leases {
            lease.await.context("the lease task failed")?;
        }
        if let Some(ingress) = self.ingress {
            ingress
                .await
                .context("the ingress task failed")?
                .context("the ingress failed")?;
        }
        // What the ingress recorded last is on disk before the process ends.
        self.outbox.close().await;
        self.serving
            .await
            .context("the server task failed")?
            .context("the listener failed")
    }
}

/// The outbox's use on `/metrics`.
fn observe_outbox(metrics: &Registry, outbox: &Arc<Outbox>) {
    let stats = |read: fn(&crate::cluster::outbox::OutboxStats) -> u64| {
        let outbox = Arc::clone(outbox);
        move || i64::try_from(read(&outbox.stats())).unwrap_or(i64::MAX)
    };
    metrics::sampled_gauge(
        metrics,
        "nexus_edge_outbox_entries",
        "Entries in the outbox waiting to reach a coordinator.",
        stats(|stats| stats.entries),
    );
    metrics::sampled_gauge(
        metrics,
        "nexus_edge_outbox_bytes",
        "Bytes in the outbox waiting to reach a coordinator.",
        stats(|stats| stats.bytes),
    );
    let outbox_for_dropped = Arc::clone(outbox);
    metrics::SampledCounter::register(
        metrics,
        "nexus_edge_outbox_dropped_events_total",
        "Events the full outbox could not keep.",
        move || outbox_for_dropped.stats().dropped,
    );
    let outbox = Arc::clone(outbox);
    metrics::SampledCounter::register(
        metrics,
        "nexus_edge_outbox_forwarded_total",
        "Outbox entries a coordinator recorded.",
        move || outbox.stats().forwarded,
    );
}

/// Why a gRPC call must be refused: its caller is not `caller` (the coordinator).
fn refuse<B>(request: &http::Request<B>, caller: &SpiffeId) -> Option<tonic::Status> {
    let Some(certificates) = request.extensions().get::<PeerCertificates>() else {
        return Some(tonic::Status::unauthenticated("mutual TLS is required"));
    };
    match peer_id(&certificates.0) {
        Ok(peer) if &peer == caller => None,
        Ok(peer) => Some(tonic::Status::permission_denied(format!(
            "{peer} may not call this node; only {caller} may"
        ))),
        Err(error) => Some(tonic::Status::unauthenticated(error.to_string())),
    }
}

fn is_grpc<B>(request: &http::Request<B>) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
}

/// `/healthz`, `/readyz` and `/metrics`.
struct Endpoints {
    metrics: Registry,
    load: Arc<NodeLoad>,
    node_ids: watch::Receiver<Vec<String>>,
}

impl Endpoints {
    fn answer(&self, path: &str) -> Response<Full<Bytes>> {
        let (status, text) = match path {
            "/healthz" => (StatusCode::OK, "ok\n".to_owned()),
            "/readyz" if self.load.draining() => {
                (StatusCode::SERVICE_UNAVAILABLE, "draining\n".to_owned())
            }
            "/readyz" if self.node_ids.borrow().iter().all(String::is_empty) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "not registered with the coordinator\n".to_owned(),
            ),
            "/readyz" => (StatusCode::OK, "ok\n".to_owned()),
            "/metrics" => (StatusCode::OK, metrics::render(&self.metrics)),
            _ => (StatusCode::NOT_FOUND, "not found\n".to_owned()),
        };
        let mut response = Response::new(Full::new(Bytes::from(text)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static(metrics::CONTENT_TYPE),
        );
        response
    }
}
