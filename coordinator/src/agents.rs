//! Agents: named, stateful instances of a function alias in a project. Their record (create,
//! get, list by page, suspend, resume, delete) has each change published on the event bus once
//! committed. A message to an agent runs its function alias with the agent's own key-value
//! stores, one message at a time per agent ([`mailbox`]).

pub mod context;
pub mod mailbox;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use nexus_context::{ContextStore, Namespace};
use nexus_store::{Agent, AgentId, AgentState, HolderId, Project, ProjectId, Store};

use crate::dispatch::{Dispatch, Invocation, ran_on};
use crate::error::ApiError;
use crate::events::{EventBus, EventKind};
use crate::functions::LIVE;
use crate::projects::Access;
use crate::trigger::{Resolution, Resolver, VERSION_HEADER};
use mailbox::Mailboxes;

/// The largest function response a message answered whole (gRPC, WebSocket) carries.
pub const MAX_REPLY_BYTES: usize = 4 * 1024 * 1024;

/// A function's whole response to a message.
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// Its `content-type`, when it is text.
    pub content_type: Option<String>,
    /// The body, at most [`MAX_REPLY_BYTES`].
    pub body: bytes::Bytes,
}

/// How long a message may wait for the agent's earlier messages before it is refused.
pub const MAX_MESSAGE_WAIT: Duration = Duration::from_secs(30);

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
    triggers: Arc<Resolver>,
    dispatch: Arc<dyn Dispatch>,
    mailboxes: Arc<Mailboxes>,
    /// The key-value stores functions open, when this process reaches them.
    context: Option<Arc<dyn ContextStore>>,
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
    /// A service over `store` that publishes its changes on `events` and runs messages
    /// through `triggers` (alias → version) and `dispatch`.
    pub fn new(
        store: Arc<Store>,
        events: Arc<dyn EventBus>,
        triggers: Arc<Resolver>,
        dispatch: Arc<dyn Dispatch>,
    ) -> Self {
        let mailboxes = Arc::new(Mailboxes::new(Arc::clone(&store), HolderId::new()));
        Self {
            store,
            events,
            triggers,
            dispatch,
            mailboxes,
            context: None,
        }
    }

    /// The database.
    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    /// Reads and writes agents' context in `context`, the store the functions open.
    #[must_use]
    pub fn with_context(mut self, context: Arc<dyn ContextStore>) -> Self {
        self.context = Some(context);
        self
    }

    /// Sends `body` (of `content_type`) to the project's agent `id` as a `POST /`, as
    /// [`AgentService::send`] does, and reads the whole response.
    pub async fn exchange(
        &self,
        project: &Project,
        id: AgentId,
        body: bytes::Bytes,
        content_type: Option<&str>,
        client: SocketAddr,
    ) -> Result<Reply, ApiError> {
        let mut request = Request::new(Body::from(body));
        *request.method_mut() = Method::POST;
        if let Some(content_type) = content_type {
            let content_type = HeaderValue::from_str(content_type)
                .map_err(|_| ApiError::bad_request("the content type is not a header value"))?;
            request
                .headers_mut()
                .insert(header::CONTENT_TYPE, content_type);
        }
        let response = self.send(project, id, request, client).await?;
        let (parts, body) = response.into_parts();
        let body = http_body_util::Limited::new(body, MAX_REPLY_BYTES)
            .collect()
            .await
            .map_err(|_| {
                ApiError::too_large(format!(
                    "the function's response is over {MAX_REPLY_BYTES} bytes, or broke off"
                ))
            })?
            .to_bytes();
        Ok(Reply {
            status: parts.status,
            content_type: parts
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned),
            body,
        })
    }

    /// Runs `request` (its method, path, headers and body as the function will see them) as a
    /// message to the project's agent `id`, after the agent's earlier messages, and answers
    /// with the function's response. The next message starts once this response's body has
    /// been sent or dropped.
    pub async fn send(
        &self,
        project: &Project,
        id: AgentId,
        request: Request<Body>,
        client: SocketAddr,
    ) -> Result<Response<Body>, ApiError> {
        let (_, resolution) = self.resolution(project, id).await?;
        let target = Arc::clone(resolution.pick());
        // The function sees `http://<host><path>`; a message from a client that named no host
        // (gRPC, WebSocket) gets a local one.
        let mut request = request;
        if !request.headers().contains_key(header::HOST) {
            request
                .headers_mut()
                .insert(header::HOST, HeaderValue::from_static("localhost"));
        }
        let version = target.version;
        let turn = self
            .mailboxes
            .enter(id, tokio::time::Instant::now() + MAX_MESSAGE_WAIT)
            .await?;
        let started = std::time::Instant::now();
        let mut response = self
            .dispatch
            .invoke(Invocation {
                target: Arc::clone(&target),
                prefix: String::new(),
                client,
                request,
                agent: Some(id),
                logs: None,
            })
            .await?;
        self.events.publish(EventKind::answered(
            &target,
            Some(id.to_string()),
            response.status().as_u16(),
            ran_on(response.headers(), &target),
            started.elapsed(),
        ));
        response
            .headers_mut()
            .insert(VERSION_HEADER, HeaderValue::from(version));
        // The turn ends with the response body: the function may still be running until then.
        Ok(response.map(|body| {
            Body::new(body.map_frame(move |frame| {
                let _in_turn = &turn;
                frame
            }))
        }))
    }

    /// Where a message to the project's agent `id` goes now: its alias's resolution, and the
    /// version picked from it. A suspended agent takes no messages.
    pub async fn resolve(
        &self,
        project: &Project,
        id: AgentId,
    ) -> Result<(Arc<Resolution>, Arc<crate::dispatch::Target>), ApiError> {
        let (_, resolution) = self.resolution(project, id).await?;
        let target = Arc::clone(resolution.pick());
        Ok((resolution, target))
    }

    async fn resolution(
        &self,
        project: &Project,
        id: AgentId,
    ) -> Result<(Agent, Arc<Resolution>), ApiError> {
        let project_id = project.id;
        let agent = self
            .store
            .with_retry(|tx| Box::pin(async move { tx.get_agent(project_id, id).await }))
            .await?;
        if agent.state == AgentState::Suspended {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "agent_suspended",
                "the agent is suspended; resume it to send it messages",
            ));
        }
        let resolution = self
            .triggers
            .resolve(&project.slug, &agent.function, &agent.alias)
            .await?
            .ok_or_else(|| {
                ApiError::conflict(format!(
                    "the agent's alias {:?} of function {:?} no longer exists",
                    agent.alias, agent.function
                ))
            })?;
        Ok((agent, resolution))
    }

    /// Creates the agent `name`, run by `alias` (default `live`) of `function`, with `context`
    /// in its default key-value store, in the project `access` names: the check, the insert
    /// and the audit row commit together. When the context cannot be written, the agent is
    /// removed again and the error returned.
    pub async fn create(
        &self,
        access: Access<'_>,
        function: &str,
        name: &str,
        alias: Option<&str>,
        context: &BTreeMap<String, Vec<u8>>,
    ) -> Result<(Project, Agent), ApiError> {
        check_name("an agent", name, MAX_NAME_CHARS)?;
        let context_store = if context.is_empty() {
            None
        } else {
            Some(self.context_store()?)
        };
        let alias = alias.unwrap_or(LIVE);
        let access = &access;
        let created = self
            .store
            .with_retry(|tx| {
                Box::pin(async move {
                    let (project, _) = match access.check(tx).await? {
                        Ok(granted) => granted,
                        Err(refused) => return Ok(Err(refused)),
                    };
                    let agent = tx
                        .create_agent_of_alias(project.id, function, alias, name)
                        .await?;
                    access.record(tx).await?;
                    Ok(Ok((project, agent)))
                })
            })
            .await?;
        let (project_record, agent) = created?;
        let project = project_record.id;
        if let Some(store) = context_store {
            let namespace = Namespace::agent_store(
                &project.to_string(),
                &agent.id.to_string(),
                context::DEFAULT_STORE,
            );
            for (key, value) in context {
                if let Err(error) = store.set(&namespace, key, value, None).await {
                    let id = agent.id;
                    self.store
                        .with_retry(|tx| {
                            Box::pin(async move { tx.delete_agent(project, id).await })
                        })
                        .await?;
                    return Err(context::context_error(error));
                }
            }
        }
        self.events.publish(EventKind::AgentCreated {
            project: project.to_string(),
            agent: agent.id.to_string(),
            name: agent.name.clone(),
        });
        Ok((project_record, agent))
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

/// Names are 1 to `max` letters, digits, `-`, `_` and `.`: safe in a URL path and a log line.
/// `what` names the thing named ("an agent").
pub(crate) fn check_name(what: &str, name: &str, max: usize) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.chars().count() <= max
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "{what} name has 1 to {max} letters, digits, '-', '_' or '.': {name:?}"
        )))
    }
}
