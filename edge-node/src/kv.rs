//! Where a runtime keeps Spin key-value data, and starting a runtime over it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context as _;
use nexus_context::{
    ContextStore, MemoryStore, PostgresStore, RedisStore, SqliteStore, TieredStore,
};
use nexus_runtime::{Runtime, RuntimeConfig};

/// Prefix of the Redis keys `nexus up --kv redis://…` writes.
pub const REDIS_KEY_PREFIX: &str = "nexus:kv:";
/// Prefix of the cache entries `--kv postgres://… --kv-cache redis://…` keeps in Redis.
pub const REDIS_CACHE_PREFIX: &str = "nexus:kvc:";

/// Where Spin key-value data lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvBackend {
    /// A SQLite file: survives restarts, needs nothing running.
    Sqlite(PathBuf),
    /// A Redis server at this URL.
    Redis(String),
    /// A Postgres (or CockroachDB) database at this URL.
    Postgres(String),
    /// Reads from a Redis cache, every write recorded in Postgres first.
    Tiered {
        /// The Redis URL.
        cache: String,
        /// The Postgres URL.
        record: String,
    },
    /// Process memory: gone when the process exits.
    Memory,
}

impl KvBackend {
    /// The backend a `--kv` flag names (`sqlite`, a file in `state_dir`; `memory`; a
    /// `redis://` or `postgres://` URL), with a `--kv-cache` Redis URL in front of Postgres.
    pub fn from_flags(kv: &str, cache: Option<&str>, state_dir: &Path) -> anyhow::Result<Self> {
        let is_redis = |url: &str| {
            ["redis://", "rediss://", "redis+unix://", "unix://"]
                .iter()
                .any(|scheme| url.starts_with(scheme))
        };
        let is_postgres =
            |url: &str| url.starts_with("postgres://") || url.starts_with("postgresql://");
        Ok(match (kv, cache) {
            ("sqlite", None) => Self::Sqlite(state_dir.join("key-value.db")),
            ("memory", None) => Self::Memory,
            (url, None) if is_redis(url) => Self::Redis(url.to_owned()),
            (url, None) if is_postgres(url) => Self::Postgres(url.to_owned()),
            (record, Some(cache)) if is_postgres(record) && is_redis(cache) => Self::Tiered {
                cache: cache.to_owned(),
                record: record.to_owned(),
            },
            (_, Some(cache)) => anyhow::bail!(
                "--kv-cache {cache}: a redis:// cache goes in front of a postgres:// --kv only"
            ),
            (other, None) => anyhow::bail!(
                "unknown --kv `{other}`: use sqlite, memory, a redis:// or a postgres:// URL"
            ),
        })
    }

    /// Whether every process pointed at it sees the same data (what a cluster needs).
    pub fn is_shared(&self) -> bool {
        matches!(
            self,
            Self::Redis(_) | Self::Postgres(_) | Self::Tiered { .. }
        )
    }
}

/// A runtime whose Spin key-value stores live in `kv`.
pub async fn start_runtime(config: RuntimeConfig, kv: &KvBackend) -> anyhow::Result<Arc<Runtime>> {
    let context = open_context_store(kv).await?;
    Ok(Arc::new(
        Runtime::new(config, context).context("failed to start the runtime")?,
    ))
}

/// Opens the store behind `backend`.
pub async fn open_context_store(backend: &KvBackend) -> anyhow::Result<Arc<dyn ContextStore>> {
    Ok(match backend {
        KvBackend::Sqlite(path) => Arc::new(SqliteStore::open(path).await.with_context(|| {
            format!("failed to open the key-value database {}", path.display())
        })?),
        KvBackend::Redis(url) => Arc::new(
            RedisStore::connect(url, REDIS_KEY_PREFIX)
                .await
                .context("failed to connect to the key-value Redis")?,
        ),
        KvBackend::Postgres(url) => Arc::new(
            PostgresStore::connect(url)
                .await
                .context("failed to connect to the key-value database")?,
        ),
        KvBackend::Tiered { cache, record } => Arc::new(TieredStore::new(
            RedisStore::connect(cache, REDIS_CACHE_PREFIX)
                .await
                .context("failed to connect to the key-value cache")?,
            PostgresStore::connect(record)
                .await
                .context("failed to connect to the key-value database")?,
        )),
        KvBackend::Memory => Arc::new(MemoryStore::new()),
    })
}
