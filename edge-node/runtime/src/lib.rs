//! The SirsiNexus WebAssembly runtime: runs Spin (spin-sdk) and plain `wasi:http` components
//! unchanged, under hard limits.
//!
//! One [`Runtime`] per node owns the wasmtime engine (pooling allocator, copy-on-write memory
//! images, epoch interruption), the linker with every host capability, and a component cache
//! keyed by digest. [`Runtime::load_app`] turns a [`ResolvedApp`] into a [`LoadedApp`] whose
//! [`ComponentHandler`]s run requests, one fresh instance each.
//!
//! Not here: HTTP serving, routing and Spin's request headers (the edge node's ingress), and
//! reading manifests (the control plane resolves them into the record this crate consumes).

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Weak};

use nexus_context::ContextStore;
use nexus_proto::app::ResolvedComponent;
use nexus_proto::{Digest, ResolvedApp};
use wasmtime::Engine;

mod caps;
pub mod component;
pub mod componentize;
pub mod config;
pub mod cpu_gate;
pub mod engine;
pub mod error;
pub mod host;
pub mod invoke;
pub mod output;
mod state;
pub mod validate;

pub use component::{HttpWorld, PreparedComponent, Tier, TieredComponent, monotonic_millis};
pub use config::{Limits, RuntimeConfig};
pub use error::{Cap, Fault, InvokeError, LoadError};
pub use host::key_value::AgentContext;
pub use host::local_requests::{LocalDispatch, LocalResult, LocalTarget};
pub use host::variables::{
    AppVariables, EnvVariables, SecretFuture, SecretUnavailable, VariableSource,
};
pub use invoke::{ComponentHandler, GuestBody, GuestResponse};
pub use output::{GuestLog, LogSink};
pub use validate::Validator;

use crate::caps::{Breaches, CallBudget};
use crate::component::{Compiler, Compilers, ComponentCache, LoadCaps, Optimizer};
use crate::cpu_gate::CpuGate;
use crate::engine::EpochTicker;
use crate::host::allowed_hosts::AllowedHosts;
use crate::host::key_value::KeyValueAccess;
use crate::host::local_requests::LocalDispatchSlot;
use crate::host::outbound_mysql::MysqlPools;
use crate::host::outbound_pg::PgPools;
use crate::host::sqlite::{SqliteAccess, SqliteDatabases};
use crate::invoke::Admission;
use crate::state::ComponentEnv;

/// Where the bytes of a component come from, by digest.
pub trait ArtifactSource {
    /// The bytes with `digest`, or `None` when this source does not have them.
    fn read(&self, digest: &Digest) -> std::io::Result<Option<Vec<u8>>>;
}

/// Component files on local disk, as a manifest loader finds them.
impl ArtifactSource for BTreeMap<Digest, PathBuf> {
    fn read(&self, digest: &Digest) -> std::io::Result<Option<Vec<u8>>> {
        match self.get(digest) {
            Some(path) => std::fs::read(path).map(Some),
            None => Ok(None),
        }
    }
}

/// Use of the on-disk compile cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompileCacheStats {
    /// Compilations answered from disk.
    pub hits: usize,
    /// Compilations done and written to disk.
    pub misses: usize,
}

/// A node's WebAssembly runtime.
pub struct Runtime {
    compilers: Compilers,
    cache: ComponentCache,
    admission: Arc<Admission>,
    cpu_gate: Arc<CpuGate>,
    limits: Limits,
    context: Arc<dyn ContextStore>,
    compile_cache: Option<wasmtime::Cache>,
    engine_id: String,
    sqlite: Arc<SqliteDatabases>,
    pg_pools: Arc<PgPools>,
    mysql_pools: Arc<MysqlPools>,
    breaches: Arc<Breaches>,
    _tickers: Vec<EpochTicker>,
}

impl Runtime {
    /// Creates the engine and linker, and starts the epoch ticker.
    ///
    /// `context` backs every Spin key-value store of every app this runtime loads; SQLite
    /// databases live under `config.state_dir` (see [`host::sqlite`]).
    pub fn new(config: RuntimeConfig, context: Arc<dyn ContextStore>) -> Result<Self, LoadError> {
        let limits = config.limits.clone();
        let ticker = |engine: &Engine| {
            EpochTicker::start(engine.clone()).map_err(|error| {
                LoadError::Engine(format!("failed to start the epoch ticker: {error}"))
            })
        };
        let (engine, compile_cache) = engine::build_engine(&config)?;
        let engine_id = engine::compatibility_id(&engine);
        let optimized = Compiler::new(engine)?;
        let mut tickers = vec![ticker(&optimized.engine)?];
        let baseline = if config.baseline_tier {
            let baseline = Compiler::new(engine::build_baseline_engine()?)?;
            tickers.push(ticker(&baseline.engine)?);
            let optimizer = Optimizer::start(optimized.clone()).map_err(|error| {
                LoadError::Engine(format!("failed to start the optimizer thread: {error}"))
            })?;
            Some((baseline, optimizer))
        } else {
            None
        };
        Ok(Self {
            admission: Arc::new(Admission::new(&limits)),
            cpu_gate: Arc::new(CpuGate::for_this_machine()),
            compilers: Compilers {
                optimized,
                baseline,
            },
            cache: ComponentCache::default(),
            limits,
            context,
            compile_cache,
            engine_id,
            sqlite: Arc::new(SqliteDatabases::new(config.state_dir.as_deref())),
            pg_pools: Arc::default(),
            mysql_pools: Arc::default(),
            breaches: Arc::default(),
            _tickers: tickers,
        })
    }

    /// The limits every invocation runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Compiles and links a component (or finds it in the cache), refusing one that imports
    /// an interface this runtime does not provide, one over [`Limits::max_component_bytes`]
    /// and one whose compilation takes longer than [`Limits::compile_timeout`]. With the
    /// baseline tier on, this returns as soon as baseline code is ready; the optimized code
    /// replaces it in the background.
    pub fn prepare(
        &self,
        component_id: &str,
        bytes: &[u8],
    ) -> Result<Arc<TieredComponent>, LoadError> {
        let caps = LoadCaps {
            max_bytes: self.limits.max_component_bytes,
            compile_timeout: self.limits.compile_timeout,
        };
        let prepared = self
            .cache
            .prepare(&self.compilers, component_id, bytes, caps);
        match &prepared {
            Err(LoadError::ComponentTooLarge { .. }) => self.breaches.record(Cap::ComponentBytes),
            Err(LoadError::CompileTimeout { .. }) => self.breaches.record(Cap::CompileTime),
            _ => {}
        }
        prepared
    }

    /// How many times each cap was hit since this runtime started.
    pub fn limit_breaches(&self) -> Vec<(Cap, u64)> {
        self.breaches.counts()
    }

    /// The compiled component with `digest`, if this runtime has prepared it.
    pub fn component(&self, digest: &Digest) -> Option<Arc<TieredComponent>> {
        self.cache.get(digest)
    }

    /// Drops compiled components no loaded app holds and none has taken for `idle` (scale to
    /// zero: the next load compiles again, or reads the on-disk compile cache); their digests.
    pub fn evict_idle_components(&self, idle: std::time::Duration) -> Vec<Digest> {
        self.cache.evict_idle(idle)
    }

    /// Number of compiled components held.
    pub fn cached_components(&self) -> usize {
        self.cache.len()
    }

    /// What compiled code this runtime can share with others: equal ids mean interchangeable
    /// artifacts.
    pub fn engine_id(&self) -> &str {
        &self.engine_id
    }

    /// Components found in (hits) and added to (misses) the on-disk compile cache since start;
    /// `None` without a compile cache.
    pub fn compile_cache_stats(&self) -> Option<CompileCacheStats> {
        self.compile_cache.as_ref().map(|cache| CompileCacheStats {
            hits: cache.cache_hits(),
            misses: cache.cache_misses(),
        })
    }

    /// The store behind every app's key-value stores.
    pub fn context(&self) -> &Arc<dyn ContextStore> {
        &self.context
    }

    /// Instance slots free right now.
    pub fn free_instance_slots(&self) -> usize {
        self.admission.available()
    }

    /// Invocations waiting for an instance slot right now.
    pub fn queued_invocations(&self) -> u32 {
        self.admission.waiting()
    }

    /// Prepares every component of `app` with its variables, read beforehand by
    /// [`AppVariables::read`] (which may ask a secrets store, so it is async and this is not).
    pub fn load_app(
        &self,
        app: &ResolvedApp,
        artifacts: &dyn ArtifactSource,
        variables: &AppVariables,
    ) -> Result<LoadedApp, LoadError> {
        let app_values = variables.values();
        let local = LocalDispatchSlot::default();
        let mut components = HashMap::with_capacity(app.components.len());
        for (id, component) in &app.components {
            let bytes = read_artifact(artifacts, component)?;
            let prepared = self.prepare(id, &bytes)?;
            let env = self.component_env(app, component, app_values, &local)?;
            let handler = ComponentHandler::new(
                prepared,
                Arc::new(env),
                Arc::clone(&self.admission),
                Arc::clone(&self.cpu_gate),
                self.limits.clone(),
                variables.component_secrets(component),
            );
            components.insert(id.clone(), handler);
        }
        for trigger in &app.http_triggers {
            if !components.contains_key(&trigger.component) {
                return Err(LoadError::UnknownComponent(trigger.component.clone()));
            }
        }
        Ok(LoadedApp {
            name: app.name.clone(),
            components,
            local,
        })
    }

    /// What every instance of `component` gets from the host, resolved once.
    fn component_env(
        &self,
        app: &ResolvedApp,
        component: &ResolvedComponent,
        app_values: &BTreeMap<String, String>,
        local: &LocalDispatchSlot,
    ) -> Result<ComponentEnv, LoadError> {
        Ok(ComponentEnv {
            app: app.name.clone(),
            id: component.id.clone(),
            key_value: KeyValueAccess::new(
                Arc::clone(&self.context),
                &app.name,
                &component.key_value_stores,
                CallBudget::new(&self.limits, Arc::clone(&self.breaches)),
            ),
            sqlite: SqliteAccess::new(&self.sqlite, &app.name, &component.sqlite_databases),
            pg_pools: Arc::clone(&self.pg_pools),
            mysql_pools: Arc::clone(&self.mysql_pools),
            variables: host::variables::resolve_component_variables(component, app_values)?,
            allowed_hosts: Arc::new(AllowedHosts::resolve(component, app_values)?),
            environment: component.environment.clone().into_iter().collect(),
            local: local.clone(),
            memory_limit_bytes: usize::try_from(self.limits.memory_limit_bytes)
                .unwrap_or(usize::MAX),
            limits: self.limits.clone(),
            breaches: Arc::clone(&self.breaches),
        })
    }
}

/// The bytes of `component`, checked against the digest the record names.
fn read_artifact(
    artifacts: &dyn ArtifactSource,
    component: &ResolvedComponent,
) -> Result<Vec<u8>, LoadError> {
    let bytes = artifacts
        .read(&component.source)
        .map_err(|error| LoadError::Compile {
            component: component.id.clone(),
            reason: format!("failed to read {}: {error}", component.source),
        })?
        .ok_or_else(|| LoadError::MissingArtifact {
            component: component.id.clone(),
            digest: component.source,
        })?;
    let actual = Digest::of(&bytes);
    if actual != component.source {
        return Err(LoadError::DigestMismatch {
            component: component.id.clone(),
            expected: component.source,
            actual,
        });
    }
    Ok(bytes)
}

/// An app ready to serve: one handler per component.
pub struct LoadedApp {
    name: String,
    components: HashMap<String, ComponentHandler>,
    local: LocalDispatchSlot,
}

impl LoadedApp {
    /// The app's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The handler for component `id`.
    pub fn component(&self, id: &str) -> Option<&ComponentHandler> {
        self.components.get(id)
    }

    /// Registers who serves requests the app's components make to the app itself (relative
    /// URLs, `*.spin.internal`). Until this is called such requests fail.
    pub fn set_local_dispatch(&self, dispatcher: Weak<dyn LocalDispatch>) {
        self.local.set(dispatcher);
    }
}
