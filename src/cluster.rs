//! The coordinator of a cluster: the API and the HTTP trigger, with invocations dispatched to
//! the edge nodes (`nexus-edge`) that join it with the join token.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use nexus_coordinator::cluster::{Cluster, SchedulerConfig, join_token};
use nexus_coordinator::server::{Coordinator, CoordinatorConfig};
use nexus_edge::kv::{KvBackend, open_context_store};
use nexus_identity::{Identity, SpiffeId, SvidPaths};
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
    /// The coordinator's SPIFFE identity (`spiffe://<trust domain>/coordinator`): nodes then
    /// join on [`Self::cluster_listen`] over mutual TLS only, each proving
    /// `…/edge/<its name>`, and are called the same way.
    pub identity: Option<SvidPaths>,
    /// Where nodes join when the cluster has an identity.
    pub cluster_listen: SocketAddr,
    /// The nodes' slot use the autoscaling signal aims at.
    pub target_utilization: f64,
}

/// A running cluster coordinator.
pub struct ClusterCoordinator {
    local_addr: SocketAddr,
    cluster_addr: Option<SocketAddr>,
    token: String,
    cluster: Arc<Cluster>,
    serving: ServerTask<()>,
    cluster_serving: Option<ServerTask<std::io::Result<()>>>,
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
        let mut cluster = Cluster::new(token.clone());
        if let Some(paths) = config.identity {
            let identity = Identity::load(paths, nexus_identity::DEFAULT_RELOAD_INTERVAL)
                .context("failed to load the coordinator's identity")?;
            let id = identity.id();
            if id != SpiffeId::coordinator(id.trust_domain())? {
                anyhow::bail!(
                    "the coordinator's SVID names {id}, not spiffe://{}/coordinator",
                    id.trust_domain()
                );
            }
            cluster = cluster.with_identity(identity);
        }
        let cluster = Arc::new(cluster);
        let validator = Validator::new().context("failed to start the component validator")?;
        let dispatch = cluster.dispatch(config.region, config.scheduler);
        let scheduler = dispatch.scheduler();
        let coordinator = Coordinator::open(config.coordinator, Arc::new(dispatch))
            .await
            .context("failed to start the coordinator")?;
        let metrics = &coordinator.state().metrics;
        metrics.observe_autoscaling(
            cluster.registry(),
            scheduler.clone(),
            config.target_utilization,
        );
        metrics.observe_scheduler(scheduler);
        let coordinator = coordinator
            .with_validator(Arc::new(validator))
            .with_cluster(Arc::clone(&cluster))?;
        let mut coordinator = match &config.kv {
            Some(kv) => coordinator.with_context(open_context_store(kv).await?),
            None => coordinator,
        };
        let (cluster_serving, cluster_addr) = match coordinator.take_cluster_service() {
            None => (None, None),
            Some(service) => {
                let (listener, address) = bind(config.cluster_listen).await?;
                let task = ServerTask::spawn(|stop| service.serve(listener, stop));
                (Some(task), Some(address))
            }
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
            cluster_addr,
            token,
            cluster,
            serving,
            cluster_serving,
        })
    }

    /// The API's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://address`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// `https://address` of the listener nodes join over mutual TLS, when the cluster has an
    /// identity.
    pub fn cluster_url(&self) -> Option<String> {
        self.cluster_addr
            .map(|address| format!("https://{address}"))
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
        // The API's stop ends the lease streams, which the cluster listener then need not wait for.
        self.serving.stop().await?;
        if let Some(cluster) = self.cluster_serving {
            cluster
                .stop()
                .await?
                .context("the cluster listener failed")?;
        }
        Ok(())
    }
}
