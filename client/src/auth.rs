//! Accounts and sessions: `/v1/auth/*` and `/v1/sessions`.

use std::fmt;

use http::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Result};

/// The account [`Client::register`] created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registered {
    /// The new user's id.
    pub user_id: String,
}

/// The tokens of a session.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// The bearer token for API calls: pass it to [`Client::with_token`].
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Exchanged once, at [`Client::refresh`], for new tokens before or after the access
    /// token expires; using it twice revokes the session.
    pub refresh_token: String,
    /// The session the tokens belong to.
    pub session_id: String,
}

/// Tokens are credentials: their `Debug` shows neither, so they cannot end up in a log.
impl fmt::Debug for Tokens {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Tokens")
            .field("access_token", &"<redacted>")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("refresh_token", &"<redacted>")
            .field("session_id", &self.session_id)
            .finish()
    }
}

/// One of the caller's sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The session id.
    pub id: String,
    /// Whether it is the session of the token making the call.
    pub current: bool,
    /// When it began (RFC 3339).
    pub created_at: String,
    /// When one of its tokens was last used (RFC 3339).
    pub last_used_at: String,
    /// Whether it was revoked (logged out, or a refresh token reused).
    pub revoked: bool,
    /// The `User-Agent` it logged in with.
    pub user_agent: Option<String>,
    /// The address it logged in from.
    pub ip: Option<String>,
}

#[derive(Serialize)]
struct Register<'a> {
    email: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    display_name: Option<&'a str>,
    password: &'a str,
}

#[derive(Serialize)]
struct Login<'a> {
    email: &'a str,
    password: &'a str,
}

#[derive(Serialize)]
struct Refresh<'a> {
    refresh_token: &'a str,
}

impl Client {
    /// `POST /v1/auth/register`: creates an account (the display name defaults to the email).
    pub async fn register(
        &self,
        email: &str,
        password: &str,
        display_name: Option<&str>,
    ) -> Result<Registered> {
        let body = Register {
            email,
            display_name,
            password,
        };
        let call = self.call(Method::POST, &["v1", "auth", "register"]);
        self.send(call.anonymous().json(&body)).await?.json()
    }

    /// `POST /v1/auth/login`: a new session's tokens.
    pub async fn login(&self, email: &str, password: &str) -> Result<Tokens> {
        let call = self.call(Method::POST, &["v1", "auth", "login"]);
        self.send(call.anonymous().json(&Login { email, password }))
            .await?
            .json()
    }

    /// `POST /v1/auth/refresh`: exchanges a refresh token, once, for new tokens.
    pub async fn refresh(&self, refresh_token: &str) -> Result<Tokens> {
        let call = self.call(Method::POST, &["v1", "auth", "refresh"]);
        self.send(call.anonymous().json(&Refresh { refresh_token }))
            .await?
            .json()
    }

    /// `POST /v1/auth/logout`: ends the session of the client's access token.
    pub async fn logout(&self) -> Result<()> {
        let call = self.call(Method::POST, &["v1", "auth", "logout"]);
        self.send(call).await?.done()
    }

    /// `GET /v1/sessions`: the caller's sessions.
    pub async fn list_sessions(&self) -> Result<Vec<Session>> {
        let call = self.call(Method::GET, &["v1", "sessions"]);
        self.send(call).await?.json()
    }

    /// `DELETE /v1/sessions/{id}`: revokes one of the caller's sessions; its tokens stop
    /// working at their next request.
    pub async fn revoke_session(&self, session_id: &str) -> Result<()> {
        let call = self.call(Method::DELETE, &["v1", "sessions", session_id]);
        self.send(call).await?.done()
    }

    /// `GET /v1/users/me/export`: everything the coordinator keeps about the caller (account,
    /// sessions, memberships, what the audit log recorded of them), as the JSON it sends.
    pub async fn export_me(&self) -> Result<serde_json::Value> {
        let call = self.call(Method::GET, &["v1", "users", "me", "export"]);
        self.send(call).await?.json()
    }

    /// `DELETE /v1/users/me`: erases the caller (refused while they are a project's only
    /// owner); their tokens stop working.
    pub async fn erase_me(&self) -> Result<()> {
        let call = self.call(Method::DELETE, &["v1", "users", "me"]);
        self.send(call).await?.done()
    }
}
