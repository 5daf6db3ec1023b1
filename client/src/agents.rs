//! Agents: `/v1/projects/{p}/agents`, their messages and (in [`context`]) their key-value
//! stores. The conversation over a WebSocket is [`crate::AgentSession`].

use std::collections::BTreeMap;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, Method};
use serde::{Deserialize, Serialize};

use crate::invocations::{IDEMPOTENCY_KEY, PREFER, RESPOND_ASYNC};
use crate::{Accepted, Client, FunctionResponse, Result};

mod context;

pub use self::context::{ContextValue, PutCondition, PutOptions};

open_enum! {
    /// Whether an agent runs its messages.
    pub enum AgentState {
        /// Running messages.
        Active = "active",
        /// Running messages, none lately.
        Idle = "idle",
        /// Keeping its context, running nothing until resumed.
        Suspended = "suspended",
    }
}

/// An agent: a function alias with its own key-value stores, running one message at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// The agent id: what the other agent methods take.
    pub id: String,
    /// Its name, unique in the project.
    pub name: String,
    /// The id of the function that runs it.
    pub function_id: String,
    /// The name of the function that runs it.
    pub function: String,
    /// The function's alias whose version serves it.
    pub alias: String,
    /// Whether it runs its messages.
    pub state: AgentState,
    /// When it was created (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
}

/// A page of a project's agents, in name order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentPage {
    /// The agents.
    pub agents: Vec<Agent>,
    /// Pass as `after` for the next page; `None` on the last one.
    pub next: Option<String>,
}

/// An agent to create.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NewAgent {
    /// Unique in the project: 1 to 128 letters, digits, `-`, `_` or `.`.
    pub name: String,
    /// The function that runs it.
    pub function: String,
    /// The function's alias whose version serves it (`live` when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// Initial keys and (UTF-8) values of its `default` store.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub context: BTreeMap<String, String>,
}

/// A message to an agent: the body of a `POST` its function sees.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgentMessage {
    /// The path and query the function sees (`/` when `None`).
    pub path: Option<String>,
    /// The body's content type.
    pub content_type: Option<String>,
    /// The body.
    pub body: Bytes,
    /// For [`Client::send_message_async`]: the same key in the project within 24 hours names
    /// the first invocation instead of queueing another.
    pub idempotency_key: Option<String>,
}

impl AgentMessage {
    /// A message of `body`, of `content_type`, to `/`.
    pub fn new(content_type: &str, body: impl Into<Bytes>) -> Self {
        Self {
            content_type: Some(content_type.to_owned()),
            body: body.into(),
            ..Self::default()
        }
    }
}

impl Client {
    /// `POST /v1/projects/{project}/agents`: creates an agent (developer and up).
    pub async fn create_agent(&self, project: &str, agent: &NewAgent) -> Result<Agent> {
        let call = self.call(Method::POST, &["v1", "projects", project, "agents"]);
        self.send(call.json(agent)).await?.json()
    }

    /// `GET /v1/projects/{project}/agents/{agent}`.
    pub async fn get_agent(&self, project: &str, agent_id: &str) -> Result<Agent> {
        let segments = ["v1", "projects", project, "agents", agent_id];
        self.send(self.call(Method::GET, &segments)).await?.json()
    }

    /// `GET /v1/projects/{project}/agents`: one page of the project's agents in name order,
    /// after the `next` of the previous page, `limit` (1 to 500, default 50) at a time.
    pub async fn list_agents(
        &self,
        project: &str,
        after: Option<&str>,
        limit: Option<u32>,
    ) -> Result<AgentPage> {
        let call = self
            .call(Method::GET, &["v1", "projects", project, "agents"])
            .query_opt("after", after)
            .query_opt("limit", limit);
        self.send(call).await?.json()
    }

    /// Every agent of the project, page after page (each page one call).
    pub async fn list_all_agents(&self, project: &str) -> Result<Vec<Agent>> {
        let mut agents = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = self.list_agents(project, after.as_deref(), None).await?;
            agents.extend(page.agents);
            match page.next {
                Some(next) => after = Some(next),
                None => return Ok(agents),
            }
        }
    }

    /// `POST …/agents/{agent}/suspend`: the agent keeps its context and runs nothing until
    /// resumed (developer and up).
    pub async fn suspend_agent(&self, project: &str, agent_id: &str) -> Result<Agent> {
        let segments = ["v1", "projects", project, "agents", agent_id, "suspend"];
        self.send(self.call(Method::POST, &segments)).await?.json()
    }

    /// `POST …/agents/{agent}/resume` (developer and up).
    pub async fn resume_agent(&self, project: &str, agent_id: &str) -> Result<Agent> {
        let segments = ["v1", "projects", project, "agents", agent_id, "resume"];
        self.send(self.call(Method::POST, &segments)).await?.json()
    }

    /// `DELETE /v1/projects/{project}/agents/{agent}` (developer and up); its name is free
    /// again.
    pub async fn delete_agent(&self, project: &str, agent_id: &str) -> Result<()> {
        let segments = ["v1", "projects", project, "agents", agent_id];
        self.send(self.call(Method::DELETE, &segments))
            .await?
            .done()
    }

    /// `POST …/agents/{agent}/messages`: runs the message once every earlier message to the
    /// agent has finished, and answers with the function's response, whatever its status.
    /// An error is the coordinator's refusal (the agent is unknown or suspended, its mailbox
    /// full…), never the function's answer.
    pub async fn send_message(
        &self,
        project: &str,
        agent_id: &str,
        message: AgentMessage,
    ) -> Result<FunctionResponse> {
        let answer = self
            .send(self.message_call(project, agent_id, message))
            .await?;
        FunctionResponse::from_answer(answer)
    }

    /// [`Client::send_message`] with `Prefer: respond-async`: the message is recorded and run
    /// later, with the function's retries; the answer says where to follow it.
    pub async fn send_message_async(
        &self,
        project: &str,
        agent_id: &str,
        message: AgentMessage,
    ) -> Result<Accepted> {
        let call = self
            .message_call(project, agent_id, message)
            .header(HeaderName::from_static(PREFER), RESPOND_ASYNC);
        Accepted::from_answer(self.send(call).await?)
    }

    fn message_call(
        &self,
        project: &str,
        agent_id: &str,
        message: AgentMessage,
    ) -> crate::transport::Call {
        let segments = ["v1", "projects", project, "agents", agent_id, "messages"];
        let mut call = self
            .call(Method::POST, &segments)
            .query_opt("path", message.path)
            .bytes(message.body);
        if let Some(content_type) = &message.content_type {
            call = call.header(CONTENT_TYPE, content_type);
        }
        match &message.idempotency_key {
            Some(key) => call.header(HeaderName::from_static(IDEMPOTENCY_KEY), key),
            None => call,
        }
    }
}
