//! Where a runtime keeps Spin key-value data, and starting a runtime over it.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use nexus_context::{ContextStore, MemoryStore, RedisStore, SqliteStore};
use nexus_runtime::{Runtime, RuntimeConfig};

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

/// A runtime whose Spin key-value stores live in `kv`.
pub async fn start_runtime(config: RuntimeConfig, kv: &KvBackend) -> anyhow::Result<Arc<Runtime>> {
    let context = open_context_store(kv).await?;
    Ok(Arc::new(
        Runtime::new(config, context).context("failed to start the runtime")?,
    ))
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
