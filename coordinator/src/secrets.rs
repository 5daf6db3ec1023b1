//! Secrets the coordinator needs to reach other systems (a cloud function's key), named in
//! settings and read from a secrets store when used: never stored in the database, never
//! logged, never returned by the API.
//!
//! Secret `shop-azure-key` is the environment variable `NEXUS_SECRET_SHOP_AZURE_KEY` when it is
//! set, else, when Vault is configured, the `value` of the KV v2 secret
//! `coordinator/shop-azure-key` under the configured mount and prefix (cached for its TTL by
//! [`SecretStore`]; unreadable past it, the use fails).

use std::sync::Arc;

pub use nexus_secrets::Secret;
use nexus_secrets::SecretStore;

/// The prefix of the variables that hold secrets.
pub const ENV_PREFIX: &str = "NEXUS_SECRET_";
/// Where the coordinator's secrets live in Vault, under the configured prefix.
pub const VAULT_DIRECTORY: &str = "coordinator";
/// The longest secret name.
const MAX_NAME_CHARS: usize = 64;

/// Why a secret could not be had.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SecretError {
    /// Not a name a secret can have.
    #[error("`{0}` is not a secret name: 1 to 64 lowercase letters, digits, `-` and `_`")]
    InvalidName(String),
    /// The store holds no secret of that name.
    #[error("secret `{name}` is not set (the coordinator reads it from {variable})")]
    Missing {
        /// The secret.
        name: String,
        /// Where it was looked for.
        variable: String,
    },
    /// Not in the environment, and Vault did not give it.
    #[error("secret `{name}` is not in {variable}, and {cause}")]
    Vault {
        /// The secret.
        name: String,
        /// The environment variable looked at first.
        variable: String,
        /// Vault's answer.
        cause: Box<nexus_secrets::SecretError>,
    },
}

/// Reads an environment variable.
pub type Environment = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Where the coordinator's secrets come from: the environment, then Vault if configured.
#[derive(Clone)]
pub struct Secrets {
    environment: Environment,
    vault: Option<Arc<SecretStore>>,
}

impl Default for Secrets {
    fn default() -> Self {
        Self::new(None)
    }
}

impl Secrets {
    /// The process environment, then `vault`.
    pub fn new(vault: Option<Arc<SecretStore>>) -> Self {
        Self {
            environment: Arc::new(|name| std::env::var(name).ok()),
            vault,
        }
    }

    /// Reads the environment through `environment` instead (tests).
    pub fn with_environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self
    }

    /// Secret `name`, read now (or from Vault's cache), so that a rotated value takes effect
    /// on its next use.
    pub async fn get(&self, name: &str) -> Result<Secret, SecretError> {
        check_name(name)?;
        let variable = variable(name);
        if let Some(value) = (self.environment)(&variable).filter(|value| !value.is_empty()) {
            return Ok(Secret::new(value));
        }
        let Some(vault) = &self.vault else {
            return Err(SecretError::Missing {
                name: name.to_owned(),
                variable,
            });
        };
        vault
            .read(&format!("{VAULT_DIRECTORY}/{name}"))
            .await
            .map_err(|cause| SecretError::Vault {
                name: name.to_owned(),
                variable,
                cause: Box::new(cause),
            })
    }
}

/// Checks a secret's name.
pub fn check_name(name: &str) -> Result<(), SecretError> {
    let valid = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else {
        Err(SecretError::InvalidName(name.to_owned()))
    }
}

/// The variable that holds secret `name`.
pub fn variable(name: &str) -> String {
    format!(
        "{ENV_PREFIX}{}",
        name.to_ascii_uppercase().replace('-', "_")
    )
}

#[cfg(test)]
mod tests {
    use nexus_secrets::testing::FakeVault;
    use nexus_secrets::{VaultAuth, VaultConfig};

    use super::*;

    fn environment(pairs: &'static [(&'static str, &'static str)]) -> Environment {
        Arc::new(move |wanted| {
            pairs
                .iter()
                .find(|(name, _)| *name == wanted)
                .map(|(_, value)| (*value).to_owned())
        })
    }

    #[tokio::test]
    async fn names_map_to_variables_and_values_never_show() {
        assert_eq!(variable("shop-azure_key"), "NEXUS_SECRET_SHOP_AZURE_KEY");
        for bad in ["", "Upper", "dot.ted", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        let secrets = Secrets::default().with_environment(environment(&[]));
        let missing = secrets.get("surely-not-set").await.unwrap_err();
        assert!(missing.to_string().contains("NEXUS_SECRET_SURELY_NOT_SET"));
        assert_eq!(
            format!("{:?}", Secret::new("hunter2".to_owned())),
            "Secret(…)"
        );
    }

    #[tokio::test]
    async fn environment_first_then_vault() {
        let mut vault = FakeVault::start("s.root").await.unwrap();
        vault.put("secret", "coordinator/shop-key", "from-vault");
        let config = VaultConfig::new(
            &vault.url(),
            VaultAuth::Token(Secret::new("s.root".to_owned())),
        );
        let secrets = Secrets::new(Some(Arc::new(SecretStore::new(config).unwrap())))
            .with_environment(environment(&[("NEXUS_SECRET_ENV_KEY", "from-env")]));
        assert_eq!(secrets.get("env-key").await.unwrap().expose(), "from-env");
        assert_eq!(
            secrets.get("shop-key").await.unwrap().expose(),
            "from-vault"
        );
        assert_eq!(vault.reads(), 1);
        let absent = secrets.get("other").await.unwrap_err();
        assert!(
            absent.to_string().contains("NEXUS_SECRET_OTHER"),
            "{absent}"
        );
        assert!(absent.to_string().contains("not found"), "{absent}");
        vault.stop().await;
        // Cached: the coordinator keeps working through a short Vault outage within the TTL.
        assert_eq!(
            secrets.get("shop-key").await.unwrap().expose(),
            "from-vault"
        );
    }
}
