//! The embedded platform: the coordinator with a runtime in this process. Invocations take the
//! cluster's path (trigger → alias → version → [`Dispatch`]); only the transport is a function
//! call, to an [`AppHost`] that reads component bytes from the coordinator's blob directory.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::body::Body;
use http::Response;
use nexus_coordinator::api::AppState;
use nexus_coordinator::cluster::NodeView;
use nexus_coordinator::dispatch::{Dispatch, DispatchFuture, Invocation, Target};
use nexus_coordinator::error::ApiError;
use nexus_coordinator::functions::DirectoryBlobStore;
use nexus_coordinator::server::{Coordinator, CoordinatorConfig};
use nexus_edge::errors::EdgeError;
use nexus_edge::{AppHost, Deployment};
use nexus_runtime::{AgentContext, Limits, Runtime, RuntimeConfig};
use nexus_store::FunctionVersionId;

use crate::platform::{ServerTask, bind};
use nexus_edge::kv::{KvBackend, start_runtime};

/// Runs invocations on a runtime in this process.
pub struct InProcessDispatch {
    host: Arc<AppHost>,
    deployments: Arc<Mutex<HashMap<FunctionVersionId, Arc<Deployment>>>>,
}

impl InProcessDispatch {
    /// Dispatches to the apps of `host`.
    pub fn new(host: Arc<AppHost>) -> Self {
        Self {
            host,
            deployments: Arc::default(),
        }
    }

    /// A version as the node sees it: its id, and its project as the tenant of its stores.
    /// Versions are immutable, so each is described once.
    fn deployment(&self, target: &Target) -> Arc<Deployment> {
        let mut deployments = self
            .deployments
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        Arc::clone(deployments.entry(target.version_id).or_insert_with(|| {
            Arc::new(Deployment {
                id: target.version_id.to_string().into(),
                namespace: target.project_id.to_string().into(),
                app: Arc::clone(&target.app),
            })
        }))
    }
}

fn api_error(error: &EdgeError) -> ApiError {
    ApiError::from_runtime(
        error.status(),
        error.code(),
        error.message(),
        error.retry_after(),
    )
}

impl Dispatch for InProcessDispatch {
    fn invoke(&self, invocation: Invocation) -> DispatchFuture<Response<Body>> {
        let host = Arc::clone(&self.host);
        let deployment = self.deployment(&invocation.target);
        Box::pin(async move {
            let Invocation {
                prefix,
                client,
                mut request,
                agent,
                logs,
                ..
            } = invocation;
            if let Some(agent) = agent {
                request
                    .extensions_mut()
                    .insert(AgentContext(agent.to_string().into()));
            }
            if let Some(logs) = logs {
                request.extensions_mut().insert(logs);
            }
            host.invoke(&deployment, &prefix, request, client)
                .await
                .map(|response| response.map(Body::new))
                .map_err(|error| api_error(&error))
        })
    }

    fn prepare(&self, target: Arc<Target>) -> DispatchFuture<()> {
        let host = Arc::clone(&self.host);
        let deployment = self.deployment(&target);
        Box::pin(async move {
            host.app(&deployment)
                .await
                .map(drop)
                .map_err(|error| api_error(&error))
        })
    }

    /// This process is the one node: any `min_warm` keeps the version loaded here.
    fn keep_warm(&self, target: Arc<Target>, period: std::time::Duration) -> DispatchFuture<()> {
        let host = Arc::clone(&self.host);
        let deployment = self.deployment(&target);
        Box::pin(async move {
            host.keep_warm(&deployment, period)
                .await
                .map_err(|error| api_error(&error))
        })
    }
}

/// Everything the embedded platform needs to start.
#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// The coordinator: database, signing key, state directory (component blobs), listener
    /// limits.
    pub coordinator: CoordinatorConfig,
    /// Where the API and the HTTP trigger listen; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where Spin key-value data lives.
    pub kv: KvBackend,
    /// Limits applied to every invocation.
    pub limits: Limits,
    /// Where compiled components are kept between runs.
    pub compile_cache: Option<PathBuf>,
    /// Serve new components on baseline code while optimized code compiles (see
    /// [`RuntimeConfig::baseline_tier`]).
    pub baseline_tier: bool,
    /// The environment application variables are read from (`SPIN_VARIABLE_*`); secret
    /// ones also from the coordinator's Vault, when it has one.
    pub environment: Vec<(String, String)>,
    /// Apps no request used for this long are unloaded and their compiled code dropped
    /// (scale to zero), unless a function's `min_warm` keeps them; `None` keeps them all.
    pub unload_idle_after: Option<std::time::Duration>,
}

impl EmbeddedConfig {
    /// Everything under `dir` (SQLite database, signing key, blobs), key-value data in memory,
    /// a free port on loopback, default limits: what tests and benchmarks start.
    pub fn in_directory(dir: &std::path::Path) -> Self {
        Self {
            coordinator: CoordinatorConfig {
                database_url: format!("sqlite://{}", dir.join("nexus.db").display()),
                signing_key_file: dir.join("signing-key"),
                state_dir: dir.to_owned(),
                limits: nexus_http::ServerLimits::default(),
                deploy: nexus_coordinator::functions::DeployLimits::default(),
                event_bus: None,
                invocation_queue: None,
                invocation_stream: None,
                invocations: nexus_coordinator::invocations::AsyncConfig::default(),
                rate_limits: nexus_coordinator::limits::RateLimitConfig::default(),
                https: None,
                vault: None,
            },
            listen: SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 0)),
            kv: KvBackend::Memory,
            limits: Limits::default(),
            compile_cache: None,
            baseline_tier: true,
            environment: Vec::new(),
            unload_idle_after: None,
        }
    }
}

/// A running embedded platform.
pub struct Embedded {
    local_addr: SocketAddr,
    state: AppState,
    host: Arc<AppHost>,
    serving: ServerTask<()>,
}

impl Embedded {
    /// Opens the database, starts the runtime, binds the listener and starts serving.
    pub async fn start(config: EmbeddedConfig) -> anyhow::Result<Self> {
        let runtime = start_runtime(
            RuntimeConfig {
                limits: config.limits,
                compile_cache: config.compile_cache,
                state_dir: Some(config.coordinator.state_dir.clone()),
                baseline_tier: config.baseline_tier,
            },
            &config.kv,
        )
        .await?;
        let blobs = Arc::new(DirectoryBlobStore::new(config.coordinator.blob_dir()));
        // One Vault store (token, cache) for the coordinator's secrets and the apps' variables.
        let variables =
            nexus_edge::variables::source(config.environment, config.coordinator.vault.clone());
        let host = Arc::new(AppHost::new(Arc::clone(&runtime), blobs, variables));
        if let Some(idle) = config.unload_idle_after {
            host.unload_when_idle(idle, |_| {});
        }
        let dispatch = Arc::new(InProcessDispatch::new(Arc::clone(&host)));
        let coordinator = Coordinator::open(config.coordinator, dispatch)
            .await
            .context("failed to start the coordinator")?
            .with_context(Arc::clone(runtime.context()))
            .with_local_node(local_node(&runtime))
            .with_validator(runtime);
        let (listener, local_addr) = bind(config.listen).await?;
        let state = coordinator.state().clone();
        state.metrics.include(host.metrics().registry().clone());
        let serving = ServerTask::spawn(|stop| coordinator.serve(listener, stop));
        Ok(Self {
            local_addr,
            state,
            host,
            serving,
        })
    }

    /// The address the API and the trigger listen on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `http://address`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// The coordinator's services, for work done in process.
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The apps loaded on the in-process runtime.
    pub fn host(&self) -> &AppHost {
        &self.host
    }

    /// Stops accepting connections and waits for in-flight requests to finish.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.serving.stop().await
    }
}

/// The process as the one node its projects run on.
fn local_node(runtime: &Arc<Runtime>) -> nexus_coordinator::api::LocalNode {
    let runtime = Arc::clone(runtime);
    Arc::new(move || {
        let slots = |count: usize| u32::try_from(count).unwrap_or(u32::MAX);
        NodeView::in_process(
            runtime.limits().max_instances,
            slots(runtime.free_instance_slots()),
            runtime.queued_invocations(),
            runtime.engine_id(),
        )
    })
}
