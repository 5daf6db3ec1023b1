//! An agent's context through the API: the same key-value stores its function opens in an
//! invocation for it (`<project>/agents/<agent>/<label>`), read and written with
//! compare-and-swap and TTLs.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use nexus_context::{ContextStore, Namespace, Ttl};
use nexus_proto::Digest;
use nexus_store::{AgentId, ProjectId};

use super::AgentService;
use crate::error::ApiError;

/// The store label when a request names none: Spin's default store.
pub const DEFAULT_STORE: &str = "default";

/// One of an agent's key-value stores.
#[derive(Debug, Clone, Copy)]
pub struct AgentStore<'a> {
    /// The agent's project.
    pub project: ProjectId,
    /// The agent.
    pub agent: AgentId,
    /// The store's label, as the function opens it.
    pub label: &'a str,
}

/// A value and what identifies it.
#[derive(Debug, Clone)]
pub struct ContextValue {
    /// The bytes.
    pub value: Vec<u8>,
    /// Changes whenever the value does: the hex SHA-256 of the value.
    pub etag: String,
    /// How long the key has left, when it expires.
    pub expires_in: Option<Duration>,
}

/// When a write may happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Always.
    None,
    /// Only while the value's etag is this one (HTTP `If-Match`).
    Matches(String),
    /// Only when the key does not exist (HTTP `If-None-Match: *`).
    Absent,
}

/// The etag of `value`.
pub fn etag_of(value: &[u8]) -> String {
    Digest::of(value).hex()
}

pub(super) fn context_error(error: nexus_context::Error) -> ApiError {
    match error {
        nexus_context::Error::Backend(message) => {
            tracing::error!(%message, "the context store failed");
            ApiError::from_runtime(
                StatusCode::SERVICE_UNAVAILABLE,
                "context_unavailable",
                "the key-value store did not answer; try again",
                Some(Duration::from_secs(1)),
            )
        }
        other => ApiError::bad_request(other.to_string()),
    }
}

fn precondition_failed() -> ApiError {
    ApiError::new(
        StatusCode::PRECONDITION_FAILED,
        "precondition_failed",
        "the value changed, or the key exists: read it again",
    )
}

impl AgentService {
    pub(super) fn context_store(&self) -> Result<&Arc<dyn ContextStore>, ApiError> {
        self.context.as_ref().ok_or_else(|| {
            ApiError::from_runtime(
                StatusCode::SERVICE_UNAVAILABLE,
                "context_unavailable",
                "this coordinator has no shared key-value store: start it with --kv",
                None,
            )
        })
    }

    /// The namespace of `store`, once its agent is known to be its project's.
    async fn namespace(&self, store: AgentStore<'_>) -> Result<Namespace, ApiError> {
        let AgentStore {
            project,
            agent,
            label,
        } = store;
        if label.is_empty() || label.contains('/') {
            return Err(ApiError::bad_request(format!(
                "invalid store label {label:?}"
            )));
        }
        self.get(project, agent).await?;
        Ok(Namespace::agent_store(
            &project.to_string(),
            &agent.to_string(),
            label,
        ))
    }

    /// The keys in `store`, sorted.
    pub async fn context_keys(&self, store: AgentStore<'_>) -> Result<Vec<String>, ApiError> {
        let context = self.context_store()?;
        let namespace = self.namespace(store).await?;
        let mut keys = context.keys(&namespace).await.map_err(context_error)?;
        keys.sort_unstable();
        Ok(keys)
    }

    /// The value of `key` in `store`.
    pub async fn context_get(
        &self,
        store: AgentStore<'_>,
        key: &str,
    ) -> Result<ContextValue, ApiError> {
        let context = self.context_store()?;
        let namespace = self.namespace(store).await?;
        let value = context
            .get(&namespace, key)
            .await
            .map_err(context_error)?
            .ok_or_else(|| ApiError::not_found("key"))?;
        let expires_in = match context.ttl(&namespace, key).await.map_err(context_error)? {
            Ttl::ExpiresIn(left) => Some(left),
            Ttl::Missing | Ttl::Persistent => None,
        };
        Ok(ContextValue {
            etag: etag_of(&value),
            value,
            expires_in,
        })
    }

    /// Writes `value` at `key` in `store` when `condition` holds, expiring
    /// after `ttl` when given (only without a condition: a swap makes the key persistent).
    /// Answers the new etag.
    pub async fn context_put(
        &self,
        store: AgentStore<'_>,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
        condition: Condition,
    ) -> Result<String, ApiError> {
        let context = self.context_store()?;
        if ttl.is_some() && condition != Condition::None {
            return Err(ApiError::bad_request(
                "a conditional write makes the key persistent; it takes no ttl",
            ));
        }
        let namespace = self.namespace(store).await?;
        match condition {
            Condition::None => context
                .set(&namespace, key, value, ttl)
                .await
                .map_err(context_error)?,
            Condition::Absent => {
                if !context
                    .compare_and_swap(&namespace, key, None, value)
                    .await
                    .map_err(context_error)?
                {
                    return Err(precondition_failed());
                }
            }
            Condition::Matches(etag) => {
                let current = context.get(&namespace, key).await.map_err(context_error)?;
                let Some(current) = current.filter(|current| etag_of(current) == etag) else {
                    return Err(precondition_failed());
                };
                if !context
                    .compare_and_swap(&namespace, key, Some(&current), value)
                    .await
                    .map_err(context_error)?
                {
                    return Err(precondition_failed());
                }
            }
        }
        Ok(etag_of(value))
    }

    /// Deletes `key` from `store`.
    pub async fn context_delete(&self, store: AgentStore<'_>, key: &str) -> Result<(), ApiError> {
        let context = self.context_store()?;
        let namespace = self.namespace(store).await?;
        if context
            .delete(&namespace, key)
            .await
            .map_err(context_error)?
        {
            Ok(())
        } else {
            Err(ApiError::not_found("key"))
        }
    }
}
