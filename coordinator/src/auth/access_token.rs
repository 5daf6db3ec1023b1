//! Short-lived access tokens: JWTs signed with HS256 under a key id (`kid`), so keys can be
//! rotated while tokens signed with the previous key still verify until they expire.
//!
//! The server chooses the algorithm: only HS256 verifies, whatever a token's header says.
//! `exp`, `iat`, `aud` and `iss` are required and checked, with an explicit leeway for clock
//! skew between coordinator replicas.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How long an access token is valid.
pub const LIFETIME: Duration = Duration::from_secs(15 * 60);

/// Clock skew tolerated between the issuer and a verifier.
pub const LEEWAY: Duration = Duration::from_secs(5);

/// The audience and issuer every token names.
pub const AUDIENCE: &str = "sirsinexus-api";
const ISSUER: &str = "sirsinexus-coordinator";

const ALGORITHM: Algorithm = Algorithm::HS256;

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user.
    pub sub: Uuid,
    /// The session (refresh-token family) it was issued under; revoking the session makes the
    /// token useless at the next request.
    pub sid: Uuid,
    /// Issued at, seconds since the epoch.
    pub iat: u64,
    /// Expires at, seconds since the epoch.
    pub exp: u64,
    /// Audience.
    pub aud: String,
    /// Issuer.
    pub iss: String,
}

/// Why a token was refused or could not be made.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    /// Malformed, wrongly signed, expired, for another audience, or otherwise not ours.
    #[error("the access token is not valid: {0}")]
    Invalid(String),
    /// Signed under a key id this coordinator does not have (retired or never issued).
    #[error("the access token's key is unknown")]
    UnknownKey,
    /// Signing failed (never expected with HMAC keys).
    #[error("signing failed: {0}")]
    Signing(String),
}

/// One signing secret under its key id.
#[derive(Clone)]
struct SigningKey {
    encoding: EncodingKey,
    decoding: DecodingKey,
}

/// The keys of a coordinator: one active key signs, every key still held verifies.
#[derive(Clone)]
pub struct AccessTokenKeys {
    active: String,
    keys: HashMap<String, SigningKey>,
}

impl AccessTokenKeys {
    /// Keys with one active secret under `kid`.
    pub fn new(kid: &str, secret: &[u8]) -> Self {
        let mut keys = Self {
            active: kid.to_owned(),
            keys: HashMap::new(),
        };
        keys.insert(kid, secret);
        keys
    }

    /// Makes `kid` the signing key; keys added before keep verifying until removed.
    pub fn rotate(&mut self, kid: &str, secret: &[u8]) {
        self.insert(kid, secret);
        self.active = kid.to_owned();
    }

    /// Stops accepting tokens signed under `kid`. The active key cannot be retired.
    pub fn retire(&mut self, kid: &str) {
        if kid != self.active {
            self.keys.remove(kid);
        }
    }

    fn insert(&mut self, kid: &str, secret: &[u8]) {
        self.keys.insert(
            kid.to_owned(),
            SigningKey {
                encoding: EncodingKey::from_secret(secret),
                decoding: DecodingKey::from_secret(secret),
            },
        );
    }

    /// A token for `user` in `session`, valid for [`LIFETIME`] from `now`.
    pub fn issue(&self, user: Uuid, session: Uuid, now: SystemTime) -> Result<String, TokenError> {
        let iat = seconds(now);
        let claims = Claims {
            sub: user,
            sid: session,
            iat,
            exp: iat + LIFETIME.as_secs(),
            aud: AUDIENCE.to_owned(),
            iss: ISSUER.to_owned(),
        };
        let key = self.keys.get(&self.active).ok_or(TokenError::UnknownKey)?;
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(self.active.clone());
        jsonwebtoken::encode(&header, &claims, &key.encoding)
            .map_err(|error| TokenError::Signing(error.to_string()))
    }

    /// The claims of `token` if it is ours and valid at `now`.
    pub fn verify(&self, token: &str, now: SystemTime) -> Result<Claims, TokenError> {
        let invalid = |error: jsonwebtoken::errors::Error| TokenError::Invalid(error.to_string());
        let header = jsonwebtoken::decode_header(token).map_err(invalid)?;
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self.keys.get(&kid).ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(ALGORITHM);
        validation.leeway = LEEWAY.as_secs();
        validation.set_audience(&[AUDIENCE]);
        validation.set_issuer(&[ISSUER]);
        validation.set_required_spec_claims(&["exp", "iat", "aud", "iss", "sub"]);
        // Expiry is checked below against `now`, so tests and replicas agree on the clock.
        validation.validate_exp = false;
        let claims = jsonwebtoken::decode::<Claims>(token, &key.decoding, &validation)
            .map_err(invalid)?
            .claims;
        let now = seconds(now);
        if claims.exp.saturating_add(LEEWAY.as_secs()) <= now {
            return Err(TokenError::Invalid("the token has expired".to_owned()));
        }
        if claims.iat > now.saturating_add(LEEWAY.as_secs()) {
            return Err(TokenError::Invalid(
                "the token was issued in the future".to_owned(),
            ));
        }
        Ok(claims)
    }
}

fn seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

#[cfg(test)]
mod tests;
