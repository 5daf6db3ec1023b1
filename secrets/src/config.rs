//! Where Vault is and how to log in: one typed [`VaultConfig`], built from the environment
//! (through an injected lookup) or from the binaries' flags ([`VaultArgs`]), every bad value
//! or combination reported at once.

#[cfg(feature = "cli")]
use std::fmt;
use std::time::Duration;

use crate::Secret;

/// Vault's address, `https://vault.example:8200` (`http://` too); no Vault without it.
pub const ENV_ADDR: &str = "NEXUS_VAULT_ADDR";
/// A Vault token (token auth).
pub const ENV_TOKEN: &str = "NEXUS_VAULT_TOKEN";
/// The variable Vault's own tools read a token from, used when [`ENV_TOKEN`] is not set.
pub const ENV_VAULT_TOKEN: &str = "VAULT_TOKEN";
/// An AppRole's role id (AppRole auth, with [`ENV_SECRET_ID`]).
pub const ENV_ROLE_ID: &str = "NEXUS_VAULT_ROLE_ID";
/// The AppRole's secret id.
pub const ENV_SECRET_ID: &str = "NEXUS_VAULT_SECRET_ID";
/// The KV v2 mount ([`DEFAULT_MOUNT`] unless set).
pub const ENV_MOUNT: &str = "NEXUS_VAULT_MOUNT";
/// A path prefix under the mount for every secret.
pub const ENV_PREFIX: &str = "NEXUS_VAULT_PREFIX";
/// A Vault Enterprise namespace (`X-Vault-Namespace`).
pub const ENV_NAMESPACE: &str = "NEXUS_VAULT_NAMESPACE";
/// Seconds a value read is used without asking Vault again; 0 asks every time.
pub const ENV_CACHE_TTL_SECS: &str = "NEXUS_VAULT_CACHE_TTL_SECS";

/// The KV v2 mount Vault's dev server enables.
pub const DEFAULT_MOUNT: &str = "secret";
/// How long a value read is used without asking Vault again.
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5 * 60);
/// How long one call to Vault (connect, answer, body) may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// How the store logs in to Vault.
#[derive(Debug, Clone)]
pub enum VaultAuth {
    /// A token, used as it is.
    Token(Secret),
    /// AppRole: `POST auth/approle/login`, again before the token's lease ends or on a 403.
    AppRole {
        /// The role id.
        role_id: String,
        /// The secret id.
        secret_id: Secret,
    },
}

/// Where Vault is and how to read from it.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    /// `http(s)://host:port`, without a trailing `/`.
    pub addr: String,
    /// How to log in.
    pub auth: VaultAuth,
    /// The KV v2 mount.
    pub mount: String,
    /// A path prefix for every secret, without leading or trailing `/`; may be empty.
    pub prefix: String,
    /// A Vault Enterprise namespace.
    pub namespace: Option<String>,
    /// How long a value read is used without asking Vault again.
    pub cache_ttl: Duration,
    /// How long one call may take.
    pub timeout: Duration,
}

impl VaultConfig {
    /// A config for Vault at `addr` with `auth` and every default.
    pub fn new(addr: &str, auth: VaultAuth) -> Self {
        Self {
            addr: addr.trim_end_matches('/').to_owned(),
            auth,
            mount: DEFAULT_MOUNT.to_owned(),
            prefix: String::new(),
            namespace: None,
            cache_ttl: DEFAULT_CACHE_TTL,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// The path under the mount of secret `name`.
    pub fn path_of(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }
}

/// The settings as given, before they are checked.
#[derive(Debug, Clone, Default)]
pub struct VaultSettings {
    /// [`ENV_ADDR`].
    pub addr: Option<String>,
    /// [`ENV_TOKEN`], else [`ENV_VAULT_TOKEN`].
    pub token: Option<String>,
    /// [`ENV_ROLE_ID`].
    pub role_id: Option<String>,
    /// [`ENV_SECRET_ID`].
    pub secret_id: Option<String>,
    /// [`ENV_MOUNT`].
    pub mount: Option<String>,
    /// [`ENV_PREFIX`].
    pub prefix: Option<String>,
    /// [`ENV_NAMESPACE`].
    pub namespace: Option<String>,
    /// [`ENV_CACHE_TTL_SECS`].
    pub cache_ttl_secs: Option<String>,
}

/// Every problem with the Vault settings, reported together.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("vault settings: {}", problems.join("; "))]
pub struct ConfigError {
    /// One sentence per problem.
    pub problems: Vec<String>,
}

impl VaultSettings {
    /// The settings in an environment, read through `lookup` (a variable's value by name).
    /// Empty values count as unset.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|value| !value.is_empty());
        Self {
            addr: get(ENV_ADDR),
            token: get(ENV_TOKEN).or_else(|| get(ENV_VAULT_TOKEN)),
            role_id: get(ENV_ROLE_ID),
            secret_id: get(ENV_SECRET_ID),
            mount: get(ENV_MOUNT),
            prefix: get(ENV_PREFIX),
            namespace: get(ENV_NAMESPACE),
            cache_ttl_secs: get(ENV_CACHE_TTL_SECS),
        }
    }

    /// The settings in `environment` (name, value pairs).
    pub fn from_pairs(environment: &[(String, String)]) -> Self {
        Self::from_lookup(|wanted| {
            environment
                .iter()
                .find(|(name, _)| name == wanted)
                .map(|(_, value)| value.clone())
        })
    }

    /// The checked config; `None` when no address is set (and nothing else Vault-only is).
    pub fn config(self) -> Result<Option<VaultConfig>, ConfigError> {
        let mut problems = Vec::new();
        let Some(addr) = self.addr else {
            // A token alone may be meant for Vault's own tools (`VAULT_TOKEN`); AppRole or
            // path settings without an address are a mistake.
            let stray: Vec<&str> = [
                (ENV_ROLE_ID, self.role_id.is_some()),
                (ENV_SECRET_ID, self.secret_id.is_some()),
                (ENV_MOUNT, self.mount.is_some()),
                (ENV_PREFIX, self.prefix.is_some()),
                (ENV_NAMESPACE, self.namespace.is_some()),
                (ENV_CACHE_TTL_SECS, self.cache_ttl_secs.is_some()),
            ]
            .into_iter()
            .filter_map(|(name, set)| set.then_some(name))
            .collect();
            if stray.is_empty() {
                return Ok(None);
            }
            return Err(ConfigError {
                problems: vec![format!("{} set without {ENV_ADDR}", stray.join(", "))],
            });
        };
        let addr = addr.trim_end_matches('/').to_owned();
        if !(addr.starts_with("https://") || addr.starts_with("http://"))
            || addr.parse::<http::Uri>().is_err()
        {
            problems.push(format!(
                "{ENV_ADDR} `{addr}` is not an http:// or https:// URL"
            ));
        }
        let auth = match (self.token, self.role_id, self.secret_id) {
            (Some(token), None, None) => Some(VaultAuth::Token(Secret::new(token))),
            (None, Some(role_id), Some(secret_id)) => Some(VaultAuth::AppRole {
                role_id,
                secret_id: Secret::new(secret_id),
            }),
            (Some(_), Some(_), _) | (Some(_), _, Some(_)) => {
                problems.push(format!(
                    "both a token ({ENV_TOKEN}) and AppRole ({ENV_ROLE_ID}, {ENV_SECRET_ID}) are set: choose one"
                ));
                None
            }
            (None, Some(_), None) => {
                problems.push(format!("{ENV_ROLE_ID} is set without {ENV_SECRET_ID}"));
                None
            }
            (None, None, Some(_)) => {
                problems.push(format!("{ENV_SECRET_ID} is set without {ENV_ROLE_ID}"));
                None
            }
            (None, None, None) => {
                problems.push(format!(
                    "{ENV_ADDR} is set but no credential: {ENV_TOKEN} (or {ENV_VAULT_TOKEN}), or {ENV_ROLE_ID} and {ENV_SECRET_ID}"
                ));
                None
            }
        };
        let mount = self
            .mount
            .map(|mount| mount.trim_matches('/').to_owned())
            .unwrap_or_else(|| DEFAULT_MOUNT.to_owned());
        if mount.is_empty() {
            problems.push(format!("{ENV_MOUNT} is empty"));
        }
        let cache_ttl = match self.cache_ttl_secs {
            None => DEFAULT_CACHE_TTL,
            Some(text) => text.parse().map(Duration::from_secs).unwrap_or_else(|_| {
                problems.push(format!(
                    "{ENV_CACHE_TTL_SECS} `{text}` is not a number of seconds"
                ));
                DEFAULT_CACHE_TTL
            }),
        };
        match auth {
            Some(auth) if problems.is_empty() => Ok(Some(VaultConfig {
                addr,
                auth,
                mount,
                prefix: self
                    .prefix
                    .map(|prefix| prefix.trim_matches('/').to_owned())
                    .unwrap_or_default(),
                namespace: self.namespace,
                cache_ttl,
                timeout: DEFAULT_TIMEOUT,
            })),
            _ => Err(ConfigError { problems }),
        }
    }
}

/// The Vault flags of a binary, each also read from its `NEXUS_VAULT_*` variable.
#[cfg(feature = "cli")]
#[derive(Clone, Default, clap::Args)]
pub struct VaultArgs {
    /// Vault's address (`https://vault:8200`): secrets come from its KV v2 engine when set.
    #[arg(long, env = ENV_ADDR)]
    pub vault_addr: Option<String>,
    /// A Vault token (else `VAULT_TOKEN`).
    #[arg(long, env = ENV_TOKEN, hide_env_values = true)]
    pub vault_token: Option<String>,
    // Vault's own variable, read as a fallback for `--vault-token`.
    #[arg(long, env = ENV_VAULT_TOKEN, hide = true, hide_env_values = true)]
    pub vault_token_fallback: Option<String>,
    /// An AppRole's role id (with `--vault-secret-id`), instead of a token.
    #[arg(long, env = ENV_ROLE_ID)]
    pub vault_role_id: Option<String>,
    /// The AppRole's secret id.
    #[arg(long, env = ENV_SECRET_ID, hide_env_values = true)]
    pub vault_secret_id: Option<String>,
    /// The KV v2 mount.
    #[arg(long, env = ENV_MOUNT, default_value = DEFAULT_MOUNT)]
    pub vault_mount: String,
    /// A path prefix under the mount for every secret.
    #[arg(long, env = ENV_PREFIX)]
    pub vault_prefix: Option<String>,
    /// A Vault Enterprise namespace.
    #[arg(long, env = ENV_NAMESPACE)]
    pub vault_namespace: Option<String>,
    /// Seconds a secret read is used before Vault is asked again (0: every time).
    #[arg(long, env = ENV_CACHE_TTL_SECS, default_value_t = DEFAULT_CACHE_TTL.as_secs())]
    pub vault_cache_ttl_secs: u64,
}

#[cfg(feature = "cli")]
impl fmt::Debug for VaultArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultArgs")
            .field("vault_addr", &self.vault_addr)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "cli")]
impl VaultArgs {
    /// The checked config; `None` without `--vault-addr`.
    pub fn config(&self) -> Result<Option<VaultConfig>, ConfigError> {
        let set = |value: &Option<String>| value.clone().filter(|value| !value.is_empty());
        let mount_given = self.vault_mount != DEFAULT_MOUNT;
        let ttl_given = self.vault_cache_ttl_secs != DEFAULT_CACHE_TTL.as_secs();
        VaultSettings {
            addr: set(&self.vault_addr),
            token: set(&self.vault_token).or_else(|| set(&self.vault_token_fallback)),
            role_id: set(&self.vault_role_id),
            secret_id: set(&self.vault_secret_id),
            mount: mount_given.then(|| self.vault_mount.clone()),
            prefix: set(&self.vault_prefix),
            namespace: set(&self.vault_namespace),
            cache_ttl_secs: ttl_given.then(|| self.vault_cache_ttl_secs.to_string()),
        }
        .config()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> VaultSettings {
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        VaultSettings::from_pairs(&pairs)
    }

    #[test]
    fn no_address_no_vault() {
        assert!(
            settings(&[("VAULT_TOKEN", "t")])
                .config()
                .unwrap()
                .is_none()
        );
        let stray = settings(&[(ENV_ROLE_ID, "r")]).config().unwrap_err();
        assert!(stray.to_string().contains(ENV_ADDR), "{stray}");
    }

    #[test]
    fn token_and_approle_configs() {
        let token = settings(&[(ENV_ADDR, "http://127.0.0.1:8200/"), ("VAULT_TOKEN", "t")])
            .config()
            .unwrap()
            .unwrap();
        assert_eq!(token.addr, "http://127.0.0.1:8200");
        assert!(matches!(token.auth, VaultAuth::Token(_)));
        assert_eq!(token.mount, DEFAULT_MOUNT);
        assert_eq!(token.cache_ttl, DEFAULT_CACHE_TTL);
        let approle = settings(&[
            (ENV_ADDR, "https://vault:8200"),
            (ENV_ROLE_ID, "role"),
            (ENV_SECRET_ID, "sid"),
            (ENV_MOUNT, "/kv/"),
            (ENV_PREFIX, "/nexus/prod/"),
            (ENV_CACHE_TTL_SECS, "0"),
        ])
        .config()
        .unwrap()
        .unwrap();
        assert!(
            matches!(approle.auth, VaultAuth::AppRole { ref role_id, .. } if role_id == "role")
        );
        assert_eq!(approle.mount, "kv");
        assert_eq!(approle.path_of("apps/a/b"), "nexus/prod/apps/a/b");
        assert_eq!(approle.cache_ttl, Duration::ZERO);
        assert!(!format!("{approle:?}").contains("sid"));
    }

    #[test]
    fn bad_combinations_are_all_reported() {
        let error = settings(&[
            (ENV_ADDR, "vault:8200"),
            (ENV_TOKEN, "t"),
            (ENV_ROLE_ID, "r"),
            (ENV_CACHE_TTL_SECS, "soon"),
        ])
        .config()
        .unwrap_err();
        assert_eq!(error.problems.len(), 3, "{error}");
        assert!(!error.to_string().contains("=t"), "{error}");
        let half = settings(&[(ENV_ADDR, "http://v"), (ENV_ROLE_ID, "r")])
            .config()
            .unwrap_err();
        assert!(half.to_string().contains(ENV_SECRET_ID), "{half}");
        let none = settings(&[(ENV_ADDR, "http://v")]).config().unwrap_err();
        assert!(none.to_string().contains("no credential"), "{none}");
    }
}
