//! Redis in front of Postgres: reads are answered from Redis, every write goes to Postgres
//! before it returns. A value written survives the loss of Redis (which may keep nothing on
//! disk), of the node and of the coordinator.
//!
//! Redis holds a cache entry per key: `1` followed by the value, or `0` for a key known to be
//! missing, expiring with the key (and after [`CACHE_TTL`] at most); or `2` followed by a
//! random token: a *lease*, held by whoever is about to cache the key, which reads as a miss.
//!
//! Whoever caches takes a lease first, and caches only if the lease is still its own (one Lua
//! script, so nothing comes between the check and the `SET`). A write takes its lease over
//! whatever is there (when Redis cannot be reached the write fails and nothing is written),
//! writes Postgres, then caches the key's new state if its lease is still in place and
//! otherwise deletes the entry: another writer came after it, and which of the two committed
//! last is unknown, so the next read loads the key. A read that misses takes a lease only where
//! there is no entry (`SET NX`), loads Postgres and caches what it read under the same check, so
//! a write that began after it (and took the lease) keeps it from caching. So no entry is ever
//! older than the last write to finish; a writer whose last step fails leaves its lease, a
//! miss, until [`LEASE_TTL`].
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

/// The longest a cache entry lives.
pub const CACHE_TTL: Duration = Duration::from_secs(60);
/// The longest a lease lives: a writer or reader slower than this caches nothing.
pub const LEASE_TTL: Duration = Duration::from_secs(5);

const PRESENT: u8 = 1;
const MISSING: u8 = 0;
const LEASE: u8 = 2;

/// Caches `ARGV[2]` for `ARGV[3]` ms if the entry is still the lease `ARGV[1]`; otherwise,
/// when `ARGV[4]` is `1` (a writer), deletes the entry; when it is `2` (a writer that does not
/// know what it left), deletes the entry only if it is still the lease.
const CACHE_UNDER_LEASE_LUA: &str = r"
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  if ARGV[4] == '2' then
    redis.call('DEL', KEYS[1])
  else
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  end
  return 1
end
if ARGV[4] == '1' then
  redis.call('DEL', KEYS[1])
end
return 0
";

/// Who caches under a lease.
#[derive(Clone, Copy)]
enum Cacher {
    /// A read: caches only under its lease.
    Reader = 0,
    /// A write: caches under its lease, else drops the entry.
    Writer = 1,
    /// A write that left the key's state unknown: drops its own lease only.
    Unknown = 2,
}

/// A [`ContextStore`] that caches in Redis and records in Postgres.
#[derive(Clone)]
pub struct TieredStore {
    cache: RedisStore,
    record: PostgresStore,
    cache_under_lease: ::redis::Script,
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
        Self {
            cache,
            record,
            cache_under_lease: ::redis::Script::new(CACHE_UNDER_LEASE_LUA),
        }
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

    /// Takes a lease on `redis_key`: over any entry for a writer, only where there is none for
    /// a reader (`None` when there was one). Fails when Redis cannot be reached, so a write
    /// that cannot take its lease writes nothing.
    async fn lease(&self, redis_key: &str, writer: bool) -> Result<Option<Vec<u8>>> {
        let mut lease = Vec::with_capacity(17);
        lease.push(LEASE);
        lease.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        let millis = u64::try_from(LEASE_TTL.as_millis()).unwrap_or(u64::MAX);
        let mut command = ::redis::cmd("SET");
        command.arg(redis_key).arg(&lease).arg("PX").arg(millis);
        if !writer {
            command.arg("NX");
        }
        let taken: Option<String> = command
            .query_async(&mut self.connection())
            .await
            .map_err(|error| redis_error("lease", &error))?;
        Ok(taken.map(|_| lease))
    }

    /// Caches `entry` (`None`: the key is missing) at `redis_key` if `lease` is still there;
    /// otherwise does what `cacher` does.
    async fn cache_under_lease(
        &self,
        redis_key: &str,
        lease: &[u8],
        entry: Option<&Entry>,
        cacher: Cacher,
    ) -> Result<()> {
        let (bytes, millis) = cache_entry(entry);
        self.cache_under_lease
            .key(redis_key)
            .arg(lease)
            .arg(bytes)
            .arg(millis)
            .arg((cacher as u8).to_string())
            .invoke_async::<i64>(&mut self.connection())
            .await
            .map(drop)
            .map_err(|error| redis_error("cache", &error))
    }

    /// After a write under `lease`: caches the key's new state (`Cacher::Unknown`: only drops
    /// the lease). The write is already recorded, so a failure is logged, not reported; the
    /// lease expires by itself.
    async fn refresh(
        &self,
        redis_key: &str,
        lease: Option<&[u8]>,
        entry: Option<&Entry>,
        cacher: Cacher,
    ) {
        let Some(lease) = lease else { return };
        if let Err(error) = self
            .cache_under_lease(redis_key, lease, entry, cacher)
            .await
        {
            tracing::warn!(%error, "could not cache a context write; the lease expires by itself");
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
        let lease = self.lease(&redis_key, false).await.unwrap_or_else(|error| {
            tracing::warn!(%error, "could not lease a context cache entry");
            None
        });
        let entry = self.record.entry(namespace, key).await?;
        if let Some(lease) = lease
            && let Err(error) = self
                .cache_under_lease(&redis_key, &lease, entry.as_ref(), Cacher::Reader)
                .await
        {
            tracing::warn!(%error, "could not cache a context read");
        }
        Ok(entry.map(|(value, _)| value))
    }
}

/// The cache entry for `entry` (`None`: the key is missing) and how long it may live.
fn cache_entry(entry: Option<&Entry>) -> (Vec<u8>, u64) {
    let cap = u64::try_from(CACHE_TTL.as_millis()).unwrap_or(u64::MAX);
    match entry {
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
        let lease = self.lease(&redis_key, true).await?;
        self.record.set(namespace, key, value, ttl).await?;
        let expires_at = crate::expires_at(ttl, now_millis());
        let entry = (value.to_vec(), expires_at);
        self.refresh(&redis_key, lease.as_deref(), Some(&entry), Cacher::Writer)
            .await;
        Ok(())
    }

    async fn delete(&self, namespace: &Namespace, key: &str) -> Result<bool> {
        check_key(key)?;
        let redis_key = self.cache.redis_key(namespace, key);
        let lease = self.lease(&redis_key, true).await?;
        let existed = self.record.delete(namespace, key).await?;
        self.refresh(&redis_key, lease.as_deref(), None, Cacher::Writer)
            .await;
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
        let lease = self.lease(&redis_key, true).await?;
        let swapped = self
            .record
            .compare_and_swap(namespace, key, expected, new)
            .await?;
        if swapped {
            let entry = (new.to_vec(), None);
            self.refresh(&redis_key, lease.as_deref(), Some(&entry), Cacher::Writer)
                .await;
        } else {
            // What the record holds is not known here: the next read loads it.
            self.refresh(&redis_key, lease.as_deref(), None, Cacher::Unknown)
                .await;
        }
        Ok(swapped)
    }

    async fn increment(&self, namespace: &Namespace, key: &str, delta: i64) -> Result<i64> {
        check_key(key)?;
        let redis_key = self.cache.redis_key(namespace, key);
        let lease = self.lease(&redis_key, true).await?;
        let (sum, expires_at) = self.record.increment_entry(namespace, key, delta).await?;
        let entry = (sum.to_string().into_bytes(), expires_at);
        self.refresh(&redis_key, lease.as_deref(), Some(&entry), Cacher::Writer)
            .await;
        Ok(sum)
    }

    async fn ttl(&self, namespace: &Namespace, key: &str) -> Result<Ttl> {
        self.record.ttl(namespace, key).await
    }
}
