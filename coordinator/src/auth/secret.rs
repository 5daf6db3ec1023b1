//! Opaque secrets handed to clients (refresh tokens, API keys): 256 random bits behind a
//! prefix that says what they are. Only the SHA-256 of a secret is stored (the store's
//! `TokenHash`), so a leaked database holds nothing that authenticates.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// What a secret is for, and the prefix that shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretKind {
    /// A session's refresh token, rotated on every use.
    RefreshToken,
    /// A project API key, for machines.
    ApiKey,
}

impl SecretKind {
    fn prefix(self) -> &'static str {
        match self {
            Self::RefreshToken => "nxr_",
            Self::ApiKey => "nxk_",
        }
    }
}

/// Why a secret could not be made.
#[derive(Debug, thiserror::Error)]
#[error("the operating system's random source failed: {0}")]
pub struct RandomnessError(String);

/// A new secret of `kind`, for the client.
pub fn generate(kind: SecretKind) -> Result<String, RandomnessError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|error| RandomnessError(error.to_string()))?;
    Ok(format!(
        "{}{}",
        kind.prefix(),
        URL_SAFE_NO_PAD.encode(bytes)
    ))
}

/// Whether `text` looks like a secret of `kind` (prefix and length), checked before any
/// lookup so that garbage never reaches the store.
pub fn is_well_formed(kind: SecretKind, text: &str) -> bool {
    text.strip_prefix(kind.prefix()).is_some_and(|rest| {
        rest.len() == 43
            && URL_SAFE_NO_PAD
                .decode(rest)
                .is_ok_and(|bytes| bytes.len() == 32)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_and_random() {
        let first = generate(SecretKind::RefreshToken).unwrap();
        let second = generate(SecretKind::RefreshToken).unwrap();
        assert!(first.starts_with("nxr_"));
        assert_ne!(first, second);
    }

    #[test]
    fn well_formedness_checks_prefix_and_length() {
        let key = generate(SecretKind::ApiKey).unwrap();
        assert!(is_well_formed(SecretKind::ApiKey, &key));
        assert!(!is_well_formed(SecretKind::RefreshToken, &key));
        assert!(!is_well_formed(SecretKind::ApiKey, &key[..key.len() - 1]));
        assert!(!is_well_formed(SecretKind::ApiKey, "nxk_!!!"));
    }
}
