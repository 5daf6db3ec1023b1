//! SQLite context store: one file per node, surviving restarts.
//!
//! Rows live in `context_entries`, keyed by `(namespace, key)`, with `expires_at` in Unix
//! milliseconds (wall clock, so that TTLs survive a restart). Expired rows count as missing in
//! every query and are deleted opportunistically: when `keys` lists their namespace, when a
//! write replaces them, at open, and in small batches every `PURGE_EVERY_WRITES` sets.
//!
//! Single statements are atomic on their own; `increment` needs a read, a parse in Rust and a
//! write, so it runs in a `BEGIN IMMEDIATE` transaction that takes the write lock up front (a
//! deferred transaction upgrading to a writer would fail with `SQLITE_BUSY` instead of waiting).

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use crate::decimal::apply_increment;
use crate::{
    ContextStore, Error, Namespace, Result, Ttl, check_key, check_value, expires_at, now_millis,
};

static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// Connections in the pool of a file-backed store. SQLite has one writer at a time, so more
/// connections only help concurrent readers.
const MAX_CONNECTIONS: u32 = 4;
/// How long a statement waits for another connection's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an operation waits for a free connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);
/// A bounded purge of expired rows runs once per this many `set` calls.
const PURGE_EVERY_WRITES: u64 = 1024;
/// Most rows one periodic purge deletes, to keep the write lock short.
const PURGE_BATCH: i64 = 1000;

/// A [`ContextStore`] in a SQLite database.
#[derive(Debug)]
pub struct SqliteStore {
    pool: SqlitePool,
    writes: AtomicU64,
}

fn backend(operation: &str, error: impl std::fmt::Display) -> Error {
    Error::Backend(format!("sqlite {operation}: {error}"))
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file and its parent directories if needed,
    /// and applies pending migrations.
    ///
    /// The file uses WAL journaling (readers never block the writer) with `synchronous =
    /// NORMAL`: a power loss can lose the last commits but never corrupts the file.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|error| backend("create directory", error))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|error| backend("open", error))?;
        let store = Self::migrated(pool).await?;
        let purged = store.purge_expired().await?;
        tracing::debug!(path = %path.display(), purged, "opened sqlite context store");
        Ok(store)
    }

    /// A private in-memory database, gone when the store is dropped. For tests and
    /// single-process development.
    pub async fn in_memory() -> Result<Self> {
        let options = SqliteConnectOptions::new().in_memory(true);
        // Every connection to `:memory:` is a separate database, so the pool holds exactly one
        // connection and never retires it.
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|error| backend("open", error))?;
        Self::migrated(pool).await
    }

    async fn migrated(pool: SqlitePool) -> Result<Self> {
        MIGRATOR
            .run(&pool)
            .await
            .map_err(|error| backend("migrate", error))?;
        Ok(Self {
            pool,
            writes: AtomicU64::new(0),
        })
    }

    /// Deletes every expired row; returns how many. Expired rows are already invisible, so
    /// this only reclaims space.
    pub async fn purge_expired(&self) -> Result<u64> {
        let result = sqlx::query("DELETE FROM context_entries WHERE expires_at <= ?1")
            .bind(now_millis())
            .execute(&self.pool)
            .await
            .map_err(|error| backend("purge", error))?;
        Ok(result.rows_affected())
    }

    /// Closes every connection, checkpointing the WAL into the main file. Operations after
    /// this fail with [`Error::Backend`].
    pub async fn close(&self) {
        self.pool.close().await;
    }

    async fn purge_batch(&self) -> Result<()> {
        let result = sqlx::query(
            "DELETE FROM context_entries WHERE (namespace, key) IN \
             (SELECT namespace, key FROM context_entries WHERE expires_at <= ?1 LIMIT ?2)",
        )
        .bind(now_millis())
        .bind(PURGE_BATCH)
        .execute(&self.pool)
        .await
        .map_err(|error| backend("purge", error))?;
        tracing::debug!(
            purged = result.rows_affected(),
            "purged expired context entries"
        );
        Ok(())
    }
}

#[async_trait]
impl ContextStore for SqliteStore {
    async fn get(&self, namespace: &Namespace, key: &str) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        sqlx::query_scalar(
            "SELECT value FROM context_entries \
             WHERE namespace = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
        )
        .bind(namespace.as_str())
        .bind(key)
        .bind(now_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| backend("get", error))
    }

    async fn set(
        &self,
        namespace: &Namespace,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<()> {
        check_key(key)?;
        check_value(value)?;
        sqlx::query(
            "INSERT INTO context_entries (namespace, key, value, expires_at) \
             VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (namespace, key) DO UPDATE \
             SET value = excluded.value, expires_at = excluded.expires_at",
        )
        .bind(namespace.as_str())
        .bind(key)
        .bind(value)
        .bind(expires_at(ttl, now_millis()))
        .execute(&self.pool)
        .await
        .map_err(|error| backend("set", error))?;
        // The purge is housekeeping: the value is already written, so a failed purge is logged
        // rather than reported as a failed set.
        let writes = self.writes.fetch_add(1, Ordering::Relaxed) + 1;
        if writes.is_multiple_of(PURGE_EVERY_WRITES)
            && let Err(error) = self.purge_batch().await
        {
            tracing::warn!(%error, "failed to purge expired context entries");
        }
        Ok(())
    }

    async fn delete(&self, namespace: &Namespace, key: &str) -> Result<bool> {
        check_key(key)?;
        let now = now_millis();
        // Deletes expired rows too (they are garbage anyway) but reports only live ones.
        let deleted: Option<Option<i64>> = sqlx::query_scalar(
            "DELETE FROM context_entries WHERE namespace = ?1 AND key = ?2 RETURNING expires_at",
        )
        .bind(namespace.as_str())
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| backend("delete", error))?;
        Ok(match deleted {
            None => false,
            Some(None) => true,
            Some(Some(expires_at)) => expires_at > now,
        })
    }

    async fn exists(&self, namespace: &Namespace, key: &str) -> Result<bool> {
        check_key(key)?;
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM context_entries \
             WHERE namespace = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
        )
        .bind(namespace.as_str())
        .bind(key)
        .bind(now_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| backend("exists", error))?;
        Ok(found.is_some())
    }

    async fn keys(&self, namespace: &Namespace) -> Result<Vec<String>> {
        let now = now_millis();
        sqlx::query("DELETE FROM context_entries WHERE namespace = ?1 AND expires_at <= ?2")
            .bind(namespace.as_str())
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|error| backend("keys", error))?;
        // Filter anyway: rows may expire between the two statements.
        sqlx::query_scalar(
            "SELECT key FROM context_entries \
             WHERE namespace = ?1 AND (expires_at IS NULL OR expires_at > ?2)",
        )
        .bind(namespace.as_str())
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| backend("keys", error))
    }

    async fn compare_and_swap(
        &self,
        namespace: &Namespace,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool> {
        check_key(key)?;
        check_value(new)?;
        // One statement each, so SQLite's write lock makes the compare and the write atomic.
        let query = match expected {
            // Insert, or take over a row that has expired (it counts as missing).
            None => sqlx::query(
                "INSERT INTO context_entries (namespace, key, value, expires_at) \
                 VALUES (?1, ?2, ?3, NULL) \
                 ON CONFLICT (namespace, key) DO UPDATE \
                 SET value = excluded.value, expires_at = NULL \
                 WHERE context_entries.expires_at IS NOT NULL \
                 AND context_entries.expires_at <= ?4",
            )
            .bind(namespace.as_str())
            .bind(key)
            .bind(new)
            .bind(now_millis()),
            Some(expected) => sqlx::query(
                "UPDATE context_entries SET value = ?3, expires_at = NULL \
                 WHERE namespace = ?1 AND key = ?2 AND value = ?4 \
                 AND (expires_at IS NULL OR expires_at > ?5)",
            )
            .bind(namespace.as_str())
            .bind(key)
            .bind(new)
            .bind(expected)
            .bind(now_millis()),
        };
        let result = query
            .execute(&self.pool)
            .await
            .map_err(|error| backend("compare_and_swap", error))?;
        Ok(result.rows_affected() == 1)
    }

    async fn increment(&self, namespace: &Namespace, key: &str, delta: i64) -> Result<i64> {
        check_key(key)?;
        let mut transaction = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(|error| backend("increment", error))?;
        let now = now_millis();
        let current: Option<Vec<u8>> = sqlx::query_scalar(
            "SELECT value FROM context_entries \
             WHERE namespace = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
        )
        .bind(namespace.as_str())
        .bind(key)
        .bind(now)
        .fetch_optional(&mut *transaction)
        .await
        .map_err(|error| backend("increment", error))?;
        // On error the transaction is dropped, which rolls it back.
        let (sum, text) = apply_increment(current.as_deref(), delta)?;
        // A live row keeps its expiry; a missing or expired one becomes a new persistent key.
        let statement = if current.is_some() {
            "UPDATE context_entries SET value = ?3 WHERE namespace = ?1 AND key = ?2"
        } else {
            "INSERT INTO context_entries (namespace, key, value, expires_at) \
             VALUES (?1, ?2, ?3, NULL) \
             ON CONFLICT (namespace, key) DO UPDATE \
             SET value = excluded.value, expires_at = NULL"
        };
        sqlx::query(statement)
            .bind(namespace.as_str())
            .bind(key)
            .bind(text)
            .execute(&mut *transaction)
            .await
            .map_err(|error| backend("increment", error))?;
        transaction
            .commit()
            .await
            .map_err(|error| backend("increment", error))?;
        Ok(sum)
    }

    async fn ttl(&self, namespace: &Namespace, key: &str) -> Result<Ttl> {
        check_key(key)?;
        let now = now_millis();
        let row: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT expires_at FROM context_entries \
             WHERE namespace = ?1 AND key = ?2 AND (expires_at IS NULL OR expires_at > ?3)",
        )
        .bind(namespace.as_str())
        .bind(key)
        .bind(now)
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| backend("ttl", error))?;
        Ok(match row {
            None => Ttl::Missing,
            Some(None) => Ttl::Persistent,
            Some(Some(expires_at)) => {
                let left = u64::try_from(expires_at.saturating_sub(now)).unwrap_or(0);
                Ttl::ExpiresIn(Duration::from_millis(left))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn purge_batch_deletes_expired_rows_only() {
        let store = SqliteStore::in_memory().await.unwrap();
        let namespace = Namespace::new(["app"]);
        store
            .set(&namespace, "gone", b"v", Some(Duration::ZERO))
            .await
            .unwrap();
        store.set(&namespace, "kept", b"v", None).await.unwrap();
        store.purge_batch().await.unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM context_entries")
            .fetch_one(&store.pool)
            .await
            .unwrap();
        assert_eq!(rows, 1);
    }
}
