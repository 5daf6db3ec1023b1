//! Project API keys, for machines: a key acts in one project with one role (never owner), is
//! shown once when created, is stored only as its hash, and stops working when revoked.

use std::sync::Arc;

use nexus_store::{ApiKey, ApiKeyId, NewApiKey, ProjectId, Role, Store, TokenHash};

use crate::auth::secret::{self, SecretKind};
use crate::error::ApiError;

/// A request authenticated by an API key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyCaller {
    /// The key.
    pub key: ApiKeyId,
    /// The one project it acts in.
    pub project: ProjectId,
    /// What it may do there.
    pub role: Role,
}

/// A key as created: the only time its secret is seen.
#[derive(Debug, Clone)]
pub struct CreatedKey {
    /// The stored key.
    pub key: ApiKey,
    /// The secret, for the `Authorization: Bearer` header.
    pub secret: String,
}

/// The API keys service.
#[derive(Clone)]
pub struct ApiKeyService {
    store: Arc<Store>,
}

impl ApiKeyService {
    /// A service over `store`.
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    /// Creates a key for `project` with `role`.
    pub async fn create(
        &self,
        project: ProjectId,
        name: &str,
        role: Role,
        created_by: Option<nexus_store::UserId>,
    ) -> Result<CreatedKey, ApiError> {
        if role == Role::Owner {
            return Err(ApiError::bad_request(
                "an API key may be admin, developer or viewer, never owner",
            ));
        }
        let secret =
            secret::generate(SecretKind::ApiKey).map_err(|error| ApiError::internal(&error))?;
        let new_key = NewApiKey {
            project_id: project,
            name: name.to_owned(),
            prefix: secret.chars().take(12).collect(),
            key_hash: TokenHash::of(&secret),
            role,
            created_by,
        };
        let key = self
            .store
            .with_retry(|tx| {
                let new_key = new_key.clone();
                Box::pin(async move { tx.create_api_key(&new_key).await })
            })
            .await?;
        Ok(CreatedKey { key, secret })
    }

    /// The project's keys, revoked ones included, without secrets.
    pub async fn list(&self, project: ProjectId) -> Result<Vec<ApiKey>, ApiError> {
        Ok(self
            .store
            .with_retry(|tx| Box::pin(async move { tx.list_api_keys(project).await }))
            .await?)
    }

    /// Revokes a key of `project`; it authenticates nothing from the next request on.
    pub async fn revoke(&self, project: ProjectId, key: ApiKeyId) -> Result<(), ApiError> {
        Ok(self
            .store
            .with_retry(|tx| Box::pin(async move { tx.revoke_api_key(project, key).await }))
            .await?)
    }

    /// The key `secret` names, if it is live.
    pub async fn authenticate(&self, secret: &str) -> Result<KeyCaller, ApiError> {
        let refused = || ApiError::unauthenticated("the API key is not valid");
        if !secret::is_well_formed(SecretKind::ApiKey, secret) {
            return Err(refused());
        }
        let hash = TokenHash::of(secret);
        let key = self
            .store
            .with_retry(|tx| {
                Box::pin(async move {
                    let key = tx.find_active_api_key(&hash).await?;
                    if let Some(key) = &key {
                        tx.touch_api_key(key.id).await?;
                    }
                    Ok(key)
                })
            })
            .await?
            .ok_or_else(refused)?;
        Ok(KeyCaller {
            key: key.id,
            project: key.project_id,
            role: key.role,
        })
    }
}
