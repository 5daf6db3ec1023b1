//! Google ID tokens for Cloud Run: a service account's key (a secret holding the JSON key file
//! Google issues) signs a JWT asking for an ID token for the service's URL, which Google's
//! token endpoint exchanges (OAuth 2.0 JWT bearer grant, RFC 7523); tokens are kept until
//! shortly before they expire.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::CloudError;
use super::http::HttpTargets;
use crate::secrets::Secret;

/// Google's token endpoint, unless the key names another.
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// How long an asked-for token lives (Google's ID tokens live an hour).
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);
/// A token is renewed this long before it expires.
const RENEW_BEFORE: Duration = Duration::from_secs(300);
/// The grant the token endpoint is asked for.
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

/// The fields of a service account's JSON key that signing needs.
#[derive(Deserialize)]
struct ServiceAccountKey {
    client_email: String,
    private_key: String,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default = "google_token_uri")]
    token_uri: String,
}

fn google_token_uri() -> String {
    GOOGLE_TOKEN_URI.to_owned()
}

#[derive(Serialize)]
struct Assertion<'a> {
    iss: &'a str,
    sub: &'a str,
    aud: &'a str,
    target_audience: &'a str,
    iat: u64,
    exp: u64,
}

/// ID tokens by service-account secret and audience.
#[derive(Default)]
pub struct IdTokens {
    held: Mutex<HashMap<(String, String), (Secret, Instant)>>,
}

impl IdTokens {
    /// An ID token for `audience`, signed for by the service account in secret `key_secret`.
    pub(crate) async fn get(
        &self,
        http: &HttpTargets,
        key_secret: &str,
        audience: &str,
    ) -> Result<Secret, CloudError> {
        let slot = (key_secret.to_owned(), audience.to_owned());
        if let Some((token, renew_at)) = self
            .held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&slot)
            && Instant::now() < *renew_at
        {
            return Ok(token.clone());
        }
        let key = http.secret(key_secret).await?;
        let key: ServiceAccountKey = serde_json::from_str(key.expose()).map_err(|error| {
            CloudError::NotReached(format!(
                "secret `{key_secret}` is not a service account's JSON key: {error}"
            ))
        })?;
        let assertion = sign_assertion(&key, audience)?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", JWT_BEARER)
            .append_pair("assertion", &assertion)
            .finish();
        let answer = http.post_form(&key.token_uri, form).await?;
        let token = answer["id_token"]
            .as_str()
            .filter(|token| !token.is_empty())
            .ok_or_else(|| CloudError::NotReached(format!("{} gave no id_token", key.token_uri)))?;
        let token = Secret::new(token.to_owned());
        let renew_at = Instant::now() + TOKEN_LIFETIME - RENEW_BEFORE;
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(slot, (token.clone(), renew_at));
        Ok(token)
    }
}

/// The signed JWT that asks the token endpoint for an ID token for `audience`.
fn sign_assertion(key: &ServiceAccountKey, audience: &str) -> Result<String, CloudError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let claims = Assertion {
        iss: &key.client_email,
        sub: &key.client_email,
        aud: &key.token_uri,
        target_audience: audience,
        iat: now,
        exp: now + TOKEN_LIFETIME.as_secs(),
    };
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    header.kid.clone_from(&key.private_key_id);
    let signing_key =
        jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key.as_bytes()).map_err(|error| {
            CloudError::NotReached(format!("the service account's private key: {error}"))
        })?;
    jsonwebtoken::encode(&header, &claims, &signing_key)
        .map_err(|error| CloudError::NotReached(format!("signing the token request: {error}")))
}
