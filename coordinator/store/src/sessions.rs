//! Sessions: refresh-token families, rotated on every use.
//!
//! A session row is a family; its id is the family id. `sessions.current_token_hash` is the one
//! token of the family that may be exchanged, and `refresh_tokens` remembers every token ever
//! issued, so that presenting a superseded one is recognised. Rotation is a compare-and-set
//! on the session row inside one transaction: of several concurrent rotations of the same
//! token exactly one wins; the others conflict, are retried by [`crate::Store::with_retry`],
//! then find their token superseded and revoke the family (a client racing itself looks
//! exactly like a thief racing the client, and the safe answer to both is to log out).

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use crate::store::on_tx;
use crate::time::now;
use crate::{Error, Result, SessionId, Tx, UserId};

/// sha256 of a refresh token. The store keeps hashes only, never tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TokenHash(pub [u8; 32]);

impl TokenHash {
    /// The hash of `token`.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }
}

/// A session as listed to its user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Session {
    /// The session (and refresh-token family) id.
    pub id: SessionId,
    /// Whose session it is.
    pub user_id: UserId,
    /// When the user logged in.
    pub created_at: DateTime<Utc>,
    /// When a token of the family was last exchanged (or issued).
    pub last_used_at: DateTime<Utc>,
    /// When the family last rotated.
    pub rotated_at: Option<DateTime<Utc>>,
    /// When the family was revoked; a revoked session accepts no token.
    pub revoked_at: Option<DateTime<Utc>>,
    /// Why: `"logout"`, `"refresh_token_reused"`, …
    pub revoked_reason: Option<String>,
    /// The client's `User-Agent` at login.
    pub user_agent: Option<String>,
    /// The client's address at login.
    pub ip: Option<String>,
}

/// What [`Tx::create_session`] needs.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Who logged in.
    pub user_id: UserId,
    /// The hash of the family's first refresh token.
    pub token_hash: TokenHash,
    /// The client's `User-Agent`.
    pub user_agent: Option<String>,
    /// The client's address.
    pub ip: Option<String>,
}

/// The outcome of [`Tx::rotate_refresh_token`]. Every variant commits: a detected reuse must
/// revoke the family even though the caller answers with an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current: the family now accepts only the next token.
    Rotated(Session),
    /// The token had been exchanged before: the whole family is now revoked.
    Reused {
        /// The revoked family.
        session_id: SessionId,
        /// Its user.
        user_id: UserId,
    },
    /// The family was revoked already.
    Revoked {
        /// The family.
        session_id: SessionId,
    },
    /// No session ever issued this token.
    Unknown,
}

/// Why a family is revoked when one of its superseded tokens is presented.
const REUSE_REASON: &str = "refresh_token_reused";

macro_rules! select_sessions {
    ($condition:literal) => {
        concat!(
            "SELECT id, user_id, created_at, last_used_at, rotated_at, revoked_at, \
             revoked_reason, user_agent, ip FROM sessions ",
            $condition
        )
    };
}

#[derive(sqlx::FromRow)]
struct TokenOwner {
    session_id: SessionId,
    user_id: UserId,
    current_token_hash: Vec<u8>,
    revoked_at: Option<DateTime<Utc>>,
}

impl Tx<'_> {
    /// Starts a family at login, with its first refresh token.
    pub async fn create_session(&mut self, new_session: &NewSession) -> Result<Session> {
        let created_at = now();
        let session = Session {
            id: SessionId::new(),
            user_id: new_session.user_id,
            created_at,
            last_used_at: created_at,
            rotated_at: None,
            revoked_at: None,
            revoked_reason: None,
            user_agent: new_session.user_agent.clone(),
            ip: new_session.ip.clone(),
        };
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO sessions (id, user_id, current_token_hash, created_at, last_used_at, \
             user_agent, ip) VALUES ($1, $2, $3, $4, $4, $5, $6)",
        )
        .bind(session.id)
        .bind(session.user_id)
        .bind(new_session.token_hash.0.as_slice())
        .bind(created_at)
        .bind(&session.user_agent)
        .bind(&session.ip)
        .execute(conn)
        .await
        .map(drop))?;
        self.insert_refresh_token(session.id, &new_session.token_hash, created_at)
            .await?;
        Ok(session)
    }

    /// Exchanges `presented` for `next`, or detects reuse and revokes the family. See
    /// [`Rotation`]; run it in [`crate::Store::with_retry`] so that concurrent rotations are
    /// serialised.
    pub async fn rotate_refresh_token(
        &mut self,
        presented: &TokenHash,
        next: &TokenHash,
    ) -> Result<Rotation> {
        let owner: Option<TokenOwner> = on_tx!(self, conn => sqlx::query_as(
            "SELECT s.id AS session_id, s.user_id, s.current_token_hash, s.revoked_at \
             FROM refresh_tokens t JOIN sessions s ON s.id = t.session_id \
             WHERE t.token_hash = $1",
        )
        .bind(presented.0.as_slice())
        .fetch_optional(conn)
        .await)?;
        let Some(owner) = owner else {
            return Ok(Rotation::Unknown);
        };
        if owner.revoked_at.is_some() {
            return Ok(Rotation::Revoked {
                session_id: owner.session_id,
            });
        }
        let reused = Rotation::Reused {
            session_id: owner.session_id,
            user_id: owner.user_id,
        };
        if owner.current_token_hash != presented.0 {
            self.revoke_family(owner.session_id, REUSE_REASON).await?;
            return Ok(reused);
        }

        let rotated_at = now();
        // The compare-and-set: only the current token moves the family on.
        let session: Option<Session> = on_tx!(self, conn => sqlx::query_as(
            "UPDATE sessions SET current_token_hash = $1, rotated_at = $2, last_used_at = $2 \
             WHERE id = $3 AND current_token_hash = $4 AND revoked_at IS NULL \
             RETURNING id, user_id, created_at, last_used_at, rotated_at, revoked_at, \
             revoked_reason, user_agent, ip",
        )
        .bind(next.0.as_slice())
        .bind(rotated_at)
        .bind(owner.session_id)
        .bind(presented.0.as_slice())
        .fetch_optional(conn)
        .await)?;
        let Some(session) = session else {
            // Under weaker isolation than ours a concurrent rotation could get here first.
            self.revoke_family(owner.session_id, REUSE_REASON).await?;
            return Ok(reused);
        };
        on_tx!(self, conn => sqlx::query(
            "UPDATE refresh_tokens SET superseded_at = $1 WHERE token_hash = $2",
        )
        .bind(rotated_at)
        .bind(presented.0.as_slice())
        .execute(conn)
        .await
        .map(drop))?;
        self.insert_refresh_token(owner.session_id, next, rotated_at)
            .await?;
        Ok(Rotation::Rotated(session))
    }

    /// The session with this id, revoked or not.
    pub async fn get_session(&mut self, id: SessionId) -> Result<Session> {
        let session: Option<Session> = on_tx!(self, conn => sqlx::query_as(
            select_sessions!("WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await)?;
        session.ok_or_else(|| Error::not_found("session"))
    }

    /// The user's sessions that are not revoked, newest first.
    pub async fn list_sessions(&mut self, user_id: UserId) -> Result<Vec<Session>> {
        let sessions = on_tx!(self, conn => sqlx::query_as(select_sessions!(
            "WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id"
        ))
        .bind(user_id)
        .fetch_all(conn)
        .await)?;
        Ok(sessions)
    }

    /// Revokes one of the user's sessions. [`Error::NotFound`] if the user has no such
    /// session that is still active (another user's session is not found either).
    pub async fn revoke_session(
        &mut self,
        user_id: UserId,
        session_id: SessionId,
        reason: &str,
    ) -> Result<()> {
        let revoked = on_tx!(self, conn => sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE id = $3 AND user_id = $4 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(reason)
        .bind(session_id)
        .bind(user_id)
        .execute(conn)
        .await
        .map(|result| result.rows_affected()))?;
        if revoked == 0 {
            return Err(Error::not_found("session"));
        }
        Ok(())
    }

    /// Revokes every active session of the user; returns how many.
    pub async fn revoke_all_sessions(&mut self, user_id: UserId, reason: &str) -> Result<u64> {
        let revoked = on_tx!(self, conn => sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE user_id = $3 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(reason)
        .bind(user_id)
        .execute(conn)
        .await
        .map(|result| result.rows_affected()))?;
        Ok(revoked)
    }

    async fn revoke_family(&mut self, session_id: SessionId, reason: &str) -> Result<()> {
        on_tx!(self, conn => sqlx::query(
            "UPDATE sessions SET revoked_at = $1, revoked_reason = $2 \
             WHERE id = $3 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(reason)
        .bind(session_id)
        .execute(conn)
        .await
        .map(drop))?;
        Ok(())
    }

    async fn insert_refresh_token(
        &mut self,
        session_id: SessionId,
        token_hash: &TokenHash,
        issued_at: DateTime<Utc>,
    ) -> Result<()> {
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, issued_at) VALUES ($1, $2, $3)",
        )
        .bind(token_hash.0.as_slice())
        .bind(session_id)
        .bind(issued_at)
        .execute(conn)
        .await
        .map(drop))?;
        Ok(())
    }
}
