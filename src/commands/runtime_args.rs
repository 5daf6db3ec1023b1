//! The runtime flags every command that runs functions shares.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use nexus::KvBackend;
use nexus::units::{parse_bytes, parse_duration};
use nexus_runtime::Limits;
use nexus_runtime::config::{
    DEFAULT_MAX_COMPONENT_BYTES, DEFAULT_MAX_HEADER_BYTES, DEFAULT_MAX_HEADER_COUNT,
    DEFAULT_MAX_HOST_CALL_BYTES, DEFAULT_MAX_INSTANCES, DEFAULT_MAX_OUTBOUND_REQUESTS,
    DEFAULT_MAX_QUEUED, DEFAULT_MAX_REQUEST_BODY_BYTES, DEFAULT_MAX_RESOURCES,
    DEFAULT_MEMORY_LIMIT_BYTES,
};
use nexus_secrets::{SecretStore, VaultArgs};

#[derive(Debug, Args)]
pub struct RuntimeArgs {
    /// Key-value backend: `sqlite` (a file in the state directory), `memory`, or a
    /// `redis://` or `postgres://` URL.
    #[arg(long, env = "NEXUS_KV", default_value = "sqlite")]
    kv: String,

    /// A `redis://` cache in front of a `postgres://` `--kv`: reads from Redis, every write
    /// recorded in Postgres before it returns.
    #[arg(long, env = "NEXUS_KV_CACHE")]
    kv_cache: Option<String>,

    /// Wall-clock deadline of one invocation (e.g. 30s, 500ms).
    #[arg(long, env = "NEXUS_DEADLINE", default_value = "30s", value_parser = parse_duration)]
    deadline: Duration,

    /// Memory cap of one guest (e.g. 128MiB).
    #[arg(long, env = "NEXUS_MEMORY_LIMIT", value_parser = parse_bytes)]
    memory_limit: Option<u64>,

    /// Instances that may run at once.
    #[arg(long, env = "NEXUS_MAX_INSTANCES", default_value_t = DEFAULT_MAX_INSTANCES)]
    max_instances: u32,

    /// Requests that may wait for an instance before callers get 503.
    #[arg(long, env = "NEXUS_MAX_QUEUED", default_value_t = DEFAULT_MAX_QUEUED)]
    max_queued: u32,

    /// Largest request body accepted (e.g. 16MiB).
    #[arg(long, env = "NEXUS_MAX_BODY", value_parser = parse_bytes)]
    max_body: Option<u64>,

    /// Largest component loaded (e.g. 64MiB).
    #[arg(long, env = "NEXUS_MAX_COMPONENT_SIZE", value_parser = parse_bytes)]
    max_component_size: Option<u64>,

    /// Longest compilation of one component (e.g. 60s).
    #[arg(long, env = "NEXUS_COMPILE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    compile_timeout: Duration,

    /// Host resources (HTTP fields, bodies, streams, open stores…) one instance may hold.
    #[arg(long, env = "NEXUS_MAX_RESOURCES", default_value_t = DEFAULT_MAX_RESOURCES)]
    max_resources: u32,

    /// Bytes one host call may move: a key-value value, a key-value or Redis result (e.g. 16MiB).
    #[arg(long, env = "NEXUS_MAX_HOST_CALL_BYTES", value_parser = parse_bytes)]
    max_host_call_bytes: Option<u64>,

    /// Outbound HTTP requests one invocation may send.
    #[arg(long, env = "NEXUS_MAX_OUTBOUND_REQUESTS", default_value_t = DEFAULT_MAX_OUTBOUND_REQUESTS)]
    max_outbound_requests: u32,

    /// Header fields of a request or response, in or out (a request over it gets 431).
    #[arg(long, env = "NEXUS_MAX_HEADER_COUNT", default_value_t = DEFAULT_MAX_HEADER_COUNT)]
    max_header_count: u32,

    /// Bytes of a header section, in or out (e.g. 64KiB).
    #[arg(long, env = "NEXUS_MAX_HEADER_BYTES", value_parser = parse_bytes)]
    max_header_bytes: Option<u64>,

    /// How long an app may idle before it is unloaded and its compiled code dropped (scale to
    /// zero; a function's `min_warm` keeps its versions); 0s never unloads.
    #[arg(long, env = "NEXUS_UNLOAD_IDLE_AFTER", default_value = "300s", value_parser = parse_duration)]
    unload_idle_after: Duration,

    #[command(flatten)]
    vault: VaultArgs,
}

impl RuntimeArgs {
    /// How long an app idles before it is unloaded; `None`: never.
    pub fn unload_idle_after(&self) -> Option<Duration> {
        (!self.unload_idle_after.is_zero()).then_some(self.unload_idle_after)
    }

    /// The Vault the flags name (secret variables, the coordinator's secrets), if any; a bad
    /// combination of flags stops the start.
    pub fn vault(&self) -> anyhow::Result<Option<Arc<SecretStore>>> {
        let config = self.vault.config()?;
        Ok(config.map(SecretStore::new).transpose()?.map(Arc::new))
    }

    /// The key-value backend; `sqlite` keeps its file in `state_dir`.
    pub fn kv(&self, state_dir: &Path) -> anyhow::Result<KvBackend> {
        KvBackend::from_flags(&self.kv, self.kv_cache.as_deref(), state_dir)
    }

    /// The limits every invocation runs under.
    pub fn limits(&self) -> Limits {
        Limits {
            deadline: self.deadline,
            memory_limit_bytes: self.memory_limit.unwrap_or(DEFAULT_MEMORY_LIMIT_BYTES),
            max_instances: self.max_instances,
            max_queued: self.max_queued,
            max_request_body_bytes: self.max_body.unwrap_or(DEFAULT_MAX_REQUEST_BODY_BYTES),
            max_component_bytes: self
                .max_component_size
                .unwrap_or(DEFAULT_MAX_COMPONENT_BYTES),
            compile_timeout: self.compile_timeout,
            max_resources: self.max_resources,
            max_host_call_bytes: self
                .max_host_call_bytes
                .unwrap_or(DEFAULT_MAX_HOST_CALL_BYTES),
            max_outbound_requests: self.max_outbound_requests,
            max_header_count: self.max_header_count,
            max_header_bytes: self.max_header_bytes.unwrap_or(DEFAULT_MAX_HEADER_BYTES),
            ..Limits::default()
        }
    }
}
