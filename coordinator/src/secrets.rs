//! Secrets the coordinator needs to reach other systems (a cloud function's key), named in
//! settings and read from a secrets store when used: never stored in the database, never
//! logged, never returned by the API.
//!
//! The store is the coordinator's environment: secret `shop-azure-key` is the variable
//! `NEXUS_SECRET_SHOP_AZURE_KEY`.

use std::fmt;

/// The prefix of the variables that hold secrets.
pub const ENV_PREFIX: &str = "NEXUS_SECRET_";
/// The longest secret name.
const MAX_NAME_CHARS: usize = 64;

/// A secret's value; its `Debug` and `Display` show nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// A secret with `value` (one obtained with another secret, like a token).
    pub(crate) fn new(value: String) -> Self {
        Self(value)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// Why a secret could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
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

/// Secret `name`, read now, so that a rotated value takes effect on its next use.
pub fn secret(name: &str) -> Result<Secret, SecretError> {
    check_name(name)?;
    let variable = variable(name);
    match std::env::var(&variable) {
        Ok(value) if !value.is_empty() => Ok(Secret(value)),
        _ => Err(SecretError::Missing {
            name: name.to_owned(),
            variable,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_map_to_variables_and_values_never_show() {
        assert_eq!(variable("shop-azure_key"), "NEXUS_SECRET_SHOP_AZURE_KEY");
        for bad in ["", "Upper", "dot.ted", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        let missing = secret("surely-not-set-in-any-test").unwrap_err();
        assert!(
            missing
                .to_string()
                .contains("NEXUS_SECRET_SURELY_NOT_SET_IN_ANY_TEST")
        );
        assert_eq!(format!("{:?}", Secret("hunter2".to_owned())), "Secret(…)");
    }
}
