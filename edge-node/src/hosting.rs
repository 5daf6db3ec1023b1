//! The apps a runtime hosts by deployment, for a control plane that sends it requests: each is
//! loaded on first use from its resolved record and its component bytes by digest, then shared
//! by every request to that deployment.
//!
//! The embedded platform calls this in process; a remote node will call it from its invoke
//! server. Either way the app is mounted under a prefix and served exactly as the ingress
//! serves an app at the root ([`ServedApp::route_and_run`]).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use nexus_proto::{Digest, ResolvedApp};
use nexus_runtime::{
    AppVariables, ArtifactSource, GuestResponse, LoadError, Runtime, VariableSource,
    monotonic_millis,
};
use tokio::sync::OnceCell;
use tracing::Instrument as _;

use crate::errors::EdgeError;
use crate::ingress::ServedApp;
use crate::metrics::EdgeMetrics;
use crate::routing::Router;

/// One deployed app, as the control plane describes it to a node.
#[derive(Debug, Clone)]
pub struct Deployment {
    /// What the app is loaded under: the same id always means the same record and bytes
    /// (a function version id).
    pub id: Arc<str>,
    /// The tenant: the app's key-value stores and SQLite databases are this namespace's, so
    /// apps of one tenant share them and no other tenant reaches them.
    pub namespace: Arc<str>,
    /// The resolved app.
    pub app: Arc<ResolvedApp>,
}

/// How long an app idles before it is unloaded, by default: 5 minutes.
pub const DEFAULT_UNLOAD_IDLE_AFTER_SECONDS: u64 = 300;

/// Component bytes by digest, readable from any thread.
pub type Artifacts = Arc<dyn ArtifactSource + Send + Sync>;

/// Whether an invocation waited for its app to load; see [`AppHost::observe`].
#[derive(Clone, Default)]
pub struct ColdStart(Arc<AtomicBool>);

/// Loaded apps by deployment id.
pub struct AppHost {
    runtime: Arc<Runtime>,
    artifacts: Artifacts,
    variables: Arc<dyn VariableSource>,
    apps: Arc<Mutex<HashMap<Arc<str>, Arc<HostedApp>>>>,
    metrics: EdgeMetrics,
}

/// An app loaded, or being loaded, by the first request for it, with when it was last used
/// and until when it stays loaded however long it idles (on [`monotonic_millis`]'s clock).
#[derive(Default)]
struct HostedApp {
    app: OnceCell<Arc<ServedApp>>,
    used_at: AtomicU64,
    warm_until: AtomicU64,
}

/// What [`AppHost::unload_idle`] let go of.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Unloaded {
    /// Deployments no longer loaded.
    pub apps: usize,
    /// Components whose compiled code is gone.
    pub components: Vec<Digest>,
}

impl AppHost {
    /// Hosts apps on `runtime`, reading component bytes from `artifacts` and application
    /// variables from `variables`.
    pub fn new(
        runtime: Arc<Runtime>,
        artifacts: Artifacts,
        variables: Arc<dyn VariableSource>,
    ) -> Self {
        let apps: Arc<Mutex<HashMap<Arc<str>, Arc<HostedApp>>>> = Arc::default();
        let metrics = EdgeMetrics::new(&runtime);
        let loaded = Arc::clone(&apps);
        metrics.observe_loaded_apps(move || {
            loaded
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .len()
        });
        Self {
            metrics,
            runtime,
            artifacts,
            variables,
            apps,
        }
    }

    /// What this host counts, for `/metrics`.
    pub fn metrics(&self) -> &EdgeMetrics {
        &self.metrics
    }

    /// The runtime the apps run on.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The app of deployment `id` if it is loaded (not merely loading), for a request: it
    /// counts as used now.
    pub fn loaded_app(&self, id: &str) -> Option<Arc<ServedApp>> {
        let apps = self
            .apps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let hosted = apps.get(id)?;
        let app = hosted.app.get()?;
        hosted.used_at.store(monotonic_millis(), Ordering::Relaxed);
        Some(Arc::clone(app))
    }

    /// The app of `deployment`, loading it (reading, checking and compiling its components)
    /// on first use. Concurrent first requests wait for one load; a failed load is tried again
    /// by the next request.
    pub async fn app(&self, deployment: &Deployment) -> Result<Arc<ServedApp>, EdgeError> {
        self.app_for_request(deployment).await.map(|(app, _)| app)
    }

    /// The app of `deployment`, and whether the request waited for it to load (a cold start).
    async fn app_for_request(
        &self,
        deployment: &Deployment,
    ) -> Result<(Arc<ServedApp>, bool), EdgeError> {
        let hosted = {
            let mut apps = self
                .apps
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match apps.get(deployment.id.as_ref()) {
                Some(hosted) => Arc::clone(hosted),
                None => Arc::clone(apps.entry(deployment.id.clone()).or_default()),
            }
        };
        hosted.used_at.store(monotonic_millis(), Ordering::Relaxed);
        if let Some(app) = hosted.app.get() {
            return Ok((Arc::clone(app), false));
        }
        let app = hosted
            .app
            .get_or_try_init(|| async {
                let started = Instant::now();
                let app = self.load(deployment).await?;
                self.metrics.loaded(&deployment.app.name, started.elapsed());
                Ok::<_, EdgeError>(app)
            })
            .await?;
        // A load can outlast the idle period: the app counts as used once it is ready, not
        // only when it was asked for.
        hosted.used_at.store(monotonic_millis(), Ordering::Relaxed);
        Ok((Arc::clone(app), true))
    }

    async fn load(&self, deployment: &Deployment) -> Result<Arc<ServedApp>, EdgeError> {
        let mut app = ResolvedApp::clone(&deployment.app);
        app.name = deployment.namespace.to_string();
        // Secrets may come over the network: read before the blocking part of the load.
        let variables = AppVariables::read(&app, Arc::clone(&self.variables))
            .await
            .map_err(|error| match error {
                LoadError::SecretUnavailable(secret) => EdgeError::secret_unavailable(&secret),
                error => EdgeError::load_failed(&error),
            })?;
        let (runtime, artifacts) = (Arc::clone(&self.runtime), Arc::clone(&self.artifacts));
        tokio::task::spawn_blocking(move || {
            let router = Router::build(&app).map_err(|error| EdgeError::load_failed(&error))?;
            let loaded = runtime
                .load_app(&app, artifacts.as_ref(), &variables)
                .map_err(EdgeError::from_load)?;
            Ok(ServedApp::new(loaded, router))
        })
        .await
        .map_err(|error| EdgeError::internal(&error))?
    }

    /// Runs `request` on the app of `deployment` mounted at `prefix` (see
    /// [`ServedApp::route_and_run`]).
    pub async fn invoke<B>(
        &self,
        deployment: &Deployment,
        prefix: &str,
        request: Request<B>,
        client: SocketAddr,
    ) -> Result<GuestResponse, EdgeError>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        self.observe(deployment, request, |request, cold_start| async move {
            let (app, cold) = self.app_for_request(deployment).await?;
            if cold {
                self.cold_started(deployment, &cold_start);
            }
            app.route_and_run(request, client, prefix).await
        })
        .await
    }

    /// Runs `run` (which loads the app if need be, telling the [`ColdStart`] when it did, and
    /// runs `request` on it) as an invocation of `deployment`: in a server span that continues
    /// the trace the request carries (and that the guest sees as its caller, in
    /// `traceparent`), counted and timed.
    pub async fn observe<B, F, Fut>(
        &self,
        deployment: &Deployment,
        request: Request<B>,
        run: F,
    ) -> Result<GuestResponse, EdgeError>
    where
        F: FnOnce(Request<B>, ColdStart) -> Fut,
        Fut: Future<Output = Result<GuestResponse, EdgeError>>,
    {
        let span = tracing::info_span!(
            "invocation",
            otel.name = %deployment.app.name,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            faas.trigger = "http",
            faas.name = %deployment.app.name,
            faas.version = %deployment.id,
            faas.invocation_id = request
                .headers()
                .get("x-request-id")
                .and_then(|id| id.to_str().ok()),
            faas.coldstart = tracing::field::Empty,
            http.response.status_code = tracing::field::Empty,
            nexus.namespace = %deployment.namespace,
        );
        nexus_telemetry::trace::set_parent(&span, request.headers());
        let mut request = request;
        nexus_telemetry::trace::inject(&span, request.headers_mut());
        let started = Instant::now();
        let cold_start = ColdStart::default();
        let answered = run(request, cold_start.clone())
            .instrument(span.clone())
            .await;
        // Recorded once: a second value would be a second attribute of the same name.
        span.record("faas.coldstart", cold_start.0.load(Ordering::Relaxed));
        let status = match &answered {
            Ok(response) => response.status(),
            Err(error) => error.status(),
        };
        self.metrics.invoked(status.as_u16(), started.elapsed());
        span.record("http.response.status_code", i64::from(status.as_u16()));
        if status.is_server_error() {
            span.record("otel.status_code", "error");
        }
        answered
    }

    /// Within [`AppHost::observe`]: the invocation waited for `deployment`'s app to load.
    pub fn cold_started(&self, deployment: &Deployment, cold_start: &ColdStart) {
        cold_start.0.store(true, Ordering::Relaxed);
        self.metrics.cold_start(&deployment.app.name);
    }

    /// Forgets the app of deployment `id`; requests in flight keep it until they finish.
    pub fn unload(&self, id: &str) {
        self.apps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(id);
    }

    /// Loads the app of `deployment` if it is not, and keeps it loaded for `period` however
    /// long it idles (a function's `min_warm`: renewed while the control plane wants it).
    pub async fn keep_warm(
        &self,
        deployment: &Deployment,
        period: Duration,
    ) -> Result<(), EdgeError> {
        self.app(deployment).await?;
        let until = monotonic_millis()
            .saturating_add(u64::try_from(period.as_millis()).unwrap_or(u64::MAX));
        if let Some(hosted) = self
            .apps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(deployment.id.as_ref())
        {
            hosted.warm_until.fetch_max(until, Ordering::Relaxed);
            tracing::debug!(deployment = %deployment.id, ?period, "kept warm");
        }
        Ok(())
    }

    /// Scale to zero: forgets the apps no request used for `idle` and none keeps warm, then
    /// drops the compiled code no app holds any more. Requests in flight keep what they use
    /// until they finish; the next request loads the app again, a cold start.
    pub fn unload_idle(&self, idle: Duration) -> Unloaded {
        let now = monotonic_millis();
        let idle_ms = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let apps = {
            let mut apps = self
                .apps
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let before = apps.len();
            apps.retain(|id, hosted| {
                let loading = hosted.app.get().is_none();
                let used = now.saturating_sub(hosted.used_at.load(Ordering::Relaxed)) < idle_ms;
                let keep = loading || used || hosted.warm_until.load(Ordering::Relaxed) > now;
                if !keep {
                    tracing::debug!(deployment = %id, "unloading an idle app");
                }
                keep
            });
            before - apps.len()
        };
        Unloaded {
            apps,
            components: self.runtime.evict_idle_components(idle),
        }
    }

    /// Runs [`AppHost::unload_idle`] every quarter of `idle` (at least every 10 ms), for as
    /// long as the host lives, telling `unloaded` what went.
    pub fn unload_when_idle(
        self: &Arc<Self>,
        idle: Duration,
        unloaded: impl Fn(&Unloaded) + Send + 'static,
    ) {
        let host = Arc::downgrade(self);
        let every = (idle / 4).max(Duration::from_millis(10));
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(host) = host.upgrade() else { return };
                let gone = host.unload_idle(idle);
                if gone.apps > 0 || !gone.components.is_empty() {
                    tracing::info!(
                        apps = gone.apps,
                        components = gone.components.len(),
                        "unloaded idle apps"
                    );
                    host.metrics.unloaded(gone.apps);
                    unloaded(&gone);
                }
            }
        });
    }

    /// How many deployments are loaded or loading.
    pub fn loaded(&self) -> usize {
        self.apps
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .len()
    }
}
