//! Users: accounts that log in with an email and a password hash.

use chrono::{DateTime, Utc};

use crate::store::on_tx;
use crate::time::now;
use crate::{Error, Result, Tx, UserId};

/// A user as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct User {
    /// The user's id.
    pub id: UserId,
    /// Trimmed and lowercased; unique.
    pub email: String,
    /// The name shown to other members.
    pub display_name: String,
    /// The password hash (a PHC string); the store never sees a password.
    pub password_hash: String,
    /// When the account was created.
    pub created_at: DateTime<Utc>,
    /// When the user was erased; such a user cannot log in and is never found by email.
    pub erased_at: Option<DateTime<Utc>>,
}

/// What [`Tx::create_user`] needs.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Any case and surrounding space; stored normalised.
    pub email: String,
    /// The name shown to other members.
    pub display_name: String,
    /// The password hash (a PHC string).
    pub password_hash: String,
}

/// The form in which emails are stored and looked up.
pub(crate) fn normalize_email(email: &str) -> Result<String> {
    let normalized = email.trim().to_lowercase();
    if normalized.is_empty() || !normalized.contains('@') {
        return Err(Error::Invalid {
            what: "email",
            reason: "expected an address with an @".to_owned(),
        });
    }
    Ok(normalized)
}

/// `SELECT` of every user column, followed by a literal condition.
macro_rules! select_users {
    ($condition:literal) => {
        concat!(
            "SELECT id, email, display_name, password_hash, created_at, erased_at FROM users ",
            $condition
        )
    };
}

impl Tx<'_> {
    /// Creates a user. [`Error::Conflict`] if the (normalised) email is taken.
    pub async fn create_user(&mut self, new_user: &NewUser) -> Result<User> {
        let user = User {
            id: UserId::new(),
            email: normalize_email(&new_user.email)?,
            display_name: new_user.display_name.clone(),
            password_hash: new_user.password_hash.clone(),
            created_at: now(),
            erased_at: None,
        };
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO users (id, email, display_name, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(user.id)
        .bind(&user.email)
        .bind(&user.display_name)
        .bind(&user.password_hash)
        .bind(user.created_at)
        .execute(conn)
        .await
        .map(drop))?;
        Ok(user)
    }

    /// The user with this id, erased or not. [`Error::NotFound`] if there is none.
    pub async fn get_user(&mut self, id: UserId) -> Result<User> {
        let user: Option<User> = on_tx!(self, conn => sqlx::query_as(select_users!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await)?;
        user.ok_or_else(|| Error::not_found("user"))
    }

    /// The user who is not erased and has this email (in any case).
    pub async fn find_user_by_email(&mut self, email: &str) -> Result<Option<User>> {
        let Ok(email) = normalize_email(email) else {
            return Ok(None);
        };
        let user = on_tx!(self, conn => sqlx::query_as(
            select_users!("WHERE email = $1 AND erased_at IS NULL"))
            .bind(&email)
            .fetch_optional(conn)
            .await)?;
        Ok(user)
    }

    /// Erases a user: frees the email, clears the password hash and the display name, and
    /// revokes every session. The row stays, so that audit entries keep naming the actor.
    pub async fn erase_user(&mut self, id: UserId) -> Result<()> {
        let erased_at = now();
        let placeholder_email = format!("erased+{id}@invalid");
        let updated = on_tx!(self, conn => sqlx::query(
            "UPDATE users SET email = $1, display_name = '', password_hash = '', erased_at = $2 \
             WHERE id = $3 AND erased_at IS NULL",
        )
        .bind(&placeholder_email)
        .bind(erased_at)
        .bind(id)
        .execute(conn)
        .await
        .map(|result| result.rows_affected()))?;
        if updated == 0 {
            return Err(Error::not_found("user"));
        }
        self.revoke_all_sessions(id, "user_erased").await?;
        Ok(())
    }
}
