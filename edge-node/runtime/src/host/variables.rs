//! Spin variables: `fermyon:spin/variables@2.0.0` and `spin:variables/variables@3.0.0`.
//!
//! Values are resolved when an app loads from the templates in the resolved record (see
//! [`AppVariables::read`]); a guest can read only the variables its component declares.
//! Variables marked `secret = true` may come from a secrets store over the network
//! ([`VariableSource::get_secret`]): they are read at load, and again at each invocation of a
//! component that uses one ([`ComponentSecrets`]), so a rotated value takes effect without a
//! redeploy and a store that cannot answer fails the invocation (closed) rather than serving a
//! value it no longer vouches for. The source caches; this module does not.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use nexus_proto::app::{ResolvedApp, ResolvedComponent};
use wasmtime::component::{HasData, Linker};

use crate::error::{InvokeError, LoadError};
use crate::state::HostState;

/// What [`VariableSource::get_secret`] answers: the value, `None` when the source has none
/// (the default then applies), or why the source could not answer.
pub type SecretFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<String>, SecretUnavailable>> + Send + 'a>>;

/// A secrets store could not answer for a secret variable. Never carries a value.
#[derive(Debug, Clone, thiserror::Error)]
#[error("secret variable `{name}` could not be read: {reason}")]
pub struct SecretUnavailable {
    /// The application variable.
    pub name: String,
    /// Why, for the node's log.
    pub reason: String,
}

/// Where application variables get their values (for example `SPIN_VARIABLE_*`).
pub trait VariableSource: Send + Sync {
    /// The value of the application variable `name` (lowercase), if this source has one.
    fn get(&self, name: &str) -> Option<String>;

    /// The value of `name`, a variable of app `app` declared `secret = true`; may ask a
    /// secrets store. By default, what [`VariableSource::get`] has.
    fn get_secret<'a>(&'a self, app: &'a str, name: &'a str) -> SecretFuture<'a> {
        let _ = app;
        Box::pin(std::future::ready(Ok(self.get(name))))
    }
}

/// Variables from `SPIN_VARIABLE_<NAME>` entries of an environment, the way Spin's default
/// provider reads them.
#[derive(Debug, Clone, Default)]
pub struct EnvVariables {
    values: BTreeMap<String, String>,
}

/// The prefix Spin's environment provider reads.
pub const SPIN_VARIABLE_PREFIX: &str = "SPIN_VARIABLE_";

impl EnvVariables {
    /// Picks the `SPIN_VARIABLE_*` entries out of `environment`.
    pub fn from_env(environment: impl IntoIterator<Item = (String, String)>) -> Self {
        let values = environment
            .into_iter()
            .filter_map(|(name, value)| {
                let variable = name.strip_prefix(SPIN_VARIABLE_PREFIX)?;
                Some((variable.to_lowercase(), value))
            })
            .collect();
        Self { values }
    }
}

impl VariableSource for EnvVariables {
    fn get(&self, name: &str) -> Option<String> {
        self.values.get(name).cloned()
    }
}

/// An app's variables as read at load, and the source to read its secret ones again.
pub struct AppVariables {
    app: String,
    values: BTreeMap<String, String>,
    /// Secret variables with their defaults.
    secrets: BTreeMap<String, Option<String>>,
    source: Arc<dyn VariableSource>,
}

impl AppVariables {
    /// Resolves every application variable of `app`: source first, then the default; a
    /// required variable with no value is an error, and so is a secret the source cannot
    /// answer for.
    pub async fn read(
        app: &ResolvedApp,
        source: Arc<dyn VariableSource>,
    ) -> Result<Self, LoadError> {
        let mut values = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        for (name, definition) in &app.variables {
            let found = if definition.secret {
                secrets.insert(name.clone(), definition.default.clone());
                source
                    .get_secret(&app.name, name)
                    .await
                    .map_err(LoadError::SecretUnavailable)?
            } else {
                source.get(name)
            };
            let value = found
                .or_else(|| definition.default.clone())
                .ok_or_else(|| LoadError::MissingVariable { name: name.clone() })?;
            values.insert(name.clone(), value);
        }
        Ok(Self {
            app: app.name.clone(),
            values,
            secrets,
            source,
        })
    }

    /// The values read at load.
    pub fn values(&self) -> &BTreeMap<String, String> {
        &self.values
    }

    /// What `component` needs to read its secrets again at each invocation; `None` when its
    /// variables use no secret.
    pub(crate) fn component_secrets(
        &self,
        component: &ResolvedComponent,
    ) -> Option<ComponentSecrets> {
        let used: BTreeMap<String, Option<String>> = component
            .variables
            .values()
            .flat_map(|template| template.references())
            .filter_map(|reference| {
                self.secrets
                    .get_key_value(reference)
                    .map(|(name, default)| (name.clone(), default.clone()))
            })
            .collect();
        if used.is_empty() {
            return None;
        }
        Some(ComponentSecrets {
            app: self.app.clone(),
            values: self.values.clone(),
            secrets: used,
            component: component.clone(),
            source: Arc::clone(&self.source),
        })
    }
}

/// A component's variables, rendered again with fresh secret values for each invocation.
pub struct ComponentSecrets {
    app: String,
    values: BTreeMap<String, String>,
    secrets: BTreeMap<String, Option<String>>,
    component: ResolvedComponent,
    source: Arc<dyn VariableSource>,
}

impl ComponentSecrets {
    /// The component's variables with the secrets as the source has them now.
    pub(crate) async fn render(&self) -> Result<BTreeMap<String, String>, InvokeError> {
        let mut values = self.values.clone();
        for (name, default) in &self.secrets {
            let value = self
                .source
                .get_secret(&self.app, name)
                .await
                .map_err(InvokeError::SecretUnavailable)?
                .or_else(|| default.clone())
                .ok_or_else(|| {
                    InvokeError::SecretUnavailable(SecretUnavailable {
                        name: name.clone(),
                        reason: "no value and no default".to_owned(),
                    })
                })?;
            values.insert(name.clone(), value);
        }
        resolve_component_variables(&self.component, &values)
            .map_err(|error| InvokeError::Internal(error.to_string()))
    }
}

/// Expands a component's variable templates with the resolved application variables.
pub fn resolve_component_variables(
    component: &ResolvedComponent,
    app_values: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, LoadError> {
    component
        .variables
        .iter()
        .map(|(name, template)| {
            let value = template
                .render(|reference| app_values.get(reference).map(String::as_str))
                .map_err(|reference| LoadError::UndefinedVariable {
                    component: component.id.clone(),
                    variable: name.clone(),
                    reference,
                })?;
            Ok((name.clone(), value))
        })
        .collect()
}

/// Spin's rule for variable names: a lowercase ASCII letter, then lowercase letters, digits
/// and single underscores, not ending in an underscore.
pub fn is_valid_name(name: &str) -> bool {
    name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !name.contains("__")
        && !name.ends_with('_')
}

/// Why `get` failed, before it is mapped to either version's error variant.
enum Failure {
    InvalidName(String),
    Undefined(String),
}

/// What the host functions see: the component's resolved variables.
pub struct VariablesView<'a> {
    values: &'a BTreeMap<String, String>,
}

impl VariablesView<'_> {
    fn get(&self, name: &str) -> Result<String, Failure> {
        if !is_valid_name(name) {
            return Err(Failure::InvalidName(format!(
                "invalid variable name `{name}`"
            )));
        }
        self.values
            .get(name)
            .cloned()
            .ok_or_else(|| Failure::Undefined(format!("no variable for \"{name}\"")))
    }
}

/// [`HasData`] marker for this capability.
pub struct Variables;

impl HasData for Variables {
    type Data<'a> = VariablesView<'a>;
}

impl HostState {
    fn variables(&mut self) -> VariablesView<'_> {
        VariablesView {
            values: self.variable_values(),
        }
    }
}

/// Adds both versions of the interface to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v2::fermyon::spin::variables::add_to_linker::<HostState, Variables>(
        linker,
        HostState::variables,
    )?;
    v3::spin::variables::variables::add_to_linker::<HostState, Variables>(
        linker,
        HostState::variables,
    )?;
    Ok(())
}

mod v2 {
    use super::{Failure, VariablesView};

    wasmtime::component::bindgen!({
        path: "wit",
        world: "nexus:host/variables-v2",
    });

    use fermyon::spin::variables::{Error, Host};

    impl From<Failure> for Error {
        fn from(failure: Failure) -> Self {
            match failure {
                Failure::InvalidName(message) => Self::InvalidName(message),
                Failure::Undefined(message) => Self::Undefined(message),
            }
        }
    }

    impl Host for VariablesView<'_> {
        fn get(&mut self, name: String) -> Result<String, Error> {
            VariablesView::get(self, &name).map_err(Error::from)
        }
    }
}

mod v3 {
    use wasmtime::component::Accessor;

    use super::{Failure, Variables};

    wasmtime::component::bindgen!({
        path: "wit",
        world: "nexus:host/variables-v3",
    });

    use spin::variables::variables::{Error, Host, HostWithStore};

    impl From<Failure> for Error {
        fn from(failure: Failure) -> Self {
            match failure {
                Failure::InvalidName(message) => Self::InvalidName(message),
                Failure::Undefined(message) => Self::Undefined(message),
            }
        }
    }

    impl Host for super::VariablesView<'_> {}

    impl<T> HostWithStore<T> for Variables {
        async fn get(accessor: &Accessor<T, Self>, name: String) -> Result<String, Error> {
            accessor.with(|mut access| access.get().get(&name).map_err(Error::from))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_spin_rules() {
        for good in ["a", "greeting", "api_key", "v2", "a_b_c"] {
            assert!(is_valid_name(good), "{good}");
        }
        for bad in ["", "Greeting", "_a", "a_", "a__b", "1a", "a-b", "a.b"] {
            assert!(!is_valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn env_source_reads_spin_variable_prefix_case_insensitively() {
        let source = EnvVariables::from_env([
            ("SPIN_VARIABLE_API_KEY".to_owned(), "k".to_owned()),
            ("HOME".to_owned(), "/root".to_owned()),
        ]);
        assert_eq!(source.get("api_key").as_deref(), Some("k"));
        assert_eq!(source.get("home"), None);
    }
}
