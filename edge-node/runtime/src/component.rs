//! Compiling components, checking their imports, and pre-instantiating them.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use nexus_proto::Digest;
use tokio::sync::watch;
use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi_http::handler::ProxyPre;

use crate::error::LoadError;
use crate::host::wasi_rc::WasiHttpRc20231018Pre;
use crate::state::HostState;

/// Which HTTP world a component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpWorld {
    /// `wasi:http/incoming-handler@0.2.x` (spin-sdk 2–5, `wasmtime serve` p2 components).
    P2,
    /// `wasi:http/handler@0.3.x` (spin-sdk 6–7).
    P3,
    /// `wasi:http/incoming-handler@0.2.0-rc-2023-10-18` (spin-sdk 2.x).
    Rc20231018,
}

/// How an instance of a prepared component is created and called.
pub(crate) enum Exports {
    /// The WASI 0.2 and 0.3 exports, run by wasmtime's handler.
    Proxy(ProxyPre<HostState>),
    /// The 2023-10-18 release candidate's export, run by [`crate::invoke`].
    Rc20231018(WasiHttpRc20231018Pre<HostState>),
}

/// Which compiler produced a component's code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tier {
    /// Winch: compiled in a fraction of Cranelift's time, runs slower.
    Baseline,
    /// Cranelift.
    Optimized,
}

/// A compiled, linked component ready to be instantiated: the expensive work done once.
pub struct PreparedComponent {
    digest: Digest,
    world: HttpWorld,
    exports: Exports,
    engine: Engine,
    tier: Tier,
}

impl PreparedComponent {
    /// The engine its code belongs to: instances are created in stores of this engine.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Which compiler produced its code.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// The digest of the component's bytes.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The HTTP world it exports.
    pub fn world(&self) -> HttpWorld {
        self.world
    }

    pub(crate) fn exports(&self) -> &Exports {
        &self.exports
    }
}

/// Interface packages this runtime provides, by `namespace:package@major.minor`, and the
/// individual interfaces it provides from packages it implements only in part.
const SUPPORTED_PACKAGES: &[&str] = &[
    "wasi:cli@0.2",
    "wasi:clocks@0.2",
    "wasi:filesystem@0.2",
    "wasi:io@0.2",
    "wasi:random@0.2",
    "wasi:sockets@0.2",
    "wasi:http@0.2",
    "wasi:cli@0.3",
    "wasi:clocks@0.3",
    "wasi:filesystem@0.3",
    "wasi:random@0.3",
    "wasi:sockets@0.3",
    "wasi:http@0.3",
    "spin:key-value@3.0",
    "spin:variables@3.0",
    "spin:redis@3.0",
    "spin:mqtt@3.0",
    "spin:sqlite@3.0",
    "spin:sqlite@3.1",
    "spin:postgres@3.0",
    "spin:postgres@4.0",
    "spin:postgres@4.1",
    "spin:postgres@4.2",
    "spin:mysql@3.0",
];
const SUPPORTED_INTERFACES: &[&str] = &[
    "fermyon:spin/key-value@2.0",
    "fermyon:spin/variables@2.0",
    "fermyon:spin/redis@2.0",
    "fermyon:spin/mqtt@2.0",
    "fermyon:spin/sqlite@2.0",
    "fermyon:spin/rdbms-types@2.0",
    "fermyon:spin/postgres@2.0",
    "fermyon:spin/mysql@2.0",
];
/// Pre-release interfaces this runtime provides, by exact name and version: a draft is
/// accepted only in the version implemented, never by its major.minor.
const SUPPORTED_DRAFT_INTERFACES: &[&str] = &[
    "wasi:keyvalue/store@0.2.0-draft2",
    "wasi:keyvalue/atomics@0.2.0-draft2",
    "wasi:keyvalue/batch@0.2.0-draft2",
    "wasi:config/store@0.2.0-draft-2024-09-27",
    "wasi:io/poll@0.2.0-rc-2023-10-18",
    "wasi:io/streams@0.2.0-rc-2023-10-18",
    "wasi:http/types@0.2.0-rc-2023-10-18",
    "wasi:http/outgoing-handler@0.2.0-rc-2023-10-18",
];

/// Whether `import` (for example `wasi:io/streams@0.2.3`) is one this runtime provides.
pub fn is_supported_import(import: &str) -> bool {
    if SUPPORTED_DRAFT_INTERFACES.contains(&import) {
        return true;
    }
    let Some((path, version)) = import.split_once('@') else {
        return false;
    };
    // A pre-release (`0.2.0-rc-2023-10-18`, the WASI release candidates spin-sdk 2.x targets)
    // is its own interface: semver does not make it compatible with the release.
    if version.contains('-') {
        return false;
    }
    let Some((package, _interface)) = path.split_once('/') else {
        return false;
    };
    let mut numbers = version.split('.');
    let (Some(major), Some(minor)) = (numbers.next(), numbers.next()) else {
        return false;
    };
    let major_minor = format!("{major}.{minor}");
    SUPPORTED_PACKAGES.contains(&format!("{package}@{major_minor}").as_str())
        || SUPPORTED_INTERFACES.contains(&format!("{path}@{major_minor}").as_str())
}

/// A component's code as it is now: baseline code is replaced in place by optimized code when
/// that is ready, and every instance created afterwards runs the new code.
pub struct TieredComponent {
    current: RwLock<Arc<PreparedComponent>>,
    tier: watch::Sender<Tier>,
    /// When an app last took it, on [`monotonic_millis`]'s clock.
    taken_at: AtomicU64,
}

/// Milliseconds since the first call in this process: a clock cheap to keep in an atomic.
pub fn monotonic_millis() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    u64::try_from(EPOCH.get_or_init(Instant::now).elapsed().as_millis()).unwrap_or(u64::MAX)
}

impl TieredComponent {
    fn new(prepared: PreparedComponent) -> Self {
        let tier = prepared.tier;
        Self {
            current: RwLock::new(Arc::new(prepared)),
            tier: watch::Sender::new(tier),
            taken_at: AtomicU64::new(monotonic_millis()),
        }
    }

    fn take(self: &Arc<Self>) -> Arc<Self> {
        self.taken_at.store(monotonic_millis(), Ordering::Relaxed);
        Arc::clone(self)
    }

    /// The code new instances run.
    pub fn current(&self) -> Arc<PreparedComponent> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    /// The tier of the current code.
    pub fn tier(&self) -> Tier {
        *self.tier.borrow()
    }

    /// Resolves once the optimized code is in place.
    pub async fn optimized(&self) {
        let mut tier = self.tier.subscribe();
        // The sender lives as long as `self`, so waiting cannot fail.
        let _ = tier.wait_for(|tier| *tier == Tier::Optimized).await;
    }

    fn upgrade(&self, optimized: PreparedComponent) {
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(optimized);
        self.tier.send_replace(Tier::Optimized);
    }
}

/// An engine and the linker with every host capability for it.
#[derive(Clone)]
pub(crate) struct Compiler {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<HostState>,
}

impl Compiler {
    pub(crate) fn new(engine: Engine) -> Result<Self, LoadError> {
        let linker = crate::host::linker(&engine)
            .map_err(|error| LoadError::Engine(format!("{error:#}")))?;
        Ok(Self { engine, linker })
    }

    fn prepare(
        &self,
        component_id: &str,
        digest: Digest,
        bytes: &[u8],
        tier: Tier,
    ) -> Result<PreparedComponent, LoadError> {
        let mut prepared = prepare(&self.engine, &self.linker, component_id, digest, bytes)?;
        prepared.tier = tier;
        Ok(prepared)
    }
}

/// Compiles optimized code for components first served on baseline code, one at a time on a
/// thread of its own, so that it never takes more than one core from the requests.
pub(crate) struct Optimizer {
    jobs: std::sync::mpsc::Sender<OptimizeJob>,
}

struct OptimizeJob {
    component: Arc<TieredComponent>,
    component_id: String,
    digest: Digest,
    bytes: Vec<u8>,
}

impl Optimizer {
    pub(crate) fn start(compiler: Compiler) -> std::io::Result<Self> {
        let (jobs, queue) = std::sync::mpsc::channel::<OptimizeJob>();
        std::thread::Builder::new()
            .name("nexus-optimizer".to_owned())
            .spawn(move || {
                for job in queue {
                    match compiler.prepare(
                        &job.component_id,
                        job.digest,
                        &job.bytes,
                        Tier::Optimized,
                    ) {
                        Ok(optimized) => job.component.upgrade(optimized),
                        Err(error) => tracing::warn!(
                            component = job.component_id,
                            %error,
                            "optimized compilation failed; the component keeps its baseline code"
                        ),
                    }
                }
            })?;
        Ok(Self { jobs })
    }
}

/// The compilers of a runtime: Cranelift always, Winch first when tiering is on.
pub(crate) struct Compilers {
    pub(crate) optimized: Compiler,
    pub(crate) baseline: Option<(Compiler, Optimizer)>,
}

/// The caps on loading one component: its size, and how long compiling it may take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LoadCaps {
    pub(crate) max_bytes: u64,
    pub(crate) compile_timeout: Duration,
}

/// Compiled components by digest. Two components with the same bytes share one entry, and a
/// redeploy of unchanged bytes compiles nothing.
#[derive(Default)]
pub struct ComponentCache {
    entries: Mutex<HashMap<Digest, Arc<TieredComponent>>>,
    /// Components whose compilation ran past the cap: refused at once from then on, since
    /// their compilation cannot be stopped and a retry would start another.
    too_slow: Mutex<HashSet<Digest>>,
}

impl ComponentCache {
    /// The prepared component for `bytes`, compiling and linking it on first use: with a
    /// baseline compiler, baseline code now and optimized code in the background. Refuses
    /// bytes over `caps.max_bytes` and a compilation that takes longer than
    /// `caps.compile_timeout`.
    ///
    /// `component_id` only names the component in errors.
    pub(crate) fn prepare(
        &self,
        compilers: &Compilers,
        component_id: &str,
        bytes: &[u8],
        caps: LoadCaps,
    ) -> Result<Arc<TieredComponent>, LoadError> {
        let size = bytes.len() as u64;
        if size > caps.max_bytes {
            return Err(LoadError::ComponentTooLarge {
                component: component_id.to_owned(),
                size,
                limit: caps.max_bytes,
            });
        }
        let digest = Digest::of(bytes);
        if let Some(prepared) = self.get(&digest) {
            return Ok(prepared.take());
        }
        let too_slow = || LoadError::CompileTimeout {
            component: component_id.to_owned(),
            limit: caps.compile_timeout,
        };
        if lock(&self.too_slow).contains(&digest) {
            return Err(too_slow());
        }
        let shared: Arc<[u8]> = Arc::from(bytes);
        let compile = |compiler: &Compiler, tier| {
            let compiled = compile_within(
                compiler,
                component_id,
                digest,
                &shared,
                tier,
                caps.compile_timeout,
            );
            if matches!(compiled, Err(LoadError::CompileTimeout { .. })) {
                lock(&self.too_slow).insert(digest);
            }
            compiled
        };
        // Compiling takes a while; do it without holding the lock. Two racing loads of the
        // same bytes both compile, and the first insert wins.
        let baseline = compilers
            .baseline
            .as_ref()
            .and_then(|(compiler, optimizer)| {
                match compile(compiler, Tier::Baseline) {
                    Ok(prepared) => Some(Ok((prepared, optimizer))),
                    // Winch does not compile every proposal Cranelift does: such components go
                    // straight to Cranelift.
                    Err(LoadError::Compile { .. }) => None,
                    Err(error) => Some(Err(error)),
                }
            });
        let (component, optimizer) = match baseline.transpose()? {
            Some((prepared, optimizer)) => {
                (Arc::new(TieredComponent::new(prepared)), Some(optimizer))
            }
            None => (
                Arc::new(TieredComponent::new(compile(
                    &compilers.optimized,
                    Tier::Optimized,
                )?)),
                None,
            ),
        };
        let mut entries = lock(&self.entries);
        let entry = entries.entry(digest).or_insert_with(|| {
            if let Some(optimizer) = optimizer {
                // The thread ends only with the runtime, so a send cannot fail while it lives.
                let _ = optimizer.jobs.send(OptimizeJob {
                    component: Arc::clone(&component),
                    component_id: component_id.to_owned(),
                    digest,
                    bytes: bytes.to_vec(),
                });
            }
            component
        });
        Ok(entry.take())
    }

    /// The prepared component with `digest`, if cached.
    pub fn get(&self, digest: &Digest) -> Option<Arc<TieredComponent>> {
        lock(&self.entries).get(digest).cloned()
    }

    /// Drops the compiled components no loaded app holds any more and none has taken for
    /// `idle`; their digests. An instance running one keeps its code until it ends.
    pub fn evict_idle(&self, idle: Duration) -> Vec<Digest> {
        let idle = u64::try_from(idle.as_millis()).unwrap_or(u64::MAX);
        let now = monotonic_millis();
        let mut evicted = Vec::new();
        lock(&self.entries).retain(|digest, component| {
            let taken_at = component.taken_at.load(Ordering::Relaxed);
            let keep = Arc::strong_count(component) > 1 || now.saturating_sub(taken_at) < idle;
            if !keep {
                evicted.push(*digest);
            }
            keep
        });
        evicted
    }

    /// How many components are cached.
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Compiles on a thread of its own and waits at most `limit`. wasmtime cannot stop a
/// compilation, so one that runs over finishes in the background and its result is dropped.
fn compile_within(
    compiler: &Compiler,
    component_id: &str,
    digest: Digest,
    bytes: &Arc<[u8]>,
    tier: Tier,
    limit: Duration,
) -> Result<PreparedComponent, LoadError> {
    let (done, result) = std::sync::mpsc::sync_channel(1);
    let (compiler, id, bytes) = (compiler.clone(), component_id.to_owned(), Arc::clone(bytes));
    std::thread::Builder::new()
        .name("nexus-compile".to_owned())
        .spawn(move || {
            // The receiver is gone when the wait timed out; the result is not wanted then.
            let _ = done.send(compiler.prepare(&id, digest, &bytes, tier));
        })
        .map_err(|error| {
            LoadError::Engine(format!("failed to start a compilation thread: {error}"))
        })?;
    match result.recv_timeout(limit) {
        Ok(compiled) => compiled,
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(LoadError::CompileTimeout {
            component: component_id.to_owned(),
            limit,
        }),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(LoadError::Engine(
            "the compilation thread stopped without a result".to_owned(),
        )),
    }
}

pub(crate) fn prepare(
    engine: &Engine,
    linker: &Linker<HostState>,
    component_id: &str,
    digest: Digest,
    bytes: &[u8],
) -> Result<PreparedComponent, LoadError> {
    let componentized;
    let bytes = if crate::componentize::is_core_module(bytes) {
        componentized =
            crate::componentize::componentize(bytes).map_err(|reason| LoadError::Compile {
                component: component_id.to_owned(),
                reason,
            })?;
        componentized.as_slice()
    } else {
        bytes
    };
    let component = Component::new(engine, bytes).map_err(|error| LoadError::Compile {
        component: component_id.to_owned(),
        reason: format!("{error:#}"),
    })?;
    let unsupported: Vec<String> = component
        .component_type()
        .imports(engine)
        .filter(|(name, item)| {
            matches!(item.ty, ComponentItem::ComponentInstance(_)) && !is_supported_import(name)
        })
        .map(|(name, _)| name.to_owned())
        .collect();
    if !unsupported.is_empty() {
        return Err(LoadError::UnsupportedImports {
            component: component_id.to_owned(),
            imports: unsupported,
        });
    }
    let instance_pre = linker
        .instantiate_pre(&component)
        .map_err(|error| LoadError::Link {
            component: component_id.to_owned(),
            reason: format!("{error:#}"),
        })?;
    let (world, exports) = if let Ok(pre) =
        wasmtime_wasi_http::p3::bindings::ServicePre::new(instance_pre.clone())
    {
        (HttpWorld::P3, Exports::Proxy(ProxyPre::P3(pre)))
    } else if let Ok(pre) = wasmtime_wasi_http::p2::bindings::ProxyPre::new(instance_pre.clone()) {
        (HttpWorld::P2, Exports::Proxy(ProxyPre::P2(pre)))
    } else if let Ok(pre) = WasiHttpRc20231018Pre::new(instance_pre) {
        (HttpWorld::Rc20231018, Exports::Rc20231018(pre))
    } else {
        return Err(LoadError::NotAnHttpComponent {
            component: component_id.to_owned(),
        });
    };
    Ok(PreparedComponent {
        digest,
        world,
        exports,
        engine: engine.clone(),
        tier: Tier::Optimized,
    })
}

#[cfg(test)]
mod tests {
    use super::is_supported_import;

    #[test]
    fn recognises_supported_imports_by_package_and_version() {
        for supported in [
            "wasi:io/streams@0.2.0",
            "wasi:io/streams@0.2.6",
            "wasi:http/outgoing-handler@0.2.3",
            "wasi:http/types@0.3.0",
            "fermyon:spin/key-value@2.0.0",
            "fermyon:spin/variables@2.0.0",
            "spin:key-value/key-value@3.0.0",
            "spin:variables/variables@3.0.0",
            "wasi:keyvalue/store@0.2.0-draft2",
            "wasi:keyvalue/atomics@0.2.0-draft2",
            "wasi:keyvalue/batch@0.2.0-draft2",
            "wasi:config/store@0.2.0-draft-2024-09-27",
            "fermyon:spin/redis@2.0.0",
            "fermyon:spin/mqtt@2.0.0",
            "spin:redis/redis@3.0.0",
            "spin:mqtt/mqtt@3.0.0",
            "fermyon:spin/sqlite@2.0.0",
            "spin:sqlite/sqlite@3.0.0",
            "spin:sqlite/sqlite@3.1.0",
            "fermyon:spin/postgres@2.0.0",
            "fermyon:spin/rdbms-types@2.0.0",
            "fermyon:spin/mysql@2.0.0",
            "spin:postgres/postgres@3.0.0",
            "spin:postgres/postgres@4.0.0",
            "spin:postgres/postgres@4.2.0",
            "spin:mysql/mysql@3.0.0",
            "wasi:io/poll@0.2.0-rc-2023-10-18",
            "wasi:http/types@0.2.0-rc-2023-10-18",
        ] {
            assert!(is_supported_import(supported), "{supported}");
        }
        for unsupported in [
            "fermyon:spin/llm@2.0.0",
            "fermyon:spin/key-value@3.0.0",
            "wasi:keyvalue/store@0.2.0-draft",
            "wasi:keyvalue/store@0.2.0-draft3",
            "wasi:keyvalue/store@0.2.0",
            "wasi:keyvalue/watcher@0.2.0-draft2",
            "wasi:keyvalue/eventual@0.1.0",
            "wasi:config/store@0.2.0-draft",
            "wasi:config/store@0.2.0-rc-2024-10-01",
            "wasi:config/runtime@0.2.0-draft",
            "wasi:http/types@0.1.0",
            "fermyon:spin/redis@3.0.0",
            "spin:redis/redis@2.0.0",
            "spin:sqlite/sqlite@3.2.0",
            "spin:postgres/postgres@4.3.0",
            "spin:postgres/postgres@5.0.0",
            "spin:mysql/mysql@2.0.0",
            "wasi:http/types@0.2.0-rc-2023-11-10",
            "wasi:clocks/monotonic-clock@0.2.0-rc-2023-10-18",
            "custom",
        ] {
            assert!(!is_supported_import(unsupported), "{unsupported}");
        }
    }
}
