//! Project API keys: machine credentials with a role in one project.

use chrono::{DateTime, Utc};

use crate::projects::stored_role;
use crate::store::on_tx;
use crate::time::now;
use crate::{ApiKeyId, Error, ProjectId, Result, Role, TokenHash, Tx, UserId};

/// An API key as stored (without its hash).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The key's id.
    pub id: ApiKeyId,
    /// The project it acts in.
    pub project_id: ProjectId,
    /// A label chosen by its creator.
    pub name: String,
    /// The first characters of the key, for recognising it in listings.
    pub prefix: String,
    /// What it may do in the project.
    pub role: Role,
    /// Who created it, if that user still exists.
    pub created_by: Option<UserId>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last authenticated a request, as recorded by [`Tx::touch_api_key`].
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked key authenticates nothing.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What [`Tx::create_api_key`] needs.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The project it acts in.
    pub project_id: ProjectId,
    /// A label.
    pub name: String,
    /// The first characters of the key.
    pub prefix: String,
    /// sha256 of the whole key.
    pub key_hash: TokenHash,
    /// What it may do.
    pub role: Role,
    /// Who creates it.
    pub created_by: Option<UserId>,
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: ApiKeyId,
    project_id: ProjectId,
    name: String,
    prefix: String,
    role: String,
    created_by: Option<UserId>,
    created_at: DateTime<Utc>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
}

impl TryFrom<ApiKeyRow> for ApiKey {
    type Error = Error;

    fn try_from(row: ApiKeyRow) -> Result<Self> {
        Ok(Self {
            id: row.id,
            project_id: row.project_id,
            name: row.name,
            prefix: row.prefix,
            role: stored_role("api_keys", &row.role)?,
            created_by: row.created_by,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
        })
    }
}

macro_rules! select_api_keys {
    ($condition:literal) => {
        concat!(
            "SELECT id, project_id, name, prefix, role, created_by, created_at, last_used_at, \
             revoked_at FROM api_keys ",
            $condition
        )
    };
}

impl Tx<'_> {
    /// Stores a new key. [`Error::Conflict`] if the hash is already stored.
    pub async fn create_api_key(&mut self, new_key: &NewApiKey) -> Result<ApiKey> {
        let key = ApiKey {
            id: ApiKeyId::new(),
            project_id: new_key.project_id,
            name: new_key.name.clone(),
            prefix: new_key.prefix.clone(),
            role: new_key.role,
            created_by: new_key.created_by,
            created_at: now(),
            last_used_at: None,
            revoked_at: None,
        };
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO api_keys (id, project_id, name, prefix, key_hash, role, created_by, \
             created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(key.id)
        .bind(key.project_id)
        .bind(&key.name)
        .bind(&key.prefix)
        .bind(new_key.key_hash.0.as_slice())
        .bind(key.role.as_str())
        .bind(key.created_by)
        .bind(key.created_at)
        .execute(conn)
        .await
        .map(drop))?;
        Ok(key)
    }

    /// The key with this hash if it is not revoked: what authentication looks up.
    pub async fn find_active_api_key(&mut self, key_hash: &TokenHash) -> Result<Option<ApiKey>> {
        let row: Option<ApiKeyRow> = on_tx!(self, conn => sqlx::query_as(select_api_keys!(
            "WHERE key_hash = $1 AND revoked_at IS NULL"
        ))
        .bind(key_hash.0.as_slice())
        .fetch_optional(conn)
        .await)?;
        row.map(ApiKey::try_from).transpose()
    }

    /// The project's keys, revoked ones included, newest first.
    pub async fn list_api_keys(&mut self, project_id: ProjectId) -> Result<Vec<ApiKey>> {
        let rows: Vec<ApiKeyRow> = on_tx!(self, conn => sqlx::query_as(select_api_keys!(
            "WHERE project_id = $1 ORDER BY created_at DESC, id"
        ))
        .bind(project_id)
        .fetch_all(conn)
        .await)?;
        rows.into_iter().map(ApiKey::try_from).collect()
    }

    /// Revokes a key of the project. [`Error::NotFound`] if the project has no such active key.
    pub async fn revoke_api_key(&mut self, project_id: ProjectId, id: ApiKeyId) -> Result<()> {
        let revoked = on_tx!(self, conn => sqlx::query(
            "UPDATE api_keys SET revoked_at = $1 \
             WHERE id = $2 AND project_id = $3 AND revoked_at IS NULL",
        )
        .bind(now())
        .bind(id)
        .bind(project_id)
        .execute(conn)
        .await
        .map(|result| result.rows_affected()))?;
        if revoked == 0 {
            return Err(Error::not_found("api key"));
        }
        Ok(())
    }

    /// Records that the key authenticated a request now.
    pub async fn touch_api_key(&mut self, id: ApiKeyId) -> Result<()> {
        on_tx!(self, conn => sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now())
            .bind(id)
            .execute(conn)
            .await
            .map(drop))?;
        Ok(())
    }
}
