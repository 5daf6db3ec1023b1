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
/// Default cap on the bytes of one component a runtime loads: twice the coordinator's deploy
/// cap, so whatever deploys loads, while a node handed something else still refuses a giant.
pub const DEFAULT_MAX_COMPONENT_BYTES: u64 = 64 * 1024 * 1024;
/// Default cap on compiling and linking one component on a node: twice the deploy cap, because
/// a node compiles while it serves.
pub const DEFAULT_COMPILE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default cap on the host resources (HTTP fields, bodies, streams, open stores, connections…)
/// one instance may hold at once.
pub const DEFAULT_MAX_RESOURCES: u32 = 10_000;
/// Default cap on the bytes one host call moves between a guest and the host: a key-value
/// value written or read, a Redis or key-value result.
pub const DEFAULT_MAX_HOST_CALL_BYTES: u64 = 16 * 1024 * 1024;
/// Default cap on outbound HTTP requests one invocation may send.
pub const DEFAULT_MAX_OUTBOUND_REQUESTS: u32 = 64;
/// Default cap on the header fields of a request or response, in and out.
pub const DEFAULT_MAX_HEADER_COUNT: u32 = 100;
/// Default cap on the header section of a request or response (names and values), in and out.
pub const DEFAULT_MAX_HEADER_BYTES: u64 = 64 * 1024;
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
    /// Cap on the bytes of one component this runtime loads.
    pub max_component_bytes: u64,
    /// Cap on compiling and linking one component.
    pub compile_timeout: Duration,
    /// Cap on the host resources one instance holds at once; one more traps the guest.
    pub max_resources: u32,
    /// Cap on the bytes one host call moves (a key-value value, a Redis or key-value result).
    pub max_host_call_bytes: u64,
    /// Cap on outbound HTTP requests per invocation; the next one fails in the guest with
    /// `connection-limit-reached`.
    pub max_outbound_requests: u32,
    /// Cap on header fields: of an incoming request (`431`), of a request the guest sends, and
    /// of the response the guest returns.
    pub max_header_count: u32,
    /// Cap on the bytes of a header section (names plus values), where `max_header_count`
    /// applies; also sizes what a guest may put into one `fields`.
    pub max_header_bytes: u64,
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
            max_component_bytes: DEFAULT_MAX_COMPONENT_BYTES,
            compile_timeout: DEFAULT_COMPILE_TIMEOUT,
            max_resources: DEFAULT_MAX_RESOURCES,
            max_host_call_bytes: DEFAULT_MAX_HOST_CALL_BYTES,
            max_outbound_requests: DEFAULT_MAX_OUTBOUND_REQUESTS,
            max_header_count: DEFAULT_MAX_HEADER_COUNT,
            max_header_bytes: DEFAULT_MAX_HEADER_BYTES,
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
