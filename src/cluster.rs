//! The coordinator of a cluster: the API and the HTTP trigger, with invocations dispatched to
//! the edge nodes (`nexus-edge`) that join it with the join token.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use nexus_coordinator::cluster::{Cluster, SchedulerConfig, join_token};
use nexus_coordinator::server::{Coordinator, CoordinatorConfig};
use nexus_edge::kv::{KvBackend, open_context_store};
use nexus_runtime::Validator;

use crate::platform::{ServerTask, bind};

/// Everything a cluster coordinator needs to start.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// Database, signing key, state directory, listener limits.
    pub coordinator: CoordinatorConfig,
    /// Where the API, the trigger and `NodeService` listen.
    pub listen: SocketAddr,
    /// The file holding the join token; created (random, owner-only) when missing.
    pub token_file: PathBuf,
    /// Nodes in this region are preferred when all else is equal.
    pub region: Option<String>,
    /// Admission: queue sizes per priority class, longest wait.
    pub scheduler: SchedulerConfig,
    /// The key-value store the nodes share, for agents' context through the API; without
    /// one the API answers `context_unavailable`.
    pub kv: Option<KvBackend>,
}

/// A running cluster coordinator.
pub struct ClusterCoordinator {
    local_addr: SocketAddr,
    token: String,
    cluster: Arc<Cluster>,
    serving: ServerTask<()>,
}

impl ClusterCoordinator {
    /// Opens the database, binds the listener and starts serving.
    pub async fn start(config: ClusterConfig) -> anyhow::Result<Self> {
        let token = join_token(&config.token_file).with_context(|| {
            format!(
                "failed to read or create the join token {}",
                config.token_file.display()
            )
        })?;
        let cluster = Arc::new(Cluster::new(token.clone()));
        let validator = Validator::new().context("failed to start the component validator")?;
        let dispatch = cluster.dispatch(config.region, config.scheduler);
        let scheduler = dispatch.scheduler();
        let coordinator = Coordinator::open(config.coordinator, Arc::new(dispatch))
            .await
            .context("failed to start the coordinator")?;
        coordinator.state().metrics.observe_scheduler(scheduler);
        let coordinator = coordinator
            .with_validator(Arc::new(validator))
            .with_cluster(Arc::clone(&cluster))?;
        let coordinator = match &config.kv {
            Some(kv) => coordinator.with_context(open_context_store(kv).await?),
            None => coordinator,
        };
        let (listener, local_addr) = bind(config.listen).await?;
        let closing = Arc::clone(&cluster);
        let serving = ServerTask::spawn(|stop| {
            coordinator.serve(listener, async move {
                stop.await;
                closing.close();
            })
        });
        Ok(Self {
            local_addr,
            token,
            cluster,
            serving,
        })
    }

    /// `http://address`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The token nodes join with (and operators administer them with).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// The cluster's nodes.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// Stops accepting connections and waits for in-flight requests to finish.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.serving.stop().await
    }
}
