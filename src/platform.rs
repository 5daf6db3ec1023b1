//! The embedded platform: one Spin app, one runtime, one ingress, in this process.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use futures::future::BoxFuture;
use nexus_edge::kv::{KvBackend, start_runtime};
use nexus_edge::routing::Router;
use nexus_edge::{IngressConfig, ServedApp};
use nexus_proto::app::HttpRoute;
use nexus_runtime::{AppVariables, Limits, Runtime, RuntimeConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Everything `nexus up` needs to start.
#[derive(Debug, Clone)]
pub struct PlatformConfig {
    /// The Spin manifest to serve.
    pub manifest: PathBuf,
    /// Where the ingress listens; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Key-value backend.
    pub kv: KvBackend,
    /// Limits applied to every invocation.
    pub limits: Limits,
    /// Where compiled components are kept between runs (see [`RuntimeConfig::compile_cache`]).
    pub compile_cache: Option<PathBuf>,
    /// Connection limits of the ingress.
    pub ingress: IngressConfig,
    /// The environment the app's variables are read from (`SPIN_VARIABLE_*`).
    pub environment: Vec<(String, String)>,
    /// Vault, for variables marked `secret = true` the environment does not have.
    pub vault: Option<Arc<nexus_secrets::SecretStore>>,
    /// The directory for per-app state (see [`RuntimeConfig::state_dir`]).
    pub state_dir: Option<PathBuf>,
}

/// A running platform. Dropping it without [`Platform::shutdown`] stops serving abruptly.
pub struct Platform {
    local_addr: SocketAddr,
    routes: Vec<(String, String)>,
    runtime: Arc<Runtime>,
    serving: ServerTask<std::io::Result<()>>,
}

impl Platform {
    /// Loads the manifest, prepares every component, binds the listener and starts serving.
    pub async fn start(config: PlatformConfig) -> anyhow::Result<Self> {
        let loaded = nexus_manifest::load(&config.manifest)
            .with_context(|| format!("failed to load {}", config.manifest.display()))?;
        let runtime = start_runtime(
            RuntimeConfig {
                limits: config.limits.clone(),
                compile_cache: config.compile_cache.clone(),
                state_dir: config.state_dir.clone(),
                baseline_tier: false,
            },
            &config.kv,
        )
        .await?;
        let source =
            nexus_edge::variables::source(config.environment.iter().cloned(), config.vault);
        let variables = AppVariables::read(&loaded.app, source)
            .await
            .context("failed to read the app's variables")?;
        let app = runtime
            .load_app(&loaded.app, &loaded.artifacts, &variables)
            .context("failed to load the app")?;
        let router = Router::build(&loaded.app).context("failed to build the routes")?;
        let routes = loaded
            .app
            .http_triggers
            .iter()
            .filter_map(|trigger| match &trigger.route {
                HttpRoute::Path(route) => Some((route.clone(), trigger.component.clone())),
                HttpRoute::Private => None,
            })
            .collect();
        let (listener, local_addr) = bind(config.listen).await?;
        let served = ServedApp::new(app, router);
        let serving =
            ServerTask::spawn(|stop| nexus_edge::serve(listener, served, config.ingress, stop));
        Ok(Self {
            local_addr,
            routes,
            runtime,
            serving,
        })
    }

    /// The address the ingress listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `(route, component id)` for every public route, in the order they were declared.
    pub fn routes(&self) -> &[(String, String)] {
        &self.routes
    }

    /// The runtime, for inspection (free slots, queued invocations).
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Stops accepting connections and waits for in-flight requests to finish.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.serving.stop().await?.context("the ingress failed")
    }
}

/// A server running on its own task until told to stop. Dropped without
/// [`ServerTask::stop`], the server stops abruptly.
pub(crate) struct ServerTask<T> {
    shutdown: oneshot::Sender<()>,
    task: JoinHandle<T>,
}

impl<T: Send + 'static> ServerTask<T> {
    /// Spawns the server `serve` builds from the future that resolves when it must stop.
    pub(crate) fn spawn<F>(serve: impl FnOnce(BoxFuture<'static, ()>) -> F) -> Self
    where
        F: Future<Output = T> + Send + 'static,
    {
        let (shutdown, stop) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(Box::pin(async move {
            let _ = stop.await;
        })));
        Self { shutdown, task }
    }

    /// Tells the server to stop and waits until it has.
    pub(crate) async fn stop(self) -> anyhow::Result<T> {
        let _ = self.shutdown.send(());
        self.task.await.context("the server task failed")
    }
}

/// A listener on `address`, and the address it got (port 0 picks a free port).
pub(crate) async fn bind(address: SocketAddr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("failed to listen on {address}"))?;
    let local_addr = listener
        .local_addr()
        .context("failed to read the listen address")?;
    Ok((listener, local_addr))
}
