//! The HTTP trigger: `/{project}/{function}/…` (or `/{project}/{function}@{alias}/…`) runs the
//! function's app with the rest of the path, through alias → version (canary weights) →
//! [`Dispatch`].
//!
//! Resolving a name to a version reads the database, so resolutions are cached. A change made
//! through this process (deploy, alias move, rollback, change of a function's settings,
//! project deletion) bumps [`CatalogChanges`] and takes effect on the next request; a change
//! made by another replica takes effect within [`RESOLUTION_TTL`] and one lookup: past it, the
//! name is looked up again in the background while requests keep using what is cached, so
//! expiry costs them no query and no pause, and a database that cannot answer leaves the
//! trigger serving what it last knew (nothing can change there meanwhile). Versions are
//! immutable, so a version's parsed record is kept for as long as anything points at it; the
//! function's settings (its priority class and node selector) are not part of it, and are read
//! again with every resolution.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use nexus_store::{AsyncRetry, FunctionId, ProjectId, Store};
use tracing::Instrument as _;

use crate::api::{AppState, REQUEST_ID, RequestId, request_id_of};
use crate::dispatch::{FunctionSettings, Invocation, Target, ran_on};
use crate::error::ApiError;
use crate::events::EventKind;

/// How long a resolution is trusted without asking the database again.
pub const RESOLUTION_TTL: Duration = Duration::from_secs(1);

/// Resolutions kept at most; past this the cache starts over, so paths made up by a scanner
/// cannot grow it without bound.
const MAX_CACHED: usize = 10_000;

/// The response header naming the version that served the request.
pub const VERSION_HEADER: HeaderName = HeaderName::from_static("nexus-version");

/// Counts changes to what names resolve to; resolutions made before a change are stale.
#[derive(Debug, Default)]
pub struct CatalogChanges(AtomicU64);

impl CatalogChanges {
    /// Records a change: every cached resolution is looked up again.
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::Release);
    }

    fn current(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

/// Where an alias sends requests.
#[derive(Debug)]
pub struct Resolution {
    main: Arc<Target>,
    /// The canary and its percentage of requests.
    canary: Option<(Arc<Target>, u32)>,
    /// The function's id.
    function_id: FunctionId,
    /// How the function's asynchronous invocations are retried.
    async_retry: AsyncRetry,
}

impl Resolution {
    /// The function's id.
    pub fn function_id(&self) -> FunctionId {
        self.function_id
    }

    /// How the function's asynchronous invocations are retried.
    pub fn async_retry(&self) -> AsyncRetry {
        self.async_retry
    }

    /// The version the alias sends every request to that does not go to its canary.
    pub fn main(&self) -> &Arc<Target> {
        &self.main
    }

    /// The canary and its share of requests in percent, when the alias has one.
    pub fn canary(&self) -> Option<(&Arc<Target>, u32)> {
        self.canary
            .as_ref()
            .map(|(canary, weight)| (canary, *weight))
    }

    /// Every version the alias sends requests to: the main, and the canary if it has one.
    pub fn targets(&self) -> impl Iterator<Item = &Arc<Target>> {
        std::iter::once(&self.main).chain(self.canary.as_ref().map(|(canary, _)| canary))
    }

    /// The version for one request: the canary for its share of requests, else the main.
    pub(crate) fn pick(&self) -> &Arc<Target> {
        match &self.canary {
            Some((canary, weight)) if getrandom::u32().unwrap_or(0) % 100 < *weight => canary,
            _ => &self.main,
        }
    }
}

struct Cached {
    at: Instant,
    generation: u64,
    /// `None`: nothing by that name.
    resolution: Option<Arc<Resolution>>,
    /// Taken by the one request that looks the name up again once `at` is older than the TTL.
    refreshing: AtomicBool,
}

/// Resolves `project/function@alias` to versions, with a cache.
pub struct Resolver {
    store: Arc<Store>,
    changes: Arc<CatalogChanges>,
    resolutions: RwLock<HashMap<String, Cached>>,
    targets: RwLock<HashMap<(FunctionId, i64), Arc<Target>>>,
}

impl Resolver {
    /// A resolver over `store`, invalidated by `changes`.
    pub fn new(store: Arc<Store>, changes: Arc<CatalogChanges>) -> Self {
        Self {
            store,
            changes,
            resolutions: RwLock::default(),
            targets: RwLock::default(),
        }
    }

    /// Where `alias` of `function` in `project` points, or `None` if any of them does not
    /// exist.
    pub async fn resolve(
        self: &Arc<Self>,
        project: &str,
        function: &str,
        alias: &str,
    ) -> Result<Option<Arc<Resolution>>, ApiError> {
        let key = format!("{project}/{function}@{alias}");
        let generation = self.changes.current();
        if let Some(cached) = self
            .resolutions
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&key)
            .filter(|cached| cached.generation == generation)
        {
            if cached.at.elapsed() >= RESOLUTION_TTL
                && !cached.refreshing.swap(true, Ordering::AcqRel)
            {
                let names = [project, function, alias].map(str::to_owned);
                let (resolver, stale) = (Arc::clone(self), cached.resolution.clone());
                tokio::spawn(async move { resolver.refresh(key, generation, names, stale).await });
            }
            return Ok(cached.resolution.clone());
        }
        // Boxed: the database queries would otherwise make every request's future their size.
        let resolution = Box::pin(self.load(project, function, alias))
            .await?
            .map(Arc::new);
        self.remember(key, generation, resolution.clone());
        Ok(resolution)
    }

    /// Looks a cached name up again; when the database cannot answer, keeps `stale` for
    /// another TTL.
    async fn refresh(
        &self,
        key: String,
        generation: u64,
        [project, function, alias]: [String; 3],
        stale: Option<Arc<Resolution>>,
    ) {
        let resolution = match Box::pin(self.load(&project, &function, &alias)).await {
            Ok(loaded) => loaded.map(Arc::new),
            Err(error) => {
                tracing::warn!(%error, key, "the database did not answer; keeping the resolution");
                stale
            }
        };
        self.remember(key, generation, resolution);
    }

    fn remember(&self, key: String, generation: u64, resolution: Option<Arc<Resolution>>) {
        let mut resolutions = self
            .resolutions
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if resolutions.len() >= MAX_CACHED {
            resolutions.clear();
            self.targets
                .write()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .clear();
        }
        resolutions.insert(
            key,
            Cached {
                at: Instant::now(),
                generation,
                resolution,
                refreshing: AtomicBool::new(false),
            },
        );
    }

    async fn load(
        &self,
        project: &str,
        function: &str,
        alias: &str,
    ) -> Result<Option<Resolution>, ApiError> {
        let (project, function, alias) =
            (project.to_owned(), function.to_owned(), alias.to_owned());
        let found = self
            .store
            .with_retry(|tx| {
                let (project, function, alias) = (project.clone(), function.clone(), alias.clone());
                Box::pin(async move {
                    let project = tx.get_project_by_slug(&project).await?;
                    let function = tx.get_function(project.id, &function).await?;
                    let alias = tx.get_alias(function.id, &alias).await?;
                    Ok((project, function, alias))
                })
            })
            .await;
        let (project, function, alias) = match found {
            Ok(found) => found,
            Err(nexus_store::Error::NotFound { .. }) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let settings = FunctionSettings::of(&function);
        let main = self
            .target(project.id, &function, &settings, alias.version_a)
            .await?;
        let canary = match alias.version_b {
            Some(version) => Some((
                self.target(project.id, &function, &settings, version)
                    .await?,
                u32::try_from(alias.weight_b.clamp(0, 100)).unwrap_or(0),
            )),
            None => None,
        };
        Ok(Some(Resolution {
            main,
            canary,
            function_id: function.id,
            async_retry: function.async_retry,
        }))
    }

    /// Version `version` of `function` as read now: what an asynchronous invocation accepted
    /// for that version runs, with the function's current settings.
    pub async fn target_of(
        &self,
        function: &nexus_store::Function,
        version: i64,
    ) -> Result<Arc<Target>, ApiError> {
        let settings = FunctionSettings::of(function);
        self.target(function.project_id, function, &settings, version)
            .await
    }

    /// The version's target with the function's current settings, read and parsed once.
    async fn target(
        &self,
        project_id: ProjectId,
        function: &nexus_store::Function,
        settings: &FunctionSettings,
        version: i64,
    ) -> Result<Arc<Target>, ApiError> {
        let key = (function.id, version);
        let cached = self
            .targets
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&key)
            .cloned();
        let target = match cached {
            Some(target) if target.has_settings(settings) => return Ok(target),
            // The function's settings changed since the version was parsed: the record is the
            // same.
            Some(target) => Arc::new(target.with_settings(settings)),
            None => {
                let function_id = function.id;
                let stored = self
                    .store
                    .with_retry(|tx| {
                        Box::pin(async move { tx.get_function_version(function_id, version).await })
                    })
                    .await?;
                Arc::new(Target::of_version(
                    project_id,
                    &function.name,
                    settings,
                    stored,
                )?)
            }
        };
        self.targets
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(key, Arc::clone(&target));
        Ok(target)
    }
}

pub(crate) use nexus_proto::route::split_trigger_path as split_path;

/// The route of a trigger path, for span names: `/{project}/{function}[@alias]`, without the
/// function's own path (unbounded).
pub(crate) fn trigger_route(path: &str) -> &str {
    split_path(path).map_or(path, |(.., prefix_len)| &path[..prefix_len])
}

/// Whether `path` is the trigger's: `/{project}/{function}…` with a name a project can have.
/// Everything else is the API's (which answers 404 for what it does not know).
pub(crate) fn is_trigger_path(path: &str) -> bool {
    split_path(path).is_some_and(|(project, ..)| crate::projects::is_project_name(project))
}

/// Runs one trigger request. The trigger is served before the API's router and middleware
/// (its answers are the function's, and it is the hot path): it gives the request an id as
/// the API does, and writes its own errors in the one shape.
pub(crate) async fn serve(state: &AppState, request: Request, client: SocketAddr) -> Response {
    let id = request_id_of(request.headers());
    let span = tracing::info_span!(
        "trigger",
        otel.name = %format_args!("{} {}", request.method(), trigger_route(request.uri().path())),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        faas.trigger = "http",
        faas.invocation_id = %id,
        http.request.method = %request.method(),
        url.path = request.uri().path(),
        http.response.status_code = tracing::field::Empty,
    );
    nexus_telemetry::trace::set_parent(&span, request.headers());
    let mut response = match run(state, request, client, &id)
        .instrument(span.clone())
        .await
    {
        Ok(response) => response,
        Err(error) => error.render(&id),
    };
    span.record(
        "http.response.status_code",
        i64::from(response.status().as_u16()),
    );
    if response.status().is_server_error() {
        span.record("otel.status_code", "error");
    }
    if let Ok(id) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, id);
    }
    response
}

async fn run(
    state: &AppState,
    mut request: Request,
    client: SocketAddr,
    id: &str,
) -> Result<Response, ApiError> {
    request.extensions_mut().insert(RequestId(id.to_owned()));
    let path = request.uri().path();
    let not_found = || ApiError::not_found("function");
    let (project, function, alias, prefix_len) = split_path(path).ok_or_else(not_found)?;
    state.limits.project_request(project)?;
    let resolution = state
        .triggers
        .resolve(project, function, alias)
        .await?
        .ok_or_else(not_found)?;
    let target = Arc::clone(resolution.pick());
    let prefix = path[..prefix_len].to_owned();
    let respond_async = crate::api::invocations::wants_async(request.headers());
    run_version(
        state,
        &resolution,
        target,
        request,
        prefix,
        client,
        respond_async,
    )
    .await
}

/// Runs `request` on `target` (picked from `resolution`), mounted under `prefix`: now,
/// answering with the function's response and its version in `nexus-version`; or, when
/// `respond_async`, as an asynchronous invocation, answering `202` once it is recorded.
pub(crate) async fn run_version(
    state: &AppState,
    resolution: &Resolution,
    target: Arc<Target>,
    request: Request,
    prefix: String,
    client: SocketAddr,
    respond_async: bool,
) -> Result<Response, ApiError> {
    if respond_async {
        return crate::api::invocations::accept(
            state, resolution, &target, request, prefix, client, None,
        )
        .await;
    }
    let started = Instant::now();
    let answered = state
        .dispatch
        .invoke(Invocation {
            target: Arc::clone(&target),
            prefix,
            client,
            request,
            agent: None,
            logs: None,
        })
        .await;
    let (status, ran_on) = match &answered {
        Ok(response) => (
            response.status().as_u16(),
            ran_on(response.headers(), &target),
        ),
        Err(error) => (error.status.as_u16(), ran_on(&HeaderMap::new(), &target)),
    };
    state.events.publish(EventKind::answered(
        &target,
        None,
        status,
        ran_on,
        started.elapsed(),
    ));
    let mut response = answered?;
    response
        .headers_mut()
        .insert(VERSION_HEADER, HeaderValue::from(target.version));
    Ok(response)
}
