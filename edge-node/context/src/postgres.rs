//! Postgres context store: the durable record, shared by every node and the coordinator that
//! point at the same database. Every statement also runs on CockroachDB.
//!
//! Rows live in `nexus_context_entries`, keyed by `(namespace, key)` as bytes (keys may hold
//! NUL, which `TEXT` cannot), with `expires_at` in Unix milliseconds (wall clock). Expired rows count as missing in every query; writes replace
//! them, `keys` deletes its namespace's, and `purge_expired` deletes the rest.
//!
//! The table is created when missing at connect (`CREATE TABLE IF NOT EXISTS`), so the store
//! needs no migration runner of its own next to the coordinator's in the same database.
//!
//! `compare_and_swap` is one conditional statement. `increment` first upserts the row (a
//! missing or expired key becomes `0`), which locks it until the transaction ends, then writes
//! the sum: concurrent increments of one key queue on that lock.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use crate::decimal::apply_increment;
use crate::{
    ContextStore, Error, Namespace, Result, Ttl, check_key, check_value, expires_at, now_millis,
};

/// Connections in the pool.
const MAX_CONNECTIONS: u32 = 16;
/// How long an operation waits for a free connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS nexus_context_entries (\
     namespace BYTEA NOT NULL, \
     key BYTEA NOT NULL, \
     value BYTEA NOT NULL, \
     expires_at BIGINT, \
     PRIMARY KEY (namespace, key))";

/// A [`ContextStore`] in Postgres or CockroachDB.
#[derive(Debug, Clone)]
pub struct PostgresStore {
    pool: PgPool,
}

fn backend(operation: &str, error: impl std::fmt::Display) -> Error {
    Error::Backend(format!("postgres {operation}: {error}"))
}

/// A stored value and when it expires (Unix milliseconds), as the tiered store caches it.
pub(crate) type Entry = (Vec<u8>, Option<i64>);

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/database`) and creates
    /// the table when missing. The message of a failure names the server without credentials.
    pub async fn connect(url: &str) -> Result<Self> {
        let options: PgConnectOptions = url
            .parse()
            .map_err(|error| backend("connect", format!("invalid url: {error}")))?;
        Self::connect_with(options).await
    }

    /// Connects with `options` (for example a `search_path`) and creates the table when
    /// missing.
    pub async fn connect_with(options: PgConnectOptions) -> Result<Self> {
        let shown = format!(
            "{}:{}/{}",
            options.get_host(),
            options.get_port(),
            options.get_database().unwrap_or("")
        );
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(|error| backend("connect", format!("cannot reach {shown}: {error}")))?;
        sqlx::query(CREATE_TABLE)
            .execute(&pool)
            .await
            .map_err(|error| backend("create table", error))?;
        Ok(Self { pool })
    }

    /// Deletes every expired row; returns how many. Expired rows are already invisible, so
    /// this only reclaims space.
    pub async fn purge_expired(&self) -> Result<u64> {
        let result = sqlx::query("DELETE FROM nexus_context_entries WHERE expires_at <= $1")
            .bind(now_millis())
            .execute(&self.pool)
            .await
            .map_err(|error| backend("purge", error))?;
        Ok(result.rows_affected())
    }

    /// The live value of `key` with its expiry.
    pub(crate) async fn entry(&self, namespace: &Namespace, key: &str) -> Result<Option<Entry>> {
        check_key(key)?;
        sqlx::query_as(
            "SELECT value, expires_at FROM nexus_context_entries \
             WHERE namespace = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)",
        )
        .bind(namespace.as_str().as_bytes())
        .bind(key.as_bytes())
        .bind(now_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| backend("get", error))
    }
    /// `increment`, answering the new value with the key's expiry (Unix milliseconds).
    pub(crate) async fn increment_entry(
        &self,
        namespace: &Namespace,
        key: &str,
        delta: i64,
    ) -> Result<(i64, Option<i64>)> {
        check_key(key)?;
        let failed = |error| backend("increment", error);
        let mut transaction = self.pool.begin().await.map_err(failed)?;
        // A missing or expired key starts from a persistent `0`; a live one keeps its value
        // and expiry. Either way the row is now locked by this transaction.
        let (current, expires_at): Entry = sqlx::query_as(
            "INSERT INTO nexus_context_entries (namespace, key, value, expires_at) \
             VALUES ($1, $2, '0', NULL) \
             ON CONFLICT (namespace, key) DO UPDATE SET \
             value = CASE WHEN nexus_context_entries.expires_at <= $3 THEN excluded.value \
                     ELSE nexus_context_entries.value END, \
             expires_at = CASE WHEN nexus_context_entries.expires_at <= $3 THEN NULL \
                          ELSE nexus_context_entries.expires_at END \
             RETURNING value, expires_at",
        )
        .bind(namespace.as_str().as_bytes())
        .bind(key.as_bytes())
        .bind(now_millis())
        .fetch_one(&mut *transaction)
        .await
        .map_err(failed)?;
        // On error the transaction is dropped, which rolls it back.
        let (sum, text) = apply_increment(Some(&current), delta)?;
        sqlx::query(
            "UPDATE nexus_context_entries SET value = $3 WHERE namespace = $1 AND key = $2",
        )
        .bind(namespace.as_str().as_bytes())
        .bind(key.as_bytes())
        .bind(text)
        .execute(&mut *transaction)
        .await
        .map_err(failed)?;
        transaction.commit().await.map_err(failed)?;
        Ok((sum, expires_at))
    }
}

#[async_trait]
impl ContextStore for PostgresStore {
    async fn get(&self, namespace: &Namespace, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.entry(namespace, key).await?.map(|(value, _)| value))
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
            "INSERT INTO nexus_context_entries (namespace, key, value, expires_at) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (namespace, key) DO UPDATE \
             SET value = excluded.value, expires_at = excluded.expires_at",
        )
        .bind(namespace.as_str().as_bytes())
        .bind(key.as_bytes())
        .bind(value)
        .bind(expires_at(ttl, now_millis()))
        .execute(&self.pool)
        .await
        .map_err(|error| backend("set", error))?;
        Ok(())
    }

    async fn delete(&self, namespace: &Namespace, key: &str) -> Result<bool> {
        check_key(key)?;
        let now = now_millis();
        // Deletes expired rows too (they are garbage anyway) but reports only live ones.
        let deleted: Option<Option<i64>> = sqlx::query_scalar(
            "DELETE FROM nexus_context_entries WHERE namespace = $1 AND key = $2 \
             RETURNING expires_at",
        )
        .bind(namespace.as_str().as_bytes())
        .bind(key.as_bytes())
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
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM nexus_context_entries \
             WHERE namespace = $1 AND key = $2 AND (expires_at IS NULL OR expires_at > $3)",
        )
        .bind(namespace.as_str().as_bytes())
        .bind(key.as_bytes())
        .bind(now_millis())
        .fetch_optional(&self.pool)
        .await
        .map_err(|error| backend("exists", error))?;
        Ok(found.is_some())
    }

    async fn keys(&self, namespace: &Namespace) -> Result<Vec<String>> {
        let now = now_millis();
        sqlx::query("DELETE FROM nexus_context_entries WHERE namespace = $1 AND expires_at <= $2")
            .bind(namespace.as_str().as_bytes())
            .bind(now)
            .execute(&self.pool)
            .await
            .map_err(|error| backend("keys", error))?;
        // Filter anyway: rows may expire between the two statements.
        let keys: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT key FROM nexus_context_entries \
             WHERE namespace = $1 AND (expires_at IS NULL OR expires_at > $2)",
        )
        .bind(namespace.as_str().as_bytes())
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(|error| backend("keys", error))?;
        keys.into_iter()
            .map(|key| {
                String::from_utf8(key).map_err(|_| backend("keys", "a stored key is not UTF-8"))
            })
            .collect()
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
        // One statement each: the row lock makes the compare and the write atomic.
        let query = match expected {
            // Insert, or take over a row that has expired (it counts as missing).
            None => sqlx::query(
                "INSERT INTO nexus_context_entries (namespace, key, value, expires_at) \
                 VALUES ($1, $2, $3, NULL) \
                 ON CONFLICT (namespace, key) DO UPDATE \
                 SET value = excluded.value, expires_at = NULL \
                 WHERE nexus_context_entries.expires_at IS NOT NULL \
                 AND nexus_context_entries.expires_at <= $4",
            )
            .bind(namespace.as_str().as_bytes())
            .bind(key.as_bytes())
            .bind(new)
            .bind(now_millis()),
            Some(expected) => sqlx::query(
                "UPDATE nexus_context_entries SET value = $3, expires_at = NULL \
                 WHERE namespace = $1 AND key = $2 AND value = $4 \
                 AND (expires_at IS NULL OR expires_at > $5)",
            )
            .bind(namespace.as_str().as_bytes())
            .bind(key.as_bytes())
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
        Ok(self.increment_entry(namespace, key, delta).await?.0)
    }

    async fn ttl(&self, namespace: &Namespace, key: &str) -> Result<Ttl> {
        let now = now_millis();
        Ok(match self.entry(namespace, key).await? {
            None => Ttl::Missing,
            Some((_, None)) => Ttl::Persistent,
            Some((_, Some(expires_at))) => {
                let left = u64::try_from(expires_at.saturating_sub(now)).unwrap_or(0);
                Ttl::ExpiresIn(Duration::from_millis(left))
            }
        })
    }
}
