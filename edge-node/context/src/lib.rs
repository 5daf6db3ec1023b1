//! Context stores: key-value state that outlives a single invocation: in memory, SQLite,
//! Redis, Postgres, or Redis in front of Postgres ([`TieredStore`]).
//!
//! Guests see this state through Spin's key-value interfaces; the coordinator will expose it
//! through its API. Every backend implements [`ContextStore`] and passes one shared test suite,
//! so a guest cannot tell which backend it runs on.
//!
//! Not here: permissions (which component may open which store) and store labels. Callers
//! map a label to a [`Namespace`] and check permissions before they get here.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;

mod decimal;
mod memory;
mod postgres;
mod redis;
mod sqlite;
mod tiered;

pub use crate::memory::MemoryStore;
pub use crate::postgres::PostgresStore;
pub use crate::redis::RedisStore;
pub use crate::sqlite::SqliteStore;
pub use crate::tiered::TieredStore;

/// Result of a context-store operation.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a context-store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The key is empty or longer than [`MAX_KEY_BYTES`].
    #[error("key is {len} bytes; keys must be 1 to {MAX_KEY_BYTES} bytes")]
    InvalidKey {
        /// Length of the rejected key in bytes.
        len: usize,
    },
    /// The value is longer than [`MAX_VALUE_BYTES`].
    #[error("value is {len} bytes; values may be at most {MAX_VALUE_BYTES} bytes")]
    ValueTooLarge {
        /// Length of the rejected value in bytes.
        len: usize,
    },
    /// `increment` found a value that is not a decimal 64-bit integer.
    #[error("value of key is not a decimal 64-bit integer")]
    NotAnInteger,
    /// `increment` would overflow a 64-bit integer.
    #[error("increment overflows a 64-bit integer")]
    Overflow,
    /// The backend failed (I/O, connection, server error). Retrying may succeed.
    #[error("context backend failed: {0}")]
    Backend(String),
}

/// Longest key accepted, in bytes (Spin's documented limit).
pub const MAX_KEY_BYTES: usize = 255;
/// Largest value accepted, in bytes (Spin's documented limit for the default store).
pub const MAX_VALUE_BYTES: usize = 1024 * 1024;
/// Longest TTL honoured. Every backend shortens longer TTLs to this, so that an absurd TTL
/// (`Duration::MAX`) cannot overflow a clock or be refused by one backend and not another.
pub const MAX_TTL: Duration = Duration::from_secs(100 * 365 * 24 * 60 * 60);

/// An isolated key space, for example `app/default` for a function's `default` store or
/// `project/agent/default` for an agent's.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Namespace(String);

impl Namespace {
    /// A namespace from `/`-separated parts. Parts are used as given; callers pass names
    /// they have validated (app names, store labels).
    pub fn new<'a>(parts: impl IntoIterator<Item = &'a str>) -> Self {
        let mut text = String::new();
        for part in parts {
            if !text.is_empty() {
                text.push('/');
            }
            text.push_str(part);
        }
        Self(text)
    }

    /// Store `label` of `tenant` (an app, or a project whose apps share their stores).
    pub fn store(tenant: &str, label: &str) -> Self {
        Self::new([tenant, label])
    }

    /// Store `label` of `tenant`'s agent `agent`. Labels never contain `/`, so no agent's store
    /// is ever a tenant's own ([`Namespace::store`] has two parts, this four).
    pub fn agent_store(tenant: &str, agent: &str, label: &str) -> Self {
        Self::new([tenant, "agents", agent, label])
    }

    /// The namespace as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Namespace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Namespace({})", self.0)
    }
}

/// How long a key has left to live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ttl {
    /// The key does not exist (or has expired).
    Missing,
    /// The key exists and never expires.
    Persistent,
    /// The key exists and expires after this long (rounded down to milliseconds).
    ExpiresIn(Duration),
}

/// A key-value store partitioned into [`Namespace`]s.
///
/// Contract shared by every backend (checked by the shared test suite):
/// - keys are 1..=[`MAX_KEY_BYTES`] bytes, values at most [`MAX_VALUE_BYTES`]; others are refused
///   with [`Error::InvalidKey`] / [`Error::ValueTooLarge`] and nothing is written;
/// - an expired key behaves exactly like a missing one, in every operation;
/// - `set` replaces the value and its TTL (`None` makes the key persistent);
/// - `increment` treats a missing key as 0, stores the result as decimal text (what `get`
///   returns) and keeps an existing TTL; a value that is not a decimal i64 is
///   [`Error::NotAnInteger`];
/// - `compare_and_swap` writes only when the current value equals `expected` (`None`: the key
///   must not exist), atomically with respect to every other operation on the same key, and
///   makes the key persistent;
/// - namespaces never see each other's keys.
#[async_trait]
pub trait ContextStore: Send + Sync + 'static {
    /// The value of `key`, if it exists.
    async fn get(&self, namespace: &Namespace, key: &str) -> Result<Option<Vec<u8>>>;

    /// Sets `key` to `value`, expiring after `ttl` when given.
    async fn set(
        &self,
        namespace: &Namespace,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<()>;

    /// Deletes `key`; returns whether it existed.
    async fn delete(&self, namespace: &Namespace, key: &str) -> Result<bool>;

    /// Whether `key` exists.
    async fn exists(&self, namespace: &Namespace, key: &str) -> Result<bool>;

    /// Every key in the namespace, in no particular order.
    async fn keys(&self, namespace: &Namespace) -> Result<Vec<String>>;

    /// Atomically replaces the value of `key` with `new` if it currently equals `expected`.
    /// Returns whether the swap happened.
    async fn compare_and_swap(
        &self,
        namespace: &Namespace,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool>;

    /// Atomically adds `delta` to the integer stored at `key` and returns the new value.
    async fn increment(&self, namespace: &Namespace, key: &str, delta: i64) -> Result<i64>;

    /// How long `key` has left to live.
    async fn ttl(&self, namespace: &Namespace, key: &str) -> Result<Ttl>;
}

/// Checks the limits every backend enforces before touching storage.
pub fn check_key(key: &str) -> Result<()> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(Error::InvalidKey { len: key.len() });
    }
    Ok(())
}

/// Checks a value against [`MAX_VALUE_BYTES`].
pub fn check_value(value: &[u8]) -> Result<()> {
    if value.len() > MAX_VALUE_BYTES {
        return Err(Error::ValueTooLarge { len: value.len() });
    }
    Ok(())
}

/// Wall-clock now in Unix milliseconds, as the SQL backends store expiry (so that TTLs survive
/// a restart). A clock before 1970 reads as 1970, which at worst keeps expired keys alive until
/// the clock is fixed.
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|since_epoch| i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// When a key written at `now` (Unix milliseconds) with `ttl` expires.
pub(crate) fn expires_at(ttl: Option<Duration>, now: i64) -> Option<i64> {
    ttl.map(|ttl| now.saturating_add(i64::try_from(ttl_millis(ttl)).unwrap_or(i64::MAX)))
}

/// A TTL as whole milliseconds, capped at [`MAX_TTL`] and rounded up, so that a key never
/// expires before the time it was given. Zero stays zero: the key is expired as soon as written.
pub(crate) fn ttl_millis(ttl: Duration) -> u64 {
    let capped = ttl.min(MAX_TTL);
    let millis = capped.as_millis() + u128::from(!capped.subsec_nanos().is_multiple_of(1_000_000));
    // MAX_TTL is ~3.2e12 ms, far below u64::MAX; the fallback is unreachable.
    u64::try_from(millis).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttl_millis_rounds_up_and_caps() {
        assert_eq!(ttl_millis(Duration::ZERO), 0);
        assert_eq!(ttl_millis(Duration::from_micros(1)), 1);
        assert_eq!(ttl_millis(Duration::from_millis(50)), 50);
        assert_eq!(ttl_millis(Duration::from_micros(50_001)), 51);
        assert_eq!(ttl_millis(Duration::MAX), ttl_millis(MAX_TTL));
    }

    #[test]
    fn namespace_joins_parts() {
        assert_eq!(Namespace::new(["app", "default"]).as_str(), "app/default");
        assert_eq!(Namespace::new(["solo"]).as_str(), "solo");
    }
}
