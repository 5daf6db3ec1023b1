//! `/v1/projects/{p}/agents`: create, get, list by page, suspend, resume and delete agents.
//! Anyone in the project sees them; developers and up change them.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use nexus_store::{Agent, AgentId, AgentState, ProjectId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, ErrorResponse, JsonBody};
use crate::agents::DEFAULT_PAGE;
use crate::auth::service::Caller;
use crate::error::ApiError;
use crate::projects::Permission;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, delete))
        .routes(routes!(suspend))
        .routes(routes!(resume))
}

#[derive(Deserialize, ToSchema)]
struct NewAgentBody {
    /// Unique in the project: 1 to 128 letters, digits, `-`, `_` or `.`.
    name: String,
    /// The function that runs it.
    function: String,
    /// The function's alias whose version serves it (default `live`).
    alias: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct AgentView {
    id: String,
    name: String,
    function_id: String,
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
struct PageQuery {
    after: Option<String>,
    limit: Option<u32>,
}

fn view(agent: Agent) -> AgentView {
    AgentView {
        id: agent.id.to_string(),
        name: agent.name,
        function_id: agent.function_id.to_string(),
        alias: agent.alias,
        state: agent.state.to_string(),
        created_at: agent.created_at.to_rfc3339(),
        updated_at: agent.updated_at.to_rfc3339(),
    }
}

/// The project, if the caller's role grants `permission`, and the agent id from the path.
async fn project_and_agent(
    state: &AppState,
    caller: Caller,
    project: &str,
    agent: &str,
    permission: Permission,
) -> Result<(ProjectId, AgentId), ApiError> {
    let (project, _) = state
        .projects
        .authorize(caller, project, permission)
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
    caller: Caller,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<NewAgentBody>,
) -> Result<(StatusCode, Json<AgentView>), ApiError> {
    let (project, _) = state
        .projects
        .authorize(caller, &project, Permission::ManageAgents)
        .await?;
    let agent = state
        .agents
        .create(
            project.id,
            &body.function,
            &body.name,
            body.alias.as_deref(),
        )
        .await?;
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
    caller: Caller,
    Path(project): Path<String>,
    Query(page): Query<PageQuery>,
) -> Result<Json<AgentPageView>, ApiError> {
    let (project, _) = state
        .projects
        .authorize(caller, &project, Permission::View)
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
    caller: Caller,
    Path((project, agent)): Path<(String, String)>,
) -> Result<Json<AgentView>, ApiError> {
    let (project, agent) =
        project_and_agent(&state, caller, &project, &agent, Permission::View).await?;
    Ok(Json(view(state.agents.get(project, agent).await?)))
}

/// Deletes an agent (developer and up); its name is free again.
#[utoipa::path(delete, path = "/v1/projects/{project}/agents/{agent}", tag = "agents", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("agent" = String, Path, description = "The agent id")),
    responses((status = 204), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse)))]
async fn delete(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, agent)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (project, agent) =
        project_and_agent(&state, caller, &project, &agent, Permission::ManageAgents).await?;
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
    caller: Caller,
    Path((project, agent)): Path<(String, String)>,
) -> Result<Json<AgentView>, ApiError> {
    set_state(state, caller, &project, &agent, AgentState::Suspended).await
}

/// Resumes a suspended agent (developer and up).
#[utoipa::path(post, path = "/v1/projects/{project}/agents/{agent}/resume", tag = "agents", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("agent" = String, Path, description = "The agent id")),
    responses((status = 200, body = AgentView), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse)))]
async fn resume(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, agent)): Path<(String, String)>,
) -> Result<Json<AgentView>, ApiError> {
    set_state(state, caller, &project, &agent, AgentState::Active).await
}

async fn set_state(
    state: AppState,
    caller: Caller,
    project: &str,
    agent: &str,
    to: AgentState,
) -> Result<Json<AgentView>, ApiError> {
    let (project, agent) =
        project_and_agent(&state, caller, project, agent, Permission::ManageAgents).await?;
    Ok(Json(view(
        state.agents.set_state(project, agent, to).await?,
    )))
}
