//! Accounts and sessions: register, log in, exchange a refresh token, log out, and turn a
//! bearer token into the caller it names. A session is a refresh-token family; revoking it
//! makes its access tokens useless at the next request, because every request checks it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use nexus_store::{NewSession, NewUser, Rotation, Session, SessionId, Store, TokenHash, UserId};

use super::access_token::{AccessTokenKeys, LIFETIME};
use super::password;
use super::secret::{self, SecretKind};
use crate::error::ApiError;

/// What a client gets when it logs in or refreshes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Tokens {
    /// The bearer token for API calls.
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Exchanged at `/v1/auth/refresh` for new tokens; valid once.
    pub refresh_token: String,
    /// The session the tokens belong to.
    pub session_id: String,
}

/// The authenticated caller of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    /// The user.
    pub user: UserId,
    /// The session the access token was issued under.
    pub session: SessionId,
}

/// Where a login comes from, kept with the session.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// The `User-Agent` header.
    pub user_agent: Option<String>,
    /// The peer address.
    pub ip: Option<String>,
}

/// How long a session found live is trusted without reading it again. A revocation takes
/// effect at once on the coordinator that made it, and within this on every other one.
pub const LIVE_SESSION_TTL: Duration = Duration::from_secs(1);
/// Sessions remembered as live at most; beyond, the oldest are forgotten.
const MAX_LIVE_SESSIONS: usize = 64 * 1024;

/// The accounts and sessions service.
#[derive(Clone)]
pub struct AuthService {
    store: Arc<Store>,
    keys: Arc<AccessTokenKeys>,
    /// Sessions read live lately, with their user and when they were read.
    live: Arc<Mutex<HashMap<SessionId, (UserId, Instant)>>>,
}

impl AuthService {
    /// A service over `store`, signing with `keys`.
    pub fn new(store: Arc<Store>, keys: AccessTokenKeys) -> Self {
        Self {
            store,
            keys: Arc::new(keys),
            live: Arc::default(),
        }
    }

    fn live_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, (UserId, Instant)>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `caller`'s session was read live within [`LIVE_SESSION_TTL`].
    fn seen_live(&self, caller: Caller) -> bool {
        self.live_sessions()
            .get(&caller.session)
            .is_some_and(|&(user, read)| user == caller.user && read.elapsed() < LIVE_SESSION_TTL)
    }

    fn remember_live(&self, caller: Caller) {
        let mut live = self.live_sessions();
        if live.len() >= MAX_LIVE_SESSIONS {
            live.retain(|_, (_, read)| read.elapsed() < LIVE_SESSION_TTL);
            if live.len() >= MAX_LIVE_SESSIONS {
                live.clear();
            }
        }
        live.insert(caller.session, (caller.user, Instant::now()));
    }

    fn forget_live(&self, session: SessionId) {
        self.live_sessions().remove(&session);
    }

    /// Forgets every session of `user` trusted live here, so that their revocation (an erased
    /// account's) takes effect at once in this process.
    pub fn forget_sessions_of(&self, user: UserId) {
        self.live_sessions().retain(|_, (owner, _)| *owner != user);
    }

    /// Creates an account.
    pub async fn register(
        &self,
        email: &str,
        display_name: &str,
        password: &str,
    ) -> Result<UserId, ApiError> {
        let password_hash =
            password::hash(password).map_err(|error| ApiError::bad_request(error.to_string()))?;
        let new_user = NewUser {
            email: email.to_owned(),
            display_name: display_name.to_owned(),
            password_hash,
        };
        let user = self
            .store
            .with_retry(|tx| {
                let new_user = new_user.clone();
                Box::pin(async move { tx.create_user(&new_user).await })
            })
            .await
            .map_err(|error| match error {
                nexus_store::Error::Conflict { .. } => {
                    ApiError::conflict("an account with this email exists")
                }
                other => ApiError::from(other),
            })?;
        Ok(user.id)
    }

    /// Checks `email` and `password` and starts a session. A wrong email and a wrong password
    /// get the same answer, so accounts cannot be discovered.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        client: ClientInfo,
    ) -> Result<Tokens, ApiError> {
        let refused = || ApiError::unauthenticated("wrong email or password");
        let email = email.to_owned();
        let user = self
            .store
            .with_retry(|tx| {
                let email = email.clone();
                Box::pin(async move { tx.find_user_by_email(&email).await })
            })
            .await?;
        let Some(user) = user else {
            // Hash anyway, so a missing account takes as long as a wrong password.
            let _ = password::verify(password, dummy_hash());
            return Err(refused());
        };
        if !password::verify(password, &user.password_hash) {
            return Err(refused());
        }
        let (refresh_token, token_hash) = new_refresh_token()?;
        let new_session = NewSession {
            user_id: user.id,
            token_hash,
            user_agent: client.user_agent,
            ip: client.ip,
        };
        let session = self
            .store
            .with_retry(|tx| {
                let new_session = new_session.clone();
                Box::pin(async move { tx.create_session(&new_session).await })
            })
            .await?;
        self.tokens(user.id, session.id, refresh_token)
    }

    /// Exchanges a refresh token for new tokens. A token used before revokes its whole
    /// family: whoever holds the newer token loses it too.
    pub async fn refresh(&self, presented: &str) -> Result<Tokens, ApiError> {
        let refused = || ApiError::unauthenticated("the refresh token is not valid");
        if !secret::is_well_formed(SecretKind::RefreshToken, presented) {
            return Err(refused());
        }
        let presented = TokenHash::of(presented);
        let (refresh_token, next) = new_refresh_token()?;
        let rotation = self
            .store
            .with_retry(|tx| {
                Box::pin(async move { tx.rotate_refresh_token(&presented, &next).await })
            })
            .await?;
        match rotation {
            Rotation::Rotated(session) => self.tokens(session.user_id, session.id, refresh_token),
            Rotation::Reused { session_id, .. } => {
                self.forget_live(session_id);
                tracing::warn!(session = %session_id, "refresh token reused; session revoked");
                Err(refused())
            }
            Rotation::Revoked { .. } | Rotation::Unknown => Err(refused()),
        }
    }

    /// Ends the caller's session.
    pub async fn logout(&self, caller: Caller) -> Result<(), ApiError> {
        self.revoke_session(caller, caller.session).await
    }

    /// The caller's sessions.
    pub async fn sessions(&self, caller: Caller) -> Result<Vec<Session>, ApiError> {
        Ok(self
            .store
            .with_retry(|tx| Box::pin(async move { tx.list_sessions(caller.user).await }))
            .await?)
    }

    /// Revokes one of the caller's sessions; another user's session is "not found".
    pub async fn revoke_session(&self, caller: Caller, session: SessionId) -> Result<(), ApiError> {
        self.forget_live(session);
        self.store
            .with_retry(|tx| {
                Box::pin(async move { tx.revoke_session(caller.user, session, "logout").await })
            })
            .await?;
        Ok(())
    }

    /// The caller a bearer token names, if the token is valid now and its session is live.
    pub async fn authenticate(&self, bearer: &str) -> Result<Caller, ApiError> {
        let claims = self
            .keys
            .verify(bearer, SystemTime::now())
            .map_err(|error| ApiError::unauthenticated(error.to_string()))?;
        let caller = Caller {
            user: UserId(claims.sub),
            session: SessionId(claims.sid),
        };
        if self.seen_live(caller) {
            return Ok(caller);
        }
        let session = self
            .store
            .with_retry(|tx| Box::pin(async move { tx.get_session(caller.session).await }))
            .await
            .map_err(|error| match error {
                nexus_store::Error::NotFound { .. } => {
                    ApiError::unauthenticated("the session has ended")
                }
                other => ApiError::from(other),
            })?;
        if session.revoked_at.is_some() || session.user_id != caller.user {
            return Err(ApiError::unauthenticated("the session has ended"));
        }
        self.remember_live(caller);
        Ok(caller)
    }

    fn tokens(
        &self,
        user: UserId,
        session: SessionId,
        refresh_token: String,
    ) -> Result<Tokens, ApiError> {
        let access_token = self
            .keys
            .issue(user.0, session.0, SystemTime::now())
            .map_err(|error| ApiError::internal(&error))?;
        Ok(Tokens {
            access_token,
            token_type: "Bearer".to_owned(),
            expires_in: LIFETIME.as_secs(),
            refresh_token,
            session_id: session.to_string(),
        })
    }
}

/// A hash at the cost of real ones, verified against when an email is unknown.
fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| password::hash("not anyone's password").unwrap_or_default())
}

fn new_refresh_token() -> Result<(String, TokenHash), ApiError> {
    let text =
        secret::generate(SecretKind::RefreshToken).map_err(|error| ApiError::internal(&error))?;
    let hash = TokenHash::of(&text);
    Ok((text, hash))
}
