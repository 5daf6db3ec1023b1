//! The embedded platform: one Spin app, one runtime, one ingress, in this process.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use nexus_context::{ContextStore, MemoryStore, RedisStore, SqliteStore};
use nexus_edge::routing::Router;
use nexus_edge::{IngressConfig, ServedApp};
use nexus_proto::app::HttpRoute;
use nexus_runtime::{EnvVariables, Limits, Runtime, RuntimeConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Prefix of the Redis keys `nexus up --kv redis://…` writes.
pub const REDIS_KEY_PREFIX: &str = "nexus:kv:";

/// Where Spin key-value data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvBackend {
    /// A SQLite file: survives restarts, needs nothing running.
    Sqlite(PathBuf),
    /// A Redis server at this URL.
    Redis(String),
    /// Process memory: gone when the process exits.
    Memory,
}

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
    /// The directory for per-app state (see [`RuntimeConfig::state_dir`]).
    pub state_dir: Option<PathBuf>,
}

/// A running platform. Dropping it without [`Platform::shutdown`] stops serving abruptly.
pub struct Platform {
    local_addr: SocketAddr,
    routes: Vec<(String, String)>,
    runtime: Arc<Runtime>,
    shutdown: Option<oneshot::Sender<()>>,
    serving: JoinHandle<std::io::Result<()>>,
}

impl Platform {
    /// Loads the manifest, prepares every component, binds the listener and starts serving.
    pub async fn start(config: PlatformConfig) -> anyhow::Result<Self> {
        let loaded = nexus_manifest::load(&config.manifest)
            .with_context(|| format!("failed to load {}", config.manifest.display()))?;
        let context = open_context_store(&config.kv).await?;
        let runtime = Arc::new(
            Runtime::new(
                RuntimeConfig {
                    limits: config.limits.clone(),
                    compile_cache: config.compile_cache.clone(),
                    state_dir: config.state_dir.clone(),
                },
                context,
            )
            .context("failed to start the runtime")?,
        );
        let variables = EnvVariables::from_env(config.environment.iter().cloned());
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
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("failed to listen on {}", config.listen))?;
        let local_addr = listener
            .local_addr()
            .context("failed to read the listen address")?;
        let served = ServedApp::new(app, router);
        let (shutdown, stop) = oneshot::channel();
        let serving = tokio::spawn(nexus_edge::serve(
            listener,
            served,
            config.ingress,
            async move {
                let _ = stop.await;
            },
        ));
        Ok(Self {
            local_addr,
            routes,
            runtime,
            shutdown: Some(shutdown),
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
    pub async fn shutdown(mut self) -> anyhow::Result<()> {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        (&mut self.serving)
            .await
            .context("the ingress task failed")?
            .context("the ingress failed")
    }
}

async fn open_context_store(backend: &KvBackend) -> anyhow::Result<Arc<dyn ContextStore>> {
    Ok(match backend {
        KvBackend::Sqlite(path) => Arc::new(SqliteStore::open(path).await.with_context(|| {
            format!("failed to open the key-value database {}", path.display())
        })?),
        KvBackend::Redis(url) => Arc::new(
            RedisStore::connect(url, REDIS_KEY_PREFIX)
                .await
                .context("failed to connect to the key-value Redis")?,
        ),
        KvBackend::Memory => Arc::new(MemoryStore::new()),
    })
}
