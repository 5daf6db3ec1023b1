//! Spin variables: `fermyon:spin/variables@2.0.0` and `spin:variables/variables@3.0.0`.
//!
//! Values are resolved once per app load from the templates in the resolved record (see
//! [`resolve_component_variables`]); a guest can read only the variables its component
//! declares.

use std::collections::BTreeMap;

use nexus_proto::app::{ResolvedApp, ResolvedComponent};
use wasmtime::component::{HasData, Linker};

use crate::error::LoadError;
use crate::state::HostState;

/// Where application variables get their values (for example `SPIN_VARIABLE_*`).
pub trait VariableSource: Send + Sync {
    /// The value of the application variable `name` (lowercase), if this source has one.
    fn get(&self, name: &str) -> Option<String>;
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

/// Resolves every application variable: source first, then the default; a required variable
/// with no value is an error.
pub fn resolve_app_variables(
    app: &ResolvedApp,
    source: &dyn VariableSource,
) -> Result<BTreeMap<String, String>, LoadError> {
    app.variables
        .iter()
        .map(|(name, definition)| {
            let value = source
                .get(name)
                .or_else(|| definition.default.clone())
                .ok_or_else(|| LoadError::MissingVariable { name: name.clone() })?;
            Ok((name.clone(), value))
        })
        .collect()
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
            values: &self.env.variables,
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
