//! `nexus.v1.AgentService`: the gRPC face of `/v1/projects/{p}/agents`, over the same
//! [`AgentService`](crate::agents::AgentService) and the same roles. Calls carry
//! `authorization: Bearer <access token or API key>`; every answer carries `x-request-id`;
//! changes are audited as REST's are, messages (invocations) are not.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};

use axum::http::StatusCode;
use nexus_proto::v1::agent_service_server::AgentService as AgentServiceGrpc;
use nexus_proto::v1::{
    Agent, AgentRef, AgentState as WireState, CreateAgentRequest, DeleteAgentResponse,
    GetAgentRequest, ListAgentsRequest, ListAgentsResponse, SendMessageRequest,
    SendMessageResponse,
};
use nexus_store::{AgentId, AgentState, Project};
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::{answer, bearer, request_id};
use crate::agents::DEFAULT_PAGE;
use crate::api::AppState;
use crate::audit::AuditSlot;
use crate::error::ApiError;
use crate::projects::{Access, Permission};

/// The largest request a call here decodes: a message's body, and its envelope.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024 + 64 * 1024;

/// The service, over the API's state.
pub(crate) struct Agents {
    state: AppState,
}

impl Agents {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }

    /// The project, if the caller's role in it grants `permission`; the audit actor is set as
    /// soon as the caller is known.
    async fn authorize(
        &self,
        metadata: &MetadataMap,
        project: &str,
        permission: Permission,
        audit: Option<&AuditSlot>,
    ) -> Result<Project, ApiError> {
        let principal = self.state.principal(bearer(metadata)?).await?;
        if let Some(audit) = audit {
            audit.set_actor(principal.actor());
        }
        let (project, _) = self
            .state
            .projects
            .authorize(principal, project, permission)
            .await?;
        Ok(project)
    }

    /// Runs a call that changes nothing (audited or not) in `project` for a caller whose role
    /// there grants `permission`.
    async fn read<T>(
        &self,
        metadata: &MetadataMap,
        project: &str,
        permission: Permission,
        call: impl AsyncFnOnce(Project) -> Result<T, ApiError>,
    ) -> Result<Response<T>, Status> {
        let request_id = request_id(metadata);
        let outcome = match self.authorize(metadata, project, permission, None).await {
            Ok(project) => call(project).await,
            Err(error) => Err(error),
        };
        answer(outcome, &request_id)
    }

    /// Runs a change and audits it as `method` on `target`, however it ended.
    async fn audited<T>(
        &self,
        metadata: &MetadataMap,
        method: &str,
        target: String,
        change: impl AsyncFnOnce(&AuditSlot) -> Result<T, ApiError>,
    ) -> Result<Response<T>, Status> {
        let request_id = request_id(metadata);
        let action = format!("POST /nexus.v1.AgentService/{method}");
        let audit = AuditSlot::new(action, target, Some(request_id.clone()));
        let outcome = change(&audit).await;
        let status = match &outcome {
            Ok(_) => StatusCode::OK,
            Err(error) => error.status,
        };
        crate::audit::close(&self.state.store, &audit, status).await;
        answer(outcome, &request_id)
    }

    async fn set_state(
        &self,
        request: Request<AgentRef>,
        method: &str,
        to: AgentState,
    ) -> Result<Response<Agent>, Status> {
        let AgentRef { project: slug, id } = request.get_ref().clone();
        let target = format!("project:{slug}/agent:{id}");
        self.audited(request.metadata(), method, target, async |audit| {
            let project = self
                .authorize(
                    request.metadata(),
                    &slug,
                    Permission::ManageAgents,
                    Some(audit),
                )
                .await?;
            let agent = self
                .state
                .agents
                .set_state(project.id, agent_id(&id)?, to)
                .await?;
            Ok(view(agent, &project.slug))
        })
        .await
    }
}

/// An agent id from the wire; one that is not a UUID names no agent, as in REST.
fn agent_id(id: &str) -> Result<AgentId, ApiError> {
    uuid::Uuid::parse_str(id)
        .map(AgentId)
        .map_err(|_| ApiError::not_found("agent"))
}

fn view(agent: nexus_store::Agent, project: &str) -> Agent {
    let state = match agent.state {
        AgentState::Active => WireState::Active,
        AgentState::Idle => WireState::Idle,
        AgentState::Suspended => WireState::Suspended,
    };
    Agent {
        id: agent.id.to_string(),
        project: project.to_owned(),
        name: agent.name,
        function: agent.function,
        alias: agent.alias,
        state: state as i32,
        created_at: agent.created_at.to_rfc3339(),
        updated_at: agent.updated_at.to_rfc3339(),
    }
}

#[tonic::async_trait]
impl AgentServiceGrpc for Agents {
    async fn create_agent(
        &self,
        request: Request<CreateAgentRequest>,
    ) -> Result<Response<Agent>, Status> {
        let message = request.get_ref();
        let target = format!("project:{}/agent:{}", message.project, message.name);
        self.audited(request.metadata(), "CreateAgent", target, async |audit| {
            let principal = self.state.principal(bearer(request.metadata())?).await?;
            audit.set_actor(principal.actor());
            let context: BTreeMap<String, Vec<u8>> = message
                .context
                .iter()
                .map(|(key, value)| (key.clone(), value.to_vec()))
                .collect();
            let alias = Some(message.alias.as_str()).filter(|alias| !alias.is_empty());
            let access = Access {
                principal,
                project: &message.project,
                permission: Permission::ManageAgents,
                audit: Some(audit.entry_on_success()),
            };
            let (project, agent) = self
                .state
                .agents
                .create(access, &message.function, &message.name, alias, &context)
                .await?;
            audit.mark_recorded();
            Ok(view(agent, &project.slug))
        })
        .await
    }

    async fn get_agent(
        &self,
        request: Request<GetAgentRequest>,
    ) -> Result<Response<Agent>, Status> {
        let message = request.get_ref();
        self.read(
            request.metadata(),
            &message.project,
            Permission::View,
            async |project| {
                let agent = self
                    .state
                    .agents
                    .get(project.id, agent_id(&message.id)?)
                    .await?;
                Ok(view(agent, &project.slug))
            },
        )
        .await
    }

    async fn list_agents(
        &self,
        request: Request<ListAgentsRequest>,
    ) -> Result<Response<ListAgentsResponse>, Status> {
        let message = request.get_ref();
        self.read(
            request.metadata(),
            &message.project,
            Permission::View,
            async |project| {
                let limit = match message.page_size {
                    0 => DEFAULT_PAGE,
                    size => size,
                };
                let after = Some(message.page_token.as_str()).filter(|token| !token.is_empty());
                let page = self.state.agents.list(project.id, after, limit).await?;
                Ok(ListAgentsResponse {
                    agents: page
                        .agents
                        .into_iter()
                        .map(|agent| view(agent, &project.slug))
                        .collect(),
                    next_page_token: page.next.unwrap_or_default(),
                })
            },
        )
        .await
    }

    async fn suspend_agent(&self, request: Request<AgentRef>) -> Result<Response<Agent>, Status> {
        self.set_state(request, "SuspendAgent", AgentState::Suspended)
            .await
    }

    async fn resume_agent(&self, request: Request<AgentRef>) -> Result<Response<Agent>, Status> {
        self.set_state(request, "ResumeAgent", AgentState::Active)
            .await
    }

    async fn delete_agent(
        &self,
        request: Request<AgentRef>,
    ) -> Result<Response<DeleteAgentResponse>, Status> {
        let AgentRef { project: slug, id } = request.get_ref().clone();
        let target = format!("project:{slug}/agent:{id}");
        self.audited(request.metadata(), "DeleteAgent", target, async |audit| {
            let project = self
                .authorize(
                    request.metadata(),
                    &slug,
                    Permission::ManageAgents,
                    Some(audit),
                )
                .await?;
            self.state.agents.delete(project.id, agent_id(&id)?).await?;
            Ok(DeleteAgentResponse {})
        })
        .await
    }

    async fn send_message(
        &self,
        request: Request<SendMessageRequest>,
    ) -> Result<Response<SendMessageResponse>, Status> {
        let client = request
            .remote_addr()
            .unwrap_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
        let message = request.get_ref();
        self.read(
            request.metadata(),
            &message.project,
            Permission::Invoke,
            async |project| {
                let content_type =
                    Some(message.content_type.as_str()).filter(|value| !value.is_empty());
                let reply = self
                    .state
                    .agents
                    .exchange(
                        &project,
                        agent_id(&message.id)?,
                        message.body.clone(),
                        content_type,
                        client,
                    )
                    .await?;
                Ok(SendMessageResponse {
                    status: u32::from(reply.status.as_u16()),
                    body: reply.body,
                    content_type: reply.content_type.unwrap_or_default(),
                })
            },
        )
        .await
    }
}
