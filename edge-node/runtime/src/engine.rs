//! The one wasmtime [`Engine`] a node uses, and the epoch ticker that drives deadlines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use wasmtime::{
    Cache, CacheConfig, Config, Enabled, Engine, InstanceAllocationStrategy,
    PoolingAllocationConfig,
};

use crate::config::{EPOCH_TICK, RuntimeConfig};
use crate::error::LoadError;

/// Core instances a component may create: the main module plus the small shim modules
/// `wit-component` adds. Generous, because slots are virtual memory until used.
pub(crate) const CORE_INSTANCES_PER_COMPONENT: u32 = 16;
/// Linear memories per component; Rust guests use one, adapters may add one.
pub(crate) const MEMORIES_PER_COMPONENT: u32 = 4;
/// Tables per component (function tables of the main module and shims).
pub(crate) const TABLES_PER_COMPONENT: u32 = 16;
/// Elements per table: large Rust binaries have tables of a few thousand entries.
pub(crate) const TABLE_ELEMENTS: usize = 20_000;
/// Up to this much of a memory or table stays resident between instances instead of being
/// returned to the kernel and faulted in again. Either way a slot comes back clean: the resident
/// part is reset to the component's initial image (or zeros), the rest reads as zeros when
/// faulted in again, so one tenant never sees another's leftovers (tested by the `abuser`
/// fixture in `tests/tests/e2e/hardening.rs`). With `PAGEMAP_SCAN` (Linux 6.7+) only the pages
/// the last instance dirtied are reset, so the bound can be generous: a Rust guest's stack sits
/// just below 1 MiB and its heap just above.
const KEEP_RESIDENT_BYTES: usize = 4 * 1024 * 1024;
/// Guest stack: deep enough for real programs, shallow enough that runaway recursion traps
/// quickly.
const MAX_WASM_STACK_BYTES: usize = 1024 * 1024;
/// Fiber stack for async calls: the wasm stack plus room for host frames.
const ASYNC_STACK_BYTES: usize = MAX_WASM_STACK_BYTES + 1024 * 1024;

/// Builds the engine: pooling allocator sized from the limits, copy-on-write memory images,
/// epoch interruption, async support, and the compile cache when one is configured (returned
/// too, for its hit and miss counts).
pub fn build_engine(runtime: &RuntimeConfig) -> Result<(Engine, Option<Cache>), LoadError> {
    let limits = &runtime.limits;
    let instances = limits.max_instances.max(1);
    let mut pooling = PoolingAllocationConfig::new();
    pooling
        .total_component_instances(instances)
        .total_core_instances(instances.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(instances.saturating_mul(MEMORIES_PER_COMPONENT))
        .total_tables(instances.saturating_mul(TABLES_PER_COMPONENT))
        // One fiber per running guest task; p3 guests may run a few tasks per instance.
        .total_stacks(instances.saturating_mul(4))
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .table_elements(TABLE_ELEMENTS)
        .max_memory_size(usize::try_from(limits.memory_limit_bytes).unwrap_or(usize::MAX))
        .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
        .table_keep_resident(KEEP_RESIDENT_BYTES)
        .pagemap_scan(Enabled::Auto);

    let mut config = code_settings();
    config
        .memory_init_cow(true)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
    let mut compile_cache = None;
    if let Some(directory) = &runtime.compile_cache {
        // wasmtime's cache insists on an absolute path.
        let directory = std::path::absolute(directory).map_err(|error| {
            LoadError::Engine(format!(
                "invalid compile cache path {}: {error}",
                directory.display()
            ))
        })?;
        let mut cache = CacheConfig::new();
        cache.with_directory(&directory);
        let cache = Cache::new(cache).map_err(|error| {
            LoadError::Engine(format!(
                "failed to open the compile cache {}: {error:#}",
                directory.display()
            ))
        })?;
        config.cache(Some(cache.clone()));
        compile_cache = Some(cache);
    }
    let engine = Engine::new(&config).map_err(|error| LoadError::Engine(format!("{error:#}")))?;
    Ok((engine, compile_cache))
}

/// Names what compiled code `engine` can reuse: equal for engines whose compiled artifacts are
/// interchangeable (same wasmtime, target and code settings).
pub fn compatibility_id(engine: &Engine) -> String {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    format!("wasmtime-{:016x}", hasher.finish())
}

/// The baseline tier's engine: the same code settings compiled by Winch, instances allocated
/// on demand (they only serve until Cranelift's code replaces theirs). Memory is capped per
/// store by the same limiter as on the optimized engine.
pub fn build_baseline_engine() -> Result<Engine, LoadError> {
    let mut config = code_settings();
    config.strategy(wasmtime::Strategy::Winch);
    Engine::new(&config).map_err(|error| LoadError::Engine(format!("{error:#}")))
}

/// The settings that decide what code compiles and how: a component accepted by an engine
/// with these settings compiles on every node's engine.
pub(crate) fn code_settings() -> Config {
    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .wasm_component_model_async(true)
        .epoch_interruption(true)
        .max_wasm_stack(MAX_WASM_STACK_BYTES)
        .async_stack_size(ASYNC_STACK_BYTES);
    config
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
///
/// A running guest checks the epoch at loop headers and function entries, so one tick is
/// the granularity of deadlines and of the time slices guests get before yielding.
pub struct EpochTicker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl EpochTicker {
    /// Starts the ticker thread for `engine`.
    pub fn start(engine: Engine) -> std::io::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = std::thread::Builder::new()
            .name("nexus-epoch".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                }
            })?;
        Ok(Self {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            // The thread only sleeps and increments; joining waits at most one tick.
            let _ = thread.join();
        }
    }
}
