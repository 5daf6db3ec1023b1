//! Agents: named, stateful instances of a function alias in a project. This is their record
//! (create, get, list by page, suspend, resume, delete), each change published on the event bus
//! once committed; messages and context build on it.

use std::sync::Arc;

use nexus_store::{Agent, AgentId, AgentState, NewAgent, ProjectId, Store};

use crate::error::ApiError;
use crate::events::{EventBus, EventKind};
use crate::functions::LIVE;

/// Agents listed per page unless the caller asks for another size.
pub const DEFAULT_PAGE: u32 = 50;
/// The most agents one page holds.
pub const MAX_PAGE: u32 = 500;
/// The longest agent name.
const MAX_NAME_CHARS: usize = 128;

/// The agents service.
#[derive(Clone)]
pub struct AgentService {
    store: Arc<Store>,
    events: Arc<dyn EventBus>,
}

/// One page of a project's agents, and where the next starts.
#[derive(Debug, Clone)]
pub struct AgentPage {
    /// In name order.
    pub agents: Vec<Agent>,
    /// The cursor for the next page, when there may be one.
    pub next: Option<String>,
}

impl AgentService {
    /// A service over `store` that publishes its changes on `events`.
    pub fn new(store: Arc<Store>, events: Arc<dyn EventBus>) -> Self {
        Self { store, events }
    }

    /// Creates the agent `name`, run by `alias` (default `live`) of `function`.
    pub async fn create(
        &self,
        project: ProjectId,
        function: &str,
        name: &str,
        alias: Option<&str>,
    ) -> Result<Agent, ApiError> {
        check_name(name)?;
        let (function, name) = (function.to_owned(), name.to_owned());
        let alias = alias.unwrap_or(LIVE).to_owned();
        let agent = self
            .store
            .with_retry(|tx| {
                let (function, name, alias) = (function.clone(), name.clone(), alias.clone());
                Box::pin(async move {
                    let function = tx.get_function(project, &function).await?;
                    tx.get_alias(function.id, &alias).await?;
                    tx.create_agent(&NewAgent {
                        project_id: project,
                        function_id: function.id,
                        name,
                        alias,
                    })
                    .await
                })
            })
            .await?;
        self.events.publish(EventKind::AgentCreated {
            project: project.to_string(),
            agent: agent.id.to_string(),
            name: agent.name.clone(),
        });
        Ok(agent)
    }

    /// The project's agent `id`.
    pub async fn get(&self, project: ProjectId, id: AgentId) -> Result<Agent, ApiError> {
        Ok(self
            .store
            .with_retry(|tx| Box::pin(async move { tx.get_agent(project, id).await }))
            .await?)
    }

    /// Up to `limit` agents (at most [`MAX_PAGE`]) in name order after the cursor `after`.
    pub async fn list(
        &self,
        project: ProjectId,
        after: Option<&str>,
        limit: u32,
    ) -> Result<AgentPage, ApiError> {
        if limit == 0 || limit > MAX_PAGE {
            return Err(ApiError::bad_request(format!(
                "limit must be 1 to {MAX_PAGE}"
            )));
        }
        let after = after.map(str::to_owned);
        let agents = self
            .store
            .with_retry(|tx| {
                let after = after.clone();
                Box::pin(async move { tx.list_agents(project, after.as_deref(), limit).await })
            })
            .await?;
        let full = agents.len() == limit as usize;
        let next = full
            .then(|| agents.last().map(|agent| agent.name.clone()))
            .flatten();
        Ok(AgentPage { agents, next })
    }

    /// Moves the project's agent `id` to `state`.
    pub async fn set_state(
        &self,
        project: ProjectId,
        id: AgentId,
        state: AgentState,
    ) -> Result<Agent, ApiError> {
        let agent = self
            .store
            .with_retry(|tx| Box::pin(async move { tx.set_agent_state(project, id, state).await }))
            .await?;
        self.events.publish(EventKind::AgentChanged {
            project: project.to_string(),
            agent: id.to_string(),
            state: state.to_string(),
        });
        Ok(agent)
    }

    /// Deletes the project's agent `id`; its name is free again.
    pub async fn delete(&self, project: ProjectId, id: AgentId) -> Result<(), ApiError> {
        self.store
            .with_retry(|tx| Box::pin(async move { tx.delete_agent(project, id).await }))
            .await?;
        self.events.publish(EventKind::AgentDeleted {
            project: project.to_string(),
            agent: id.to_string(),
        });
        Ok(())
    }
}

/// Names are 1 to 128 letters, digits, `-`, `_` and `.`: safe in a URL path and a log line.
fn check_name(name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.chars().count() <= MAX_NAME_CHARS
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "an agent name has 1 to {MAX_NAME_CHARS} letters, digits, '-', '_' or '.': {name:?}"
        )))
    }
}
