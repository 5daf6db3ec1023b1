//! Redis in front of Postgres: reads are answered from Redis, every write goes to Postgres
//! before it returns. A value written survives the loss of Redis (which may keep nothing on
//! disk), of the node and of the coordinator.
//!
//! Redis holds a cache entry per key: `1` followed by the value, or `0` for a key known to be
//! missing, expiring with the key (and after [`CACHE_TTL`] at most). A read that misses loads
//! the key from Postgres and caches it with `SET NX`. A write first deletes the entry (when
//! Redis cannot be reached the write fails and nothing is written), then writes Postgres, then
//! caches the key's new state with a plain `SET`. So a read that loaded the old state before the
//! write cannot cache it after: its `SET NX` finds the writer's entry, or the writer's `SET`
//! replaces it. Only a writer whose final `SET` fails can leave such a stale entry, for
//! [`CACHE_TTL`] at most.
//!
//! When Redis cannot be reached, reads fall back to Postgres.

use std::fmt;
use std::time::Duration;

use ::redis::aio::ConnectionManager;
use async_trait::async_trait;

use crate::postgres::Entry;
use crate::redis::backend as redis_error;
use crate::{
    ContextStore, Namespace, PostgresStore, RedisStore, Result, Ttl, check_key, check_value,
    now_millis,
};

/// The longest a cache entry lives: a bound on how long a stale entry can last.
pub const CACHE_TTL: Duration = Duration::from_secs(60);

const PRESENT: u8 = 1;
const MISSING: u8 = 0;

/// A [`ContextStore`] that caches in Redis and records in Postgres.
#[derive(Clone)]
pub struct TieredStore {
    cache: RedisStore,
    record: PostgresStore,
}

impl fmt::Debug for TieredStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TieredStore")
            .field("cache", &self.cache)
            .finish_non_exhaustive()
    }
}

/// What the cache says of a key.
enum Cached {
    Present(Vec<u8>),
    Missing,
}

impl TieredStore {
    /// Caches in `cache` (its key prefix keeps the entries apart from other users of the
    /// server) what `record` holds.
    pub fn new(cache: RedisStore, record: PostgresStore) -> Self {
        Self { cache, record }
    }

    /// The durable record behind the cache.
    pub fn record(&self) -> &PostgresStore {
        &self.record
    }

    fn connection(&self) -> ConnectionManager {
        self.cache.connection()
    }

    async fn cached(&self, redis_key: &str) -> Result<Option<Cached>> {
        let bytes: Option<Vec<u8>> = ::redis::cmd("GET")
            .arg(redis_key)
            .query_async(&mut self.connection())
            .await
            .map_err(|error| redis_error("get", &error))?;
        Ok(bytes.and_then(|bytes| match bytes.split_first() {
            Some((&PRESENT, value)) => Some(Cached::Present(value.to_vec())),
            Some((&MISSING, [])) => Some(Cached::Missing),
            // Not an entry this store wrote: treat it as a miss, the load replaces it.
            _ => None,
        }))
    }

    /// Caches `entry` (`None`: the key is missing) at `redis_key`; with `only_if_absent`,
    /// only when there is no entry yet.
    async fn cache(
        &self,
        redis_key: &str,
        entry: Option<&Entry>,
        only_if_absent: bool,
    ) -> Result<()> {
        let cap = u64::try_from(CACHE_TTL.as_millis()).unwrap_or(u64::MAX);
        let (bytes, millis) = match entry {
            None => (vec![MISSING], cap),
            Some((value, expires_at)) => {
                let left = expires_at.map(|at| at.saturating_sub(now_millis()));
                if left.is_some_and(|left| left <= 0) {
                    (vec![MISSING], cap)
                } else {
                    let mut bytes = Vec::with_capacity(1 + value.len());
                    bytes.push(PRESENT);
                    bytes.extend_from_slice(value);
                    let left = left.and_then(|left| u64::try_from(left).ok());
                    (bytes, left.map_or(cap, |left| left.min(cap)))
                }
            }
        };
        let mut command = ::redis::cmd("SET");
        command.arg(redis_key).arg(bytes).arg("PX").arg(millis);
        if only_if_absent {
            command.arg("NX");
        }
        command
            .query_async::<()>(&mut self.connection())
            .await
            .map_err(|error| redis_error("set", &error))
    }

    /// Before a write: drops the key's entry, or fails when Redis cannot be reached.
    async fn invalidate(&self, redis_key: &str) -> Result<()> {
        ::redis::cmd("DEL")
            .arg(redis_key)
            .query_async::<()>(&mut self.connection())
            .await
            .map_err(|error| redis_error("invalidate", &error))
    }

    /// After a write: caches the key's new state. The write is already recorded, so a failure
    /// is logged, not reported.
    async fn refresh(&self, redis_key: &str, entry: Option<&Entry>) {
        if let Err(error) = self.cache(redis_key, entry, false).await {
            tracing::warn!(%error, "could not cache a context write; the entry expires by itself");
        }
    }

    async fn entry(&self, namespace: &Namespace, key: &str) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        let redis_key = self.cache.redis_key(namespace, key);
        match self.cached(&redis_key).await {
            Ok(Some(Cached::Present(value))) => return Ok(Some(value)),
            Ok(Some(Cached::Missing)) => return Ok(None),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "the context cache did not answer; reading the record");
                return self.record.get(namespace, key).await;
            }
        }
        let entry = self.record.entry(namespace, key).await?;
        if let Err(error) = self.cache(&redis_key, entry.as_ref(), true).await {
            tracing::warn!(%error, "could not cache a context read");
        }
        Ok(entry.map(|(value, _)| value))
    }
}

#[async_trait]
impl ContextStore for TieredStore {
    async fn get(&self, namespace: &Namespace, key: &str) -> Result<Option<Vec<u8>>> {
        self.entry(namespace, key).await
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
        let redis_key = self.cache.redis_key(namespace, key);
        self.invalidate(&redis_key).await?;
        self.record.set(namespace, key, value, ttl).await?;
        let expires_at = crate::expires_at(ttl, now_millis());
        self.refresh(&redis_key, Some(&(value.to_vec(), expires_at)))
            .await;
        Ok(())
    }

    async fn delete(&self, namespace: &Namespace, key: &str) -> Result<bool> {
        check_key(key)?;
        let redis_key = self.cache.redis_key(namespace, key);
        self.invalidate(&redis_key).await?;
        let existed = self.record.delete(namespace, key).await?;
        self.refresh(&redis_key, None).await;
        Ok(existed)
    }

    async fn exists(&self, namespace: &Namespace, key: &str) -> Result<bool> {
        Ok(self.entry(namespace, key).await?.is_some())
    }

    async fn keys(&self, namespace: &Namespace) -> Result<Vec<String>> {
        self.record.keys(namespace).await
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
        let redis_key = self.cache.redis_key(namespace, key);
        self.invalidate(&redis_key).await?;
        let swapped = self
            .record
            .compare_and_swap(namespace, key, expected, new)
            .await?;
        if swapped {
            self.refresh(&redis_key, Some(&(new.to_vec(), None))).await;
        }
        Ok(swapped)
    }

    async fn increment(&self, namespace: &Namespace, key: &str, delta: i64) -> Result<i64> {
        check_key(key)?;
        let redis_key = self.cache.redis_key(namespace, key);
        self.invalidate(&redis_key).await?;
        let (sum, expires_at) = self.record.increment_entry(namespace, key, delta).await?;
        self.refresh(
            &redis_key,
            Some(&(sum.to_string().into_bytes(), expires_at)),
        )
        .await;
        Ok(sum)
    }

    async fn ttl(&self, namespace: &Namespace, key: &str) -> Result<Ttl> {
        self.record.ttl(namespace, key).await
    }
}
