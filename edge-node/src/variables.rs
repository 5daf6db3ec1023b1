//! The application variables a host's apps see: `SPIN_VARIABLE_*` from the process
//! environment and, for variables marked `secret = true`, Vault when it is configured.
//!
//! A secret variable is read from the environment first (as before), else from Vault: the
//! `value` of the KV v2 secret `apps/<app>/<variable>` under the configured mount and prefix,
//! where `<app>` is the tenant the app runs as (its project id on a node or in the embedded
//! platform, the app's own name under `nexus serve`), so one project cannot read another's
//! secrets by declaring a variable of the same name. A secret Vault does not have takes the
//! variable's default; one Vault cannot answer for fails closed.

use std::sync::Arc;

use nexus_runtime::{EnvVariables, SecretFuture, SecretUnavailable, VariableSource};
use nexus_secrets::{SecretError, SecretStore};

/// The environment, then Vault for secrets.
pub struct HostVariables {
    environment: EnvVariables,
    vault: Option<Arc<SecretStore>>,
}

/// The variable source of a host with `environment` and, when configured, `vault`.
pub fn source(
    environment: impl IntoIterator<Item = (String, String)>,
    vault: Option<Arc<SecretStore>>,
) -> Arc<dyn VariableSource> {
    Arc::new(HostVariables {
        environment: EnvVariables::from_env(environment),
        vault,
    })
}

/// Where app `app`'s secret variable `name` lives in Vault, under the configured prefix.
pub fn vault_name(app: &str, name: &str) -> String {
    format!("apps/{app}/{name}")
}

impl VariableSource for HostVariables {
    fn get(&self, name: &str) -> Option<String> {
        self.environment.get(name)
    }

    fn get_secret<'a>(&'a self, app: &'a str, name: &'a str) -> SecretFuture<'a> {
        Box::pin(async move {
            if let Some(value) = self.environment.get(name) {
                return Ok(Some(value));
            }
            let Some(vault) = &self.vault else {
                return Ok(None);
            };
            match vault.read(&vault_name(app, name)).await {
                Ok(secret) => Ok(Some(secret.expose().to_owned())),
                Err(SecretError::NotFound { .. }) => Ok(None),
                Err(error) => Err(SecretUnavailable {
                    name: name.to_owned(),
                    reason: error.to_string(),
                }),
            }
        })
    }
}
