//! Running the coordinator: its database, its signing key, and its API on a listener with the
//! limits every SirsiNexus listener has.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use std::convert::Infallible;

use axum::Extension;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::service::{Service as _, service_fn};
use hyper_util::service::TowerToHyperService;
use nexus_http::ServerLimits;
use nexus_identity::{CertificateFiles, Peers, https_acceptor};
use nexus_store::Store;
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::api::{AppState, router};
use crate::auth::access_token::AccessTokenKeys;
use crate::cloud::PlacedDispatch;
use crate::cluster::Cluster;
use crate::cluster::edge_sync::EdgeSync;
use crate::cluster::routes::RoutingTable;
use crate::dispatch::Dispatch;
use crate::events::{DEFAULT_RETAINED, EventBus, InProcessBus, RedisBus};
use crate::functions::{ComponentValidator, DeployLimits, DirectoryBlobStore};
use crate::invocations::{AsyncConfig, InProcessQueue, InvocationQueue, RedisQueue};
use crate::limits::{RateLimitConfig, RateLimits};
use crate::{grpc, trigger};

/// The Redis Stream the replicas' events go to.
pub const EVENT_STREAM: &str = "nexus:events";
/// The Redis Stream that announces asynchronous invocations to the replicas' workers.
pub const INVOCATION_STREAM: &str = "nexus:invocations";

/// What the coordinator runs with.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// `sqlite://PATH`, a file path, or `postgres://…`.
    pub database_url: String,
    /// The file holding the access-token signing secret; created (mode 0600) when missing,
    /// so tokens survive a restart. Replicas must share it.
    pub signing_key_file: PathBuf,
    /// The directory for the coordinator's files: uploaded components under `blobs/`.
    pub state_dir: PathBuf,
    /// The listener's limits.
    pub limits: ServerLimits,
    /// Caps on deploys.
    pub deploy: DeployLimits,
    /// The Redis (`redis://…`) whose stream carries the events of every replica; without one,
    /// events stay in this process.
    pub event_bus: Option<String>,
    /// The Redis (`redis://…`) whose stream announces asynchronous invocations to the workers
    /// of every replica; without one, they are announced in this process.
    pub invocation_queue: Option<String>,
    /// The stream's key (replicas of one coordinator share it): [`INVOCATION_STREAM`] unless
    /// set.
    pub invocation_stream: Option<String>,
    /// How asynchronous invocations run.
    pub invocations: AsyncConfig,
    /// Abuse limits.
    pub rate_limits: RateLimitConfig,
    /// The API's and the trigger's certificate: served over TLS when set.
    pub https: Option<CertificateFiles>,
    /// Vault, for the secrets named in functions' settings that the environment does not
    /// hold.
    pub vault: Option<Arc<nexus_secrets::SecretStore>>,
}

/// Why the coordinator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] nexus_store::Error),
    /// The cluster's services could not be set up.
    #[error("cluster: {0}")]
    Cluster(String),
    /// The event stream's Redis could not be reached.
    #[error("event bus: {0}")]
    Events(String),
    /// The invocation stream's Redis could not be reached.
    #[error("invocation queue: {0}")]
    Queue(String),
    /// The listener's certificate could not be loaded.
    #[error("TLS: {0}")]
    Tls(#[from] nexus_identity::IdentityError),
    /// The signing key could not be read or created.
    #[error("signing key {path}: {reason}")]
    SigningKey {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// A coordinator ready to serve: database migrated, signing key loaded, services built.
pub struct Coordinator {
    state: AppState,
    limits: ServerLimits,
    grpc: Option<tonic::service::Routes>,
    /// `NodeService` over mutual TLS, apart from the API.
    cluster_service: Option<ClusterService>,
    /// TLS for the API's listener.
    tls: Option<TlsAcceptor>,
    blobs: Arc<DirectoryBlobStore>,
}

/// The cluster's `NodeService` on a listener of its own that takes mutual TLS only, each node
/// proving an identity of the trust domain.
pub struct ClusterService {
    routes: tonic::service::Routes,
    acceptor: TlsAcceptor,
    limits: ServerLimits,
}

impl ClusterService {
    /// Serves nodes on `listener` until `shutdown` resolves.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let grpc = self.routes.prepare();
        nexus_http::serve_with(
            listener,
            &self.limits,
            Some(self.acceptor),
            shutdown,
            |_client| {
                let grpc = grpc.clone();
                service_fn(move |request: Request<Incoming>| {
                    let mut grpc = grpc.clone();
                    async move {
                        let response =
                            Box::pin(tonic::codegen::Service::call(&mut grpc, request)).await?;
                        Ok::<_, Infallible>(response.map(Body::new))
                    }
                })
            },
        )
        .await
    }
}

impl Coordinator {
    /// Opens the database (migrating it) and the signing key; invocations go to `dispatch`, or
    /// to the cloud target their function's placement names.
    pub async fn open(
        config: CoordinatorConfig,
        dispatch: Arc<dyn Dispatch>,
    ) -> Result<Self, StartError> {
        let store = Store::connect(&config.database_url).await?;
        store.migrate().await?;
        let keys = signing_keys(&config.signing_key_file)?;
        let blobs = Arc::new(DirectoryBlobStore::new(config.blob_dir()));
        let events: Arc<dyn EventBus> = match &config.event_bus {
            Some(url) => Arc::new(
                RedisBus::connect(url, EVENT_STREAM, DEFAULT_RETAINED)
                    .await
                    .map_err(|error| StartError::Events(error.to_string()))?,
            ),
            None => Arc::new(InProcessBus::default()),
        };
        let queue: Arc<dyn InvocationQueue> = match &config.invocation_queue {
            Some(url) => Arc::new(
                RedisQueue::connect(
                    url,
                    config
                        .invocation_stream
                        .as_deref()
                        .unwrap_or(INVOCATION_STREAM),
                    &uuid::Uuid::new_v4().to_string(),
                )
                .await
                .map_err(|error| StartError::Queue(error.to_string()))?,
            ),
            None => Arc::new(InProcessQueue::default()),
        };
        let state = AppState::new(
            Arc::new(store),
            keys,
            Arc::clone(&blobs) as _,
            Arc::new(
                PlacedDispatch::new(dispatch)
                    .with_secrets(crate::secrets::Secrets::new(config.vault.clone())),
            ),
            events,
            queue,
            config.invocations.clone(),
        )
        .with_deploy_limits(config.deploy);
        let mut state = state;
        state.limits = Arc::new(RateLimits::new(config.rate_limits));
        Ok(Self {
            state,
            limits: config.limits,
            grpc: None,
            cluster_service: None,
            tls: config
                .https
                .map(|files| https_acceptor(files, nexus_identity::DEFAULT_RELOAD_INTERVAL))
                .transpose()?,
            blobs,
        })
    }

    /// Runs a cluster: nodes join through `NodeService` on the API's listener, or, when the
    /// cluster has an identity, on the listener [`Self::take_cluster_service`] serves;
    /// operators list and drain them under `/v1/nodes`.
    pub fn with_cluster(mut self, cluster: Arc<Cluster>) -> Result<Self, StartError> {
        let sync = EdgeSync {
            routes: Arc::new(RoutingTable::new(
                Arc::clone(&self.state.store),
                Arc::clone(&self.state.triggers),
            )),
            invocations: self.state.invocations.clone(),
            events: Arc::clone(&self.state.events),
        };
        let routes = cluster
            .routes(Arc::clone(&self.blobs) as _, sync)
            .map_err(|error| StartError::Cluster(error.to_string()))?;
        match cluster.identity() {
            None => self.grpc = Some(routes),
            Some(identity) => {
                let acceptor = identity
                    .acceptor(Peers::Edges)
                    .map_err(|error| StartError::Cluster(error.to_string()))?;
                self.cluster_service = Some(ClusterService {
                    routes,
                    acceptor,
                    limits: self.limits.clone(),
                });
            }
        }
        cluster
            .registry()
            .publish_to(Arc::clone(&self.state.events));
        self.state.metrics.observe_nodes(cluster.registry());
        self.state.cluster = Some(cluster);
        Ok(self)
    }

    /// The cluster's mutual-TLS listener's service, when the cluster has an identity.
    pub fn take_cluster_service(&mut self) -> Option<ClusterService> {
        self.cluster_service.take()
    }

    /// Serves the API and the trigger over TLS.
    #[must_use]
    pub fn with_tls(mut self, acceptor: TlsAcceptor) -> Self {
        self.tls = Some(acceptor);
        self
    }

    /// Validates deployed components with `validator` (see [`crate::functions::FunctionService::with_validator`]).
    #[must_use]
    pub fn with_validator(mut self, validator: Arc<dyn ComponentValidator>) -> Self {
        self.state.functions = self.state.functions.with_validator(validator);
        self
    }

    /// Reads and writes agents' context in `context`, the store the functions open.
    #[must_use]
    pub fn with_context(mut self, context: Arc<dyn nexus_context::ContextStore>) -> Self {
        self.state.agents = self.state.agents.with_context(context);
        self
    }

    /// Shows `node` as the one node of `/v1/projects/{p}/nodes`: a coordinator that runs
    /// functions in its own process.
    #[must_use]
    pub fn with_local_node(mut self, node: crate::api::LocalNode) -> Self {
        self.state.local_node = Some(node);
        self
    }

    /// The services, for work done in process (the embedded platform's first-start setup).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves the API and the HTTP trigger on `listener` until `shutdown` resolves, then waits
    /// for requests in flight, and gives the leader lease up. Runs asynchronous invocations
    /// meanwhile, and the singleton work while it leads.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()>) {
        self.state.start_workers();
        let api = router(self.state.clone());
        let grpc = grpc::routes(&self.state, self.grpc).prepare();
        let state = Arc::new(self.state);
        let served = nexus_http::serve_with(listener, &self.limits, self.tls, shutdown, |client| {
            let api = TowerToHyperService::new(api.clone().layer(Extension(ConnectInfo(client))));
            let state = Arc::clone(&state);
            let grpc = grpc.clone();
            service_fn(move |request: Request<Incoming>| {
                let (api, state, mut grpc) = (api.clone(), Arc::clone(&state), grpc.clone());
                // Each kind of request is boxed: hyper moves this future as it runs it, and
                // unboxed it would be as large as the largest of the three.
                async move {
                    if grpc::is_grpc(&request) {
                        let response =
                            Box::pin(tonic::codegen::Service::call(&mut grpc, request)).await?;
                        return Ok(response.map(Body::new));
                    }
                    if trigger::is_trigger_path(request.uri().path()) {
                        let request = request.map(Body::new);
                        return Ok::<_, Infallible>(
                            Box::pin(trigger::serve(&state, request, client)).await,
                        );
                    }
                    Box::pin(api.call(request)).await
                }
            })
        })
        .await;
        if let Err(error) = served {
            tracing::error!(%error, "the coordinator's listener failed");
        }
        // Handed on now rather than when the lease runs out.
        state.leadership.release().await;
    }
}

impl CoordinatorConfig {
    /// Where uploaded component bytes are kept, by digest.
    pub fn blob_dir(&self) -> PathBuf {
        self.state_dir.join("blobs")
    }
}

/// The signing key in `path`, created when missing. Its id is derived from the secret, so
/// every replica sharing the file names it alike.
fn signing_keys(path: &Path) -> Result<AccessTokenKeys, StartError> {
    let failed = |reason: String| StartError::SigningKey {
        path: path.to_owned(),
        reason,
    };
    let secret = match std::fs::read_to_string(path) {
        Ok(text) => hex::decode(text.trim()).map_err(|error| failed(error.to_string()))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|error| failed(error.to_string()))?;
            write_private(path, hex::encode(secret).as_bytes())
                .map_err(|error| failed(error.to_string()))?;
            secret.to_vec()
        }
        Err(error) => return Err(failed(error.to_string())),
    };
    if secret.len() < 32 {
        return Err(failed("the secret must be at least 32 bytes".to_owned()));
    }
    let kid = hex::encode(&Sha256::digest(&secret)[..6]);
    Ok(AccessTokenKeys::new(&kid, &secret))
}

/// Writes `text` to a new file only its owner can read; fails if the file exists.
pub fn write_private(path: &Path, text: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text)
}
