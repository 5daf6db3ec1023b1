//! Redis context store: state shared by every node that points at the same server.
//!
//! Each context key is one Redis string at `{key_prefix}{namespace length}:{namespace}:{key}`.
//! The length makes the encoding injective whatever the namespace and key contain (`/`, `:`,
//! NUL…): namespace `a` with key `b:c` is `1:a:b:c`, namespace `a:b` with key `c` is `3:a:b:c`.
//! Redis' own TTLs do the expiring, so an expired key is simply absent.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use ::redis::{Client, RedisError, Script};
use async_trait::async_trait;

use crate::{ContextStore, Error, Namespace, Result, Ttl, check_key, check_value, ttl_millis};

/// Compare-and-swap as one server-side step. `ARGV[1]` is `1` when a current value is expected
/// (`ARGV[2]`), `0` when the key must be missing. A plain `SET` drops any TTL, as the contract
/// asks.
const COMPARE_AND_SWAP_LUA: &str = r"
local current = redis.call('GET', KEYS[1])
if ARGV[1] == '1' then
    if current ~= ARGV[2] then return 0 end
elseif current then
    return 0
end
redis.call('SET', KEYS[1], ARGV[3])
return 1
";

/// Keys asked for per `SCAN` round trip: a hint to Redis, not a limit.
const SCAN_BATCH: usize = 1000;
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Reconnection attempts before an operation fails; kept low so that an unreachable server
/// fails fast instead of stalling guests.
const CONNECTION_RETRIES: usize = 3;

/// A [`ContextStore`] in Redis.
///
/// Several stores (or nodes) may share one server: give each deployment its own `key_prefix`,
/// ending in a separator such as `:` so that one prefix is never the start of another.
#[derive(Clone)]
pub struct RedisStore {
    connection: ConnectionManager,
    key_prefix: String,
    compare_and_swap: Script,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("key_prefix", &self.key_prefix)
            .finish_non_exhaustive()
    }
}

pub(crate) fn backend(operation: &str, error: &RedisError) -> Error {
    Error::Backend(format!("redis {operation}: {error}"))
}

/// `url` without user name and password, for messages and logs.
fn redacted(url: &str) -> String {
    match ::redis::parse_redis_url(url) {
        Some(mut parsed) => {
            // Both only fail for URLs that cannot carry credentials in the first place.
            let _ = parsed.set_password(None);
            let _ = parsed.set_username("");
            parsed.to_string()
        }
        None => "<unparsable url>".to_owned(),
    }
}

/// Escapes Redis glob metacharacters so that `text` matches only itself in `SCAN MATCH`.
fn escape_glob(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        if matches!(character, '*' | '?' | '[' | ']' | '\\') {
            escaped.push('\\');
        }
        escaped.push(character);
    }
    escaped
}

impl RedisStore {
    /// Connects to the Redis server at `url` (`redis://[user:password@]host[:port][/db]`).
    ///
    /// Every Redis key this store touches starts with `key_prefix`. Fails with
    /// [`Error::Backend`] if the server cannot be reached; the message names the server
    /// without credentials.
    pub async fn connect(url: &str, key_prefix: impl Into<String>) -> Result<Self> {
        let shown_url = redacted(url);
        let password = ::redis::parse_redis_url(url)
            .and_then(|parsed| parsed.password().map(str::to_owned))
            .filter(|password| !password.is_empty());
        // Redis error texts do not include the URL today; scrub the password anyway so that a
        // future client version cannot leak it through us.
        let failed = |error: RedisError| {
            let mut detail = error.to_string();
            if let Some(password) = &password {
                detail = detail.replace(password.as_str(), "***");
            }
            Error::Backend(format!("cannot connect to redis at {shown_url}: {detail}"))
        };
        let client = Client::open(url).map_err(failed)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(CONNECTION_RETRIES);
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(failed)?;
        tracing::debug!(url = %shown_url, "connected to redis context store");
        Ok(Self::from_manager(connection, key_prefix))
    }

    /// A store on an existing connection, for callers that configure or share their own.
    pub fn from_manager(connection: ConnectionManager, key_prefix: impl Into<String>) -> Self {
        Self {
            connection,
            key_prefix: key_prefix.into(),
            compare_and_swap: Script::new(COMPARE_AND_SWAP_LUA),
        }
    }

    /// The prefix of every Redis key this store uses.
    pub fn key_prefix(&self) -> &str {
        &self.key_prefix
    }

    fn namespace_prefix(&self, namespace: &Namespace) -> String {
        namespace_prefix(&self.key_prefix, namespace)
    }

    /// The connection, for the tiered store's cache commands.
    pub(crate) fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    pub(crate) fn redis_key(&self, namespace: &Namespace, key: &str) -> String {
        let mut redis_key = self.namespace_prefix(namespace);
        redis_key.push_str(key);
        redis_key
    }
}

/// What every Redis key of `namespace` starts with; the context key follows it.
fn namespace_prefix(key_prefix: &str, namespace: &Namespace) -> String {
    let namespace = namespace.as_str();
    format!("{key_prefix}{}:{namespace}:", namespace.len())
}

#[async_trait]
impl ContextStore for RedisStore {
    async fn get(&self, namespace: &Namespace, key: &str) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        ::redis::cmd("GET")
            .arg(self.redis_key(namespace, key))
            .query_async(&mut self.connection.clone())
            .await
            .map_err(|error| backend("get", &error))
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
        let redis_key = self.redis_key(namespace, key);
        let mut command = ::redis::cmd("SET");
        command.arg(&redis_key).arg(value);
        match ttl.map(ttl_millis) {
            None => {}
            // `PX 0` is refused by Redis; a key that expires as it is written is a missing key.
            Some(0) => {
                command = ::redis::cmd("DEL");
                command.arg(&redis_key);
            }
            Some(millis) => {
                command.arg("PX").arg(millis);
            }
        }
        command
            .query_async::<()>(&mut self.connection.clone())
            .await
            .map_err(|error| backend("set", &error))
    }

    async fn delete(&self, namespace: &Namespace, key: &str) -> Result<bool> {
        check_key(key)?;
        let deleted: u64 = ::redis::cmd("DEL")
            .arg(self.redis_key(namespace, key))
            .query_async(&mut self.connection.clone())
            .await
            .map_err(|error| backend("delete", &error))?;
        Ok(deleted > 0)
    }

    async fn exists(&self, namespace: &Namespace, key: &str) -> Result<bool> {
        check_key(key)?;
        let found: u64 = ::redis::cmd("EXISTS")
            .arg(self.redis_key(namespace, key))
            .query_async(&mut self.connection.clone())
            .await
            .map_err(|error| backend("exists", &error))?;
        Ok(found > 0)
    }

    async fn keys(&self, namespace: &Namespace) -> Result<Vec<String>> {
        let prefix = self.namespace_prefix(namespace);
        let pattern = format!("{}*", escape_glob(&prefix));
        let mut connection = self.connection.clone();
        // SCAN may return a key more than once while the keyspace is rehashing.
        let mut keys = HashSet::new();
        let mut cursor: u64 = 0;
        loop {
            let (next_cursor, batch): (u64, Vec<Vec<u8>>) = ::redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_BATCH)
                .query_async(&mut connection)
                .await
                .map_err(|error| backend("keys", &error))?;
            for redis_key in batch {
                let Some(key) = redis_key.strip_prefix(prefix.as_bytes()) else {
                    continue;
                };
                match String::from_utf8(key.to_vec()) {
                    Ok(key) => {
                        keys.insert(key);
                    }
                    // Only something other than this store could have written such a key.
                    Err(_) => tracing::warn!(
                        namespace = %namespace,
                        "skipping redis key that is not UTF-8"
                    ),
                }
            }
            if next_cursor == 0 {
                break;
            }
            cursor = next_cursor;
        }
        Ok(keys.into_iter().collect())
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
        let (expects_value, expected_value) = match expected {
            Some(expected) => ("1", expected),
            None => ("0", &[][..]),
        };
        let swapped: i64 = self
            .compare_and_swap
            .key(self.redis_key(namespace, key))
            .arg(expects_value)
            .arg(expected_value)
            .arg(new)
            .invoke_async(&mut self.connection.clone())
            .await
            .map_err(|error| backend("compare_and_swap", &error))?;
        Ok(swapped == 1)
    }

    async fn increment(&self, namespace: &Namespace, key: &str, delta: i64) -> Result<i64> {
        check_key(key)?;
        // INCRBY treats a missing key as 0, writes decimal text and keeps the TTL: exactly the
        // contract. Its two refusals are told apart by their messages.
        ::redis::cmd("INCRBY")
            .arg(self.redis_key(namespace, key))
            .arg(delta)
            .query_async(&mut self.connection.clone())
            .await
            .map_err(|error| match error.detail() {
                Some(detail) if detail.contains("not an integer") => Error::NotAnInteger,
                Some(detail) if detail.contains("overflow") => Error::Overflow,
                _ => backend("increment", &error),
            })
    }

    async fn ttl(&self, namespace: &Namespace, key: &str) -> Result<Ttl> {
        check_key(key)?;
        let millis: i64 = ::redis::cmd("PTTL")
            .arg(self.redis_key(namespace, key))
            .query_async(&mut self.connection.clone())
            .await
            .map_err(|error| backend("ttl", &error))?;
        Ok(match millis {
            -1 => Ttl::Persistent,
            left if left >= 0 => Ttl::ExpiresIn(Duration::from_millis(left.unsigned_abs())),
            // -2, and anything else Redis might add, means there is no key to report on.
            _ => Ttl::Missing,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(prefix: &str, namespace: &str, key: &str) -> String {
        namespace_prefix(prefix, &Namespace::new([namespace])) + key
    }

    #[test]
    fn encoding_separates_namespace_from_key() {
        assert_eq!(encode("p:", "app/default", "k"), "p:11:app/default:k");
        assert_ne!(encode("p:", "a", "b:c"), encode("p:", "a:b", "c"));
        assert_ne!(encode("p:", "a", "b\0c"), encode("p:", "a\0b", "c"));
        assert_ne!(encode("p:", "a", "1:b"), encode("p:", "a:1", "b"));
    }

    #[test]
    fn glob_metacharacters_are_escaped() {
        assert_eq!(escape_glob(r"a*b?c[d]e\f"), r"a\*b\?c\[d\]e\\f");
        assert_eq!(escape_glob("app/default:"), "app/default:");
    }

    #[test]
    fn redaction_drops_credentials() {
        let shown = redacted("redis://user:s3cret@127.0.0.1:6379/2");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(!shown.contains("user"), "{shown}");
        assert!(shown.contains("127.0.0.1:6379"), "{shown}");
        assert_eq!(redacted("not a url s3cret"), "<unparsable url>");
    }
}
