//! Secrets for the coordinator and the edge: values read from HashiCorp Vault's KV v2 engine
//! over its HTTP API (token or AppRole auth), kept in a cache for a TTL, never logged, never
//! shown by `Debug` or `Display`, never put in an error.
//!
//! [`SecretStore::read`] answers from the cache while an entry is fresh (no network) and asks
//! Vault once per key when it is not, however many callers ask at once. When Vault cannot
//! answer and the entry has expired, the read fails closed ([`SecretError::Unavailable`]): it
//! never hands out a value past its TTL, nor an empty one.
//!
//! Layout in Vault: a secret named `a/b` is the `value` key of the KV v2 secret at
//! `<prefix>/a/b` under the mount (`secret` by default), as Spin's Vault provider reads it.
//!
//! Not here: where a name comes from (the coordinator's settings, an app's `secret = true`
//! variables) or the environment as a source; the callers decide that. This crate depends on
//! no other nexus crate.

use std::fmt;
use std::sync::Arc;

mod cache;
pub mod config;
mod vault;

#[cfg(feature = "testing")]
pub mod testing;

pub use cache::{Clock, ManualClock, SystemClock};
#[cfg(feature = "cli")]
pub use config::VaultArgs;
pub use config::{ConfigError, VaultAuth, VaultConfig, VaultSettings};
pub use vault::{MAX_RESPONSE_BYTES, VaultError, https_client};

use cache::Cache;
use vault::VaultClient;

/// A secret's value; its `Debug` shows nothing of it and it has no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// A secret holding `value`.
    pub fn new(value: String) -> Self {
        Self(value)
    }

    /// The value, for the one place that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Why a secret could not be had. Names the secret and the cause, never the value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretError {
    /// Vault answered that there is no such secret (or it has no string `value`).
    #[error("secret `{name}` not found in Vault (mount `{mount}`, path `{path}`, key `value`)")]
    NotFound {
        /// The secret's name.
        name: String,
        /// The KV v2 mount.
        mount: String,
        /// Its path under the mount.
        path: String,
    },
    /// Vault could not be asked, or refused, and no fresh value is cached.
    #[error("secret `{name}` could not be read from Vault: {cause}")]
    Unavailable {
        /// The secret's name.
        name: String,
        /// What went wrong.
        cause: VaultError,
    },
}

/// Vault behind a TTL cache; share one per process (it holds the Vault token and the cache).
pub struct SecretStore {
    vault: VaultClient,
    cache: Cache,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStore")
            .field("addr", &self.vault.config().addr)
            .finish_non_exhaustive()
    }
}

impl SecretStore {
    /// A store reading from the Vault `config` names.
    pub fn new(config: VaultConfig) -> Result<Self, VaultError> {
        Self::with_clock(config, Arc::new(SystemClock))
    }

    /// A store whose TTLs and token leases follow `clock` (tests move a [`ManualClock`]).
    pub fn with_clock(config: VaultConfig, clock: Arc<dyn Clock>) -> Result<Self, VaultError> {
        let cache = Cache::new(config.cache_ttl, Arc::clone(&clock));
        Ok(Self {
            vault: VaultClient::new(config, clock)?,
            cache,
        })
    }

    /// What this store reads from.
    pub fn config(&self) -> &VaultConfig {
        self.vault.config()
    }

    /// Secret `name` (a path under the configured prefix, `/`-separated): from the cache while
    /// fresh, else from Vault (one request however many ask at once).
    pub async fn read(&self, name: &str) -> Result<Secret, SecretError> {
        let name = name.trim_matches('/');
        let read = self
            .cache
            .get_or_fetch(name, || self.vault.read(name))
            .await;
        match read {
            Ok(Some(secret)) => Ok(secret),
            Ok(None) => Err(SecretError::NotFound {
                name: name.to_owned(),
                mount: self.config().mount.clone(),
                path: self.config().path_of(name),
            }),
            Err(cause) => {
                tracing::warn!(secret = name, %cause, "vault read failed");
                Err(SecretError::Unavailable {
                    name: name.to_owned(),
                    cause,
                })
            }
        }
    }

    /// Requests sent to Vault so far (reads and logins), for tests and metrics.
    pub fn requests(&self) -> u64 {
        self.vault.requests()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_errors_never_show_values() {
        let secret = Secret::new("hunter2".to_owned());
        assert_eq!(format!("{secret:?}"), "Secret(…)");
        let error = SecretError::Unavailable {
            name: "apps/shop/api_key".to_owned(),
            cause: VaultError::Timeout(std::time::Duration::from_secs(5)),
        };
        assert!(error.to_string().contains("apps/shop/api_key"), "{error}");
        assert!(!format!("{error:?}").contains("hunter2"));
    }
}
