//! Naming rules for the identifiers a Spin manifest declares.
//!
//! These mirror Spin exactly: component ids are `KebabId`s and key-value store labels are
//! `KebabId`s or `SnakeId`s (`spin-serde`, `crates/serde/src/id.rs`); variable names are
//! `LowerSnakeId`s that must also pass `spin-expressions`' `Key::validate`
//! (`crates/expressions/src/lib.rs`), which forbids the `:` that `Id` otherwise allows. The
//! newtypes deserialize through these checks so a bad name fails as a TOML error that points at
//! its line and column.

use std::fmt;

use serde::Deserialize;

/// Mirrors `spin_serde::id::Id<DELIM, LOWER>::try_from`: one or more non-empty words separated by
/// `delimiter`; a word starts with an ASCII letter (or, after the first word, a digit) and is
/// all lowercase or all uppercase; `:` may appear inside a word.
fn validate_id(id: &str, delimiter: char, lowercase_only: bool) -> Result<(), String> {
    if id.is_empty() {
        return Err("must not be empty".to_owned());
    }
    let wrong_delimiter = if delimiter == '-' { '_' } else { '-' };
    if id.contains(wrong_delimiter) {
        return Err(format!(
            "words must be separated with {delimiter:?}, not {wrong_delimiter:?}"
        ));
    }
    for (index, word) in id.split(delimiter).enumerate() {
        let mut chars = word.chars();
        let Some(first) = chars.next() else {
            return Err(format!("{delimiter:?}-separated words must not be empty"));
        };
        if !(first.is_ascii_alphabetic() || (index > 0 && first.is_ascii_digit())) {
            return Err(format!(
                "{delimiter:?}-separated words must start with an ASCII letter or digit; got {first:?}"
            ));
        }
        let word_is_uppercase = first.is_ascii_uppercase();
        for ch in chars {
            if ch.is_ascii_digit() || ch == ':' {
                continue;
            }
            if !ch.is_ascii_alphanumeric() {
                return Err(format!(
                    "{delimiter:?}-separated words may only contain alphanumeric ASCII (plus ':' inside words); got {ch:?}"
                ));
            }
            if ch.is_ascii_uppercase() != word_is_uppercase {
                return Err(format!(
                    "{delimiter:?}-separated words must be all lowercase or all UPPERCASE; got {word:?}"
                ));
            }
        }
        if lowercase_only && word_is_uppercase {
            return Err("must be all lowercase".to_owned());
        }
    }
    Ok(())
}

/// Whether `id` is a valid component id (Spin's `KebabId`).
pub(crate) fn validate_component_id(id: &str) -> Result<(), String> {
    validate_id(id, '-', false)
}

/// Whether `name` is a valid application or component variable name: lowercase words of ASCII
/// letters and digits separated by single underscores, starting with a letter
/// (`[a-z][a-z0-9]*(_[a-z0-9]+)*`).
pub(crate) fn validate_variable_name(name: &str) -> Result<(), String> {
    validate_id(name, '_', true)?;
    // `Key::validate` in spin-expressions runs on every variable name when the app starts and
    // accepts only lowercase letters, digits and underscores.
    if let Some(invalid) = name
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        return Err(format!(
            "invalid character {invalid:?}: variable names may contain only lowercase letters, digits and underscores"
        ));
    }
    Ok(())
}

/// Mirrors the `kebab_or_snake_case` check Spin applies to `key_value_stores` and
/// `sqlite_databases` labels.
fn validate_store_label(label: &str) -> Result<(), String> {
    if validate_id(label, '-', false).is_ok() || validate_id(label, '_', false).is_ok() {
        Ok(())
    } else {
        Err("expected kebab-case or snake_case".to_owned())
    }
}

macro_rules! checked_name {
    ($(#[$doc:meta])* $name:ident, $validate:path, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
        #[serde(try_from = "String")]
        pub(crate) struct $name(String);

        impl $name {
            /// Takes the validated text.
            pub(crate) fn into_string(self) -> String {
                self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = String;

            fn try_from(text: String) -> Result<Self, Self::Error> {
                match $validate(&text) {
                    Ok(()) => Ok(Self(text)),
                    Err(reason) => Err(format!(concat!("invalid ", $what, " {:?}: {}"), text, reason)),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

checked_name!(
    /// A component id (`[component.<id>]`, `component = "<id>"`).
    ComponentId,
    validate_component_id,
    "component id"
);

checked_name!(
    /// An application or component variable name.
    VariableName,
    validate_variable_name,
    "variable name"
);

checked_name!(
    /// A key-value store or SQLite database label.
    StoreLabel,
    validate_store_label,
    "store label"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn component_ids_follow_spin_kebab_rules() {
        for valid in [
            "a",
            "hello-world",
            "a1-2b",
            "UPPER-lower",
            "with:colon",
            "x-1",
        ] {
            assert!(
                validate_component_id(valid).is_ok(),
                "{valid} should be valid"
            );
        }
        for invalid in [
            "",
            "1-2-3",
            "snake_case",
            "-leading",
            "trailing-",
            "double--dash",
            "MiXed",
            "sp ace",
            "dot.ted",
            "é",
        ] {
            assert!(
                validate_component_id(invalid).is_err(),
                "{invalid} should be invalid"
            );
        }
    }

    #[test]
    fn variable_names_follow_spin_key_rules() {
        // The cases of spin-expressions' `keys_good` / `keys_bad` tests.
        for valid in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3"] {
            assert!(
                validate_variable_name(valid).is_ok(),
                "{valid} should be valid"
            );
        }
        for invalid in [
            "", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y", "a:b", "API_KEY",
        ] {
            assert!(
                validate_variable_name(invalid).is_err(),
                "{invalid} should be invalid"
            );
        }
    }

    #[test]
    fn store_labels_are_kebab_or_snake() {
        for valid in ["default", "snake_case", "kebab-case", "UPPER_CASE"] {
            assert!(
                validate_store_label(valid).is_ok(),
                "{valid} should be valid"
            );
        }
        for invalid in ["b@dlabel", "camelCase", "mixed-and_both", ""] {
            assert!(
                validate_store_label(invalid).is_err(),
                "{invalid} should be invalid"
            );
        }
    }
}
