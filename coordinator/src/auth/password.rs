//! Passwords, hashed with argon2id at OWASP's recommended cost (19 MiB, 2 passes, 1 lane) in
//! the PHC string format, so the parameters travel with each hash and can be raised later.

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// The shortest password accepted, in characters.
pub const MIN_CHARS: usize = 8;

/// The longest password accepted, in bytes: hashing cost must not be the caller's to choose.
pub const MAX_BYTES: usize = 1024;

/// Why a password was not accepted or could not be hashed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    /// Fewer than [`MIN_CHARS`] characters.
    #[error("password must have at least {MIN_CHARS} characters")]
    TooShort,
    /// More than [`MAX_BYTES`] bytes.
    #[error("password must be at most {MAX_BYTES} bytes")]
    TooLong,
    /// The hasher failed (never expected with fixed parameters).
    #[error("password hashing failed: {0}")]
    Hashing(String),
}

fn hasher() -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(19 * 1024, 2, 1, None)
        .map_err(|error| PasswordError::Hashing(error.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Checks `password` against the length rules.
pub fn validate(password: &str) -> Result<(), PasswordError> {
    if password.len() > MAX_BYTES {
        return Err(PasswordError::TooLong);
    }
    if password.chars().count() < MIN_CHARS {
        return Err(PasswordError::TooShort);
    }
    Ok(())
}

/// The PHC string of `password` with a fresh random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    validate(password)?;
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|error| PasswordError::Hashing(error.to_string()))?;
    let salt =
        SaltString::encode_b64(&salt).map_err(|error| PasswordError::Hashing(error.to_string()))?;
    hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| PasswordError::Hashing(error.to_string()))
}

/// Whether `password` matches `phc`. A malformed hash or an over-long password never matches.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_BYTES {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    // The parameters come from the stored hash, so older hashes keep verifying.
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_only_its_own_password() {
        let phc = hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(verify("correct horse battery", &phc));
        assert!(!verify("correct horse batterY", &phc));
        assert!(!verify("correct horse battery", "not a phc string"));
    }

    #[test]
    fn the_same_password_hashes_differently_each_time() {
        assert_ne!(
            hash("same password").unwrap(),
            hash("same password").unwrap()
        );
    }

    #[test]
    fn length_rules_are_enforced_before_hashing() {
        assert_eq!(hash("short"), Err(PasswordError::TooShort));
        // Eight characters, more than eight bytes: characters count.
        assert!(validate("ééééééé").is_err());
        assert!(validate("éééééééé").is_ok());
        let long = "x".repeat(MAX_BYTES + 1);
        assert_eq!(hash(&long), Err(PasswordError::TooLong));
        assert!(!verify(
            &long,
            &hash("x".repeat(MAX_BYTES).as_str()).unwrap()
        ));
    }
}
