//! The Vault client: KV v2 reads (`GET /v1/<mount>/data/<path>`) and AppRole logins
//! (`POST /v1/auth/approle/login`) over hyper, each under a time limit and a size limit.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::Secret;
use crate::cache::Clock;
use crate::config::{VaultAuth, VaultConfig};

/// The largest answer read from Vault.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The longest error text kept from Vault's `errors`.
const MAX_ERROR_CHARS: usize = 200;
/// A token is renewed (by logging in again) when this share of its lease has passed.
const RENEW_AT_LEASE_FRACTION: f64 = 0.75;

const VAULT_TOKEN: HeaderName = HeaderName::from_static("x-vault-token");
const VAULT_NAMESPACE: HeaderName = HeaderName::from_static("x-vault-namespace");

/// Why Vault did not give an answer. Never carries a secret value.
#[derive(Debug, Clone, thiserror::Error)]
pub enum VaultError {
    /// No connection could be made, or it broke.
    #[error("cannot reach Vault at {addr}: {reason}")]
    Unreachable {
        /// Vault's address.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// Vault did not answer within the time limit.
    #[error("Vault did not answer within {0:?}")]
    Timeout(Duration),
    /// Vault refused the token (403), also after logging in again.
    #[error("Vault denied access (403): {0}")]
    Denied(String),
    /// Vault answered with another error status.
    #[error("Vault answered {status}: {errors}")]
    Status {
        /// The HTTP status.
        status: u16,
        /// Vault's `errors`, shortened.
        errors: String,
    },
    /// The answer was larger than [`MAX_RESPONSE_BYTES`].
    #[error("Vault's answer exceeds {MAX_RESPONSE_BYTES} bytes")]
    TooLarge,
    /// The answer was not what the API documents.
    #[error("Vault's answer is malformed: {0}")]
    Malformed(&'static str),
    /// AppRole login failed.
    #[error("AppRole login failed: {0}")]
    Login(Box<VaultError>),
    /// The HTTPS client could not be set up.
    #[error("TLS setup failed: {0}")]
    Tls(String),
}

/// A token and when to log in again (`None`: never, as for a token given in the config).
#[derive(Clone)]
struct HeldToken {
    token: Secret,
    renew_at: Option<Instant>,
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// An HTTP client for `http://` and `https://` URLs, TLS by rustls on ring with the system's
/// roots: the one stack of the workspace.
pub fn https_client() -> Result<HttpsClient, VaultError> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
        .map_err(|error| VaultError::Tls(format!("no TLS roots: {error}")))?
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

pub(crate) struct VaultClient {
    config: VaultConfig,
    http: HttpsClient,
    clock: Arc<dyn Clock>,
    // Held across a login, so concurrent callers wait for one login.
    token: tokio::sync::Mutex<Option<HeldToken>>,
    requests: AtomicU64,
}

impl VaultClient {
    pub(crate) fn new(config: VaultConfig, clock: Arc<dyn Clock>) -> Result<Self, VaultError> {
        let token = match &config.auth {
            VaultAuth::Token(token) => Some(HeldToken {
                token: token.clone(),
                renew_at: None,
            }),
            VaultAuth::AppRole { .. } => None,
        };
        Ok(Self {
            http: https_client()?,
            config,
            clock,
            token: tokio::sync::Mutex::new(token),
            requests: AtomicU64::new(0),
        })
    }

    pub(crate) fn config(&self) -> &VaultConfig {
        &self.config
    }

    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// The `value` of the secret `name`; `None` when Vault has no such secret.
    pub(crate) async fn read(&self, name: &str) -> Result<Option<Secret>, VaultError> {
        let token = self.token(None).await?;
        match self.get(name, &token).await {
            // An AppRole token may have been revoked or outlived its lease early: log in again
            // once and retry with the new token.
            Err(VaultError::Denied(_)) if matches!(self.config.auth, VaultAuth::AppRole { .. }) => {
                let token = self.token(Some(&token)).await?;
                self.get(name, &token).await
            }
            answer => answer,
        }
    }

    /// The token to use: the one held unless its lease is ending or it is `refused`.
    async fn token(&self, refused: Option<&Secret>) -> Result<Secret, VaultError> {
        let mut held = self.token.lock().await;
        if let Some(current) = held.as_ref() {
            let expired = current
                .renew_at
                .is_some_and(|renew_at| self.clock.now() >= renew_at);
            let was_refused = refused.is_some_and(|refused| *refused == current.token);
            let can_login = matches!(self.config.auth, VaultAuth::AppRole { .. });
            if !(can_login && (expired || was_refused)) {
                return Ok(current.token.clone());
            }
        }
        let fresh = self
            .login()
            .await
            .map_err(|error| VaultError::Login(Box::new(error)))?;
        let token = fresh.token.clone();
        *held = Some(fresh);
        Ok(token)
    }

    async fn login(&self) -> Result<HeldToken, VaultError> {
        let VaultAuth::AppRole { role_id, secret_id } = &self.config.auth else {
            return Err(VaultError::Malformed("no AppRole configured"));
        };
        let body = serde_json::json!({ "role_id": role_id, "secret_id": secret_id.expose() });
        let mut request = self.request(Method::POST, "/v1/auth/approle/login")?;
        *request.body_mut() = Full::new(Bytes::from(body.to_string()));
        request.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let (status, body) = self.send(request).await?;
        if !status.is_success() {
            return Err(status_error(status, &body));
        }
        let answer: serde_json::Value = serde_json::from_slice(&body)
            .map_err(|_| VaultError::Malformed("login answer is not JSON"))?;
        let token = answer["auth"]["client_token"]
            .as_str()
            .filter(|token| !token.is_empty())
            .ok_or(VaultError::Malformed(
                "login answer has no auth.client_token",
            ))?;
        let lease = answer["auth"]["lease_duration"].as_u64().unwrap_or(0);
        tracing::debug!(lease_secs = lease, "logged in to Vault with AppRole");
        Ok(HeldToken {
            token: Secret::new(token.to_owned()),
            renew_at: (lease > 0).then(|| {
                self.clock.now() + Duration::from_secs(lease).mul_f64(RENEW_AT_LEASE_FRACTION)
            }),
        })
    }

    async fn get(&self, name: &str, token: &Secret) -> Result<Option<Secret>, VaultError> {
        let path = format!(
            "/v1/{}/data/{}",
            self.config.mount,
            self.config.path_of(name)
        );
        let mut request = self.request(Method::GET, &path)?;
        let mut token = HeaderValue::from_str(token.expose())
            .map_err(|_| VaultError::Malformed("the token cannot be a header"))?;
        token.set_sensitive(true);
        request.headers_mut().insert(VAULT_TOKEN, token);
        let (status, body) = self.send(request).await?;
        match status {
            StatusCode::OK => {
                let answer: serde_json::Value = serde_json::from_slice(&body)
                    .map_err(|_| VaultError::Malformed("KV answer is not JSON"))?;
                Ok(answer["data"]["data"]["value"]
                    .as_str()
                    .map(|value| Secret::new(value.to_owned())))
            }
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::FORBIDDEN => Err(VaultError::Denied(vault_errors(&body))),
            status => Err(status_error(status, &body)),
        }
    }

    fn request(&self, method: Method, path: &str) -> Result<Request<Full<Bytes>>, VaultError> {
        let mut request = Request::new(Full::new(Bytes::new()));
        *request.method_mut() = method;
        *request.uri_mut() = format!("{}{path}", self.config.addr)
            .parse()
            .map_err(|_| VaultError::Malformed("the secret's path is not part of a URL"))?;
        if let Some(namespace) = &self.config.namespace {
            let namespace = HeaderValue::from_str(namespace)
                .map_err(|_| VaultError::Malformed("the namespace cannot be a header"))?;
            request.headers_mut().insert(VAULT_NAMESPACE, namespace);
        }
        Ok(request)
    }

    /// Sends `request` and reads the whole answer, within the time and size limits.
    async fn send(&self, request: Request<Full<Bytes>>) -> Result<(StatusCode, Bytes), VaultError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let timeout = self.config.timeout;
        let exchange = async {
            let response =
                self.http
                    .request(request)
                    .await
                    .map_err(|error| VaultError::Unreachable {
                        addr: self.config.addr.clone(),
                        reason: error_chain(&error),
                    })?;
            let status = response.status();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(|error| {
                    if error.is::<http_body_util::LengthLimitError>() {
                        VaultError::TooLarge
                    } else {
                        VaultError::Unreachable {
                            addr: self.config.addr.clone(),
                            reason: error.to_string(),
                        }
                    }
                })?
                .to_bytes();
            Ok((status, body))
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .map_err(|_| VaultError::Timeout(timeout))?
    }
}

fn status_error(status: StatusCode, body: &[u8]) -> VaultError {
    VaultError::Status {
        status: status.as_u16(),
        errors: vault_errors(body),
    }
}

/// Vault's `{"errors": [...]}`, joined and shortened; nothing else of the body is kept, so no
/// value can leak into an error.
fn vault_errors(body: &[u8]) -> String {
    let errors = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|answer| {
            answer["errors"].as_array().map(|errors| {
                errors
                    .iter()
                    .filter_map(serde_json::Value::as_str)
                    .collect::<Vec<_>>()
                    .join("; ")
            })
        })
        .unwrap_or_default();
    if errors.is_empty() {
        return "no details".to_owned();
    }
    errors.chars().take(MAX_ERROR_CHARS).collect()
}

/// An error and its causes, `a: b: c`, as hyper's own text says only "client error".
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
