//! Runtime limits and engine sizing.

use std::path::PathBuf;
use std::time::Duration;

/// Default wall-clock budget of one invocation.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(30);
/// Default cap on a guest's linear memory.
pub const DEFAULT_MEMORY_LIMIT_BYTES: u64 = 128 * 1024 * 1024;
/// Default number of instances that may run at once on this node.
pub const DEFAULT_MAX_INSTANCES: u32 = 256;
/// Default number of invocations that may wait for an instance slot.
pub const DEFAULT_MAX_QUEUED: u32 = 1024;
/// Default longest wait for an instance slot before the caller is told to retry.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);
/// Default cap on an incoming request body.
pub const DEFAULT_MAX_REQUEST_BODY_BYTES: u64 = 16 * 1024 * 1024;
/// How often the epoch ticker advances the engine's epoch.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Limits applied to every invocation on a runtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget of one invocation, from admission to the guest's response.
    pub deadline: Duration,
    /// Cap on each linear memory of a guest.
    pub memory_limit_bytes: u64,
    /// Instances that may run at once; also sizes the pooling allocator.
    pub max_instances: u32,
    /// Invocations that may wait for a slot; beyond this callers are refused at once.
    pub max_queued: u32,
    /// Longest wait for an instance slot.
    pub queue_timeout: Duration,
    /// Cap on an incoming request body.
    pub max_request_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            deadline: DEFAULT_DEADLINE,
            memory_limit_bytes: DEFAULT_MEMORY_LIMIT_BYTES,
            max_instances: DEFAULT_MAX_INSTANCES,
            max_queued: DEFAULT_MAX_QUEUED,
            queue_timeout: DEFAULT_QUEUE_TIMEOUT,
            max_request_body_bytes: DEFAULT_MAX_REQUEST_BODY_BYTES,
        }
    }
}

/// How a [`crate::Runtime`] is set up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Limits applied to every invocation.
    pub limits: Limits,
    /// A directory where compiled components are kept between runs, keyed by their bytes and
    /// the engine's settings; `None` compiles every component on every start.
    pub compile_cache: Option<PathBuf>,
    /// The directory for per-app state: SQLite databases live in `<state_dir>/sqlite/<app>/`.
    /// `None` keeps them in memory for the runtime's lifetime.
    pub state_dir: Option<PathBuf>,
    /// Compile new components with a baseline compiler first (Winch: about four times faster
    /// to compile, slower code), serve them at once, and replace the code with Cranelift's in
    /// the background. For a control plane whose deploys should answer immediately.
    pub baseline_tier: bool,
}
