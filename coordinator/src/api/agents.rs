//! `/v1/projects/{p}/agents`: create, get, list by page, suspend, resume and delete agents.
//! Anyone in the project sees them; developers and up change them.

use axum::Json;
use std::collections::BTreeMap;

use axum::extract::{Path, Query, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::Response;
use nexus_store::{Agent, AgentId, AgentState, ProjectId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, ErrorResponse, JsonBody};
use crate::agents::DEFAULT_PAGE;
use crate::audit::AuditSlot;
use crate::error::ApiError;
use crate::projects::{Access, Permission, Principal};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, delete))
        .routes(routes!(suspend))
        .routes(routes!(resume))
        .routes(routes!(send_message))
        .merge(super::agent_context::routes())
}

/// The route of messages: invocations, which the audit log does not record.
pub(crate) const MESSAGES_ROUTE: &str = "/v1/projects/{project}/agents/{agent}/messages";

#[derive(Deserialize, ToSchema)]
pub(super) struct NewAgentBody {
    /// Unique in the project: 1 to 128 letters, digits, `-`, `_` or `.`.
    name: String,
    /// The function that runs it.
    function: String,
    /// The function's alias whose version serves it (default `live`).
    alias: Option<String>,
    /// Initial context: keys and (UTF-8) values of the agent's `default` key-value store.
    #[serde(default)]
    context: BTreeMap<String, String>,
}

#[derive(Serialize, ToSchema)]
struct AgentView {
    id: String,
    name: String,
    function_id: String,
    /// The function's name.
    function: String,
    alias: String,
    /// `active`, `idle` or `suspended`.
    state: String,
    created_at: String,
    updated_at: String,
}

#[derive(Serialize, ToSchema)]
struct AgentPageView {
    /// In name order.
    agents: Vec<AgentView>,
    /// Pass as `after` for the next page; absent on the last one.
    next: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct MessageQuery {
    path: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct PageQuery {
    after: Option<String>,
    limit: Option<u32>,
}

fn view(agent: Agent) -> AgentView {
    AgentView {
        id: agent.id.to_string(),
        name: agent.name,
        function_id: agent.function_id.to_string(),
        function: agent.function,
        alias: agent.alias,
        state: agent.state.to_string(),
        created_at: agent.created_at.to_rfc3339(),
        updated_at: agent.updated_at.to_rfc3339(),
    }
}

/// The project, if the caller's role grants `permission`, and the agent id from the path.
pub(super) async fn project_and_agent(
    state: &AppState,
    principal: Principal,
    project: &str,
    agent: &str,
    permission: Permission,
) -> Result<(ProjectId, AgentId), ApiError> {
    let (project, _) = state
        .projects
        .authorize(principal, project, permission)
        .await?;
    let agent = uuid::Uuid::parse_str(agent)
        .map(AgentId)
        .map_err(|_| ApiError::not_found("agent"))?;
    Ok((project.id, agent))
}

/// Creates an agent of a function alias (developer and up).
#[utoipa::path(post, path = "/v1/projects/{project}/agents", tag = "agents", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name")), request_body = NewAgentBody,
    responses((status = 201, body = AgentView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    audit: Option<AuditSlot>,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<NewAgentBody>,
) -> Result<(StatusCode, Json<AgentView>), ApiError> {
    let access = Access {
        principal,
        project: &project,
        permission: Permission::ManageAgents,
        audit: audit.as_ref().map(AuditSlot::entry_on_success),
    };
    let (_, agent) = state
        .agents
        .create(
            access,
            &body.function,
            &body.name,
            body.alias.as_deref(),
            &body
                .context
                .into_iter()
                .map(|(key, value)| (key, value.into_bytes()))
                .collect(),
        )
        .await?;
    if let Some(audit) = audit {
        audit.mark_recorded();
    }
    Ok((StatusCode::CREATED, Json(view(agent))))
}

/// The project's agents, a page at a time in name order (any member).
#[utoipa::path(get, path = "/v1/projects/{project}/agents", tag = "agents", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"),
        ("after" = Option<String>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<u32>, Query, description = "Agents per page, 1 to 500 (default 50)")),
    responses((status = 200, body = AgentPageView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 404, body = ErrorResponse)))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(project): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<AgentPageView>, ApiError> {
    let (project, _) = state
        .projects
        .authorize(principal, &project, Permission::View)
        .await?;
    let page = state
        .agents
        .list(
            project.id,
            page.after.as_deref(),
            page.limit.unwrap_or(DEFAULT_PAGE),
        )
        .await?;
    Ok(Json(AgentPageView {
        agents: page.agents.into_iter().map(view).collect(),
        next: page.next,
    }))
}

/// One agent (any member).
#[utoipa::path(get, path = "/v1/projects/{project}/agents/{agent}", tag = "agents", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("agent" = String, Path, description = "The agent id")),
    responses((status = 200, body = AgentView), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, agent)): Path<(String, String)>,
) -> Result<Json<AgentView>, ApiError> {
    let (project, agent) =
        project_and_agent(&state, principal, &project, &agent, Permission::View).await?;
    Ok(Json(view(state.agents.get(project, agent).await?)))
}

/// Deletes an agent (developer and up); its name is free again.
#[utoipa::path(delete, path = "/v1/projects/{project}/agents/{agent}", tag = "agents", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("agent" = String, Path, description = "The agent id")),
    responses((status = 204), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse)))]
async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, agent)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (project, agent) = project_and_agent(
        &state,
        principal,
        &project,
        &agent,
        Permission::ManageAgents,
    )
    .await?;
    state.agents.delete(project, agent).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Suspends an agent (developer and up): it keeps its context and runs nothing until resumed.
#[utoipa::path(post, path = "/v1/projects/{project}/agents/{agent}/suspend", tag = "agents", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("agent" = String, Path, description = "The agent id")),
    responses((status = 200, body = AgentView), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse)))]
async fn suspend(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, agent)): Path<(String, String)>,
) -> Result<Json<AgentView>, ApiError> {
    set_state(state, principal, &project, &agent, AgentState::Suspended).await
}

/// Resumes a suspended agent (developer and up).
#[utoipa::path(post, path = "/v1/projects/{project}/agents/{agent}/resume", tag = "agents", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("agent" = String, Path, description = "The agent id")),
    responses((status = 200, body = AgentView), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse)))]
async fn resume(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, agent)): Path<(String, String)>,
) -> Result<Json<AgentView>, ApiError> {
    set_state(state, principal, &project, &agent, AgentState::Active).await
}

async fn set_state(
    state: AppState,
    principal: Principal,
    project: &str,
    agent: &str,
    to: AgentState,
) -> Result<Json<AgentView>, ApiError> {
    let (project, agent) =
        project_and_agent(&state, principal, project, agent, Permission::ManageAgents).await?;
    Ok(Json(view(
        state.agents.set_state(project, agent, to).await?,
    )))
}

/// Sends a message to an agent (developer and up). The agent's function alias runs with the
/// agent's own key-value stores, after every earlier message to the agent has finished, and
/// sees a `POST` of the message to `path` (default `/`) with its `content-type`. The answer is
/// the function's response, with the version that served it in `nexus-version`.
#[utoipa::path(post, path = "/v1/projects/{project}/agents/{agent}/messages", tag = "agents", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("agent" = String, Path, description = "The agent id"),
        ("path" = Option<String>, Query, description = "The path and query the function sees (default `/`)")),
    request_body(content = Vec<u8>, description = "The message: the body of the function's request", content_type = "application/octet-stream"),
    responses((status = 200, description = "The function's response, whatever its status"), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 409, body = ErrorResponse), (status = 429, body = ErrorResponse)))]
async fn send_message(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, agent)): Path<(String, String)>,
    Query(query): Query<MessageQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let (project, _) = state
        .projects
        .authorize(principal, &project, Permission::Invoke)
        .await?;
    let agent = uuid::Uuid::parse_str(&agent)
        .map(AgentId)
        .map_err(|_| ApiError::not_found("agent"))?;
    let path = query.path.unwrap_or_else(|| "/".to_owned());
    let uri = match path.parse::<Uri>() {
        Ok(uri) if path.starts_with('/') && uri.authority().is_none() => uri,
        _ => {
            return Err(ApiError::bad_request(format!(
                "path must be a path and query starting with '/': {path:?}"
            )));
        }
    };
    let client = super::invocations::client_of(&request);
    let respond_async = super::invocations::wants_async(request.headers());
    let (parts, body) = request.into_parts();
    // Only what describes the message: the caller's credentials are not the function's.
    let mut message = Request::new(body);
    *message.method_mut() = Method::POST;
    *message.uri_mut() = uri;
    for name in [
        header::HOST,
        header::CONTENT_TYPE,
        header::CONTENT_LENGTH,
        header::ACCEPT,
        super::invocations::IDEMPOTENCY_KEY,
    ] {
        if let Some(value) = parts.headers.get(&name) {
            message.headers_mut().insert(name, value.clone());
        }
    }
    if respond_async {
        let (resolution, target) = state.agents.resolve(&project, agent).await?;
        return super::invocations::accept(
            &state,
            &resolution,
            &target,
            message,
            String::new(),
            client,
            Some(agent),
        )
        .await;
    }
    state.agents.send(&project, agent, message, client).await
}
