//! `/v1/projects` and `/v1/projects/{p}/members`.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use nexus_store::{Project, Role, UserId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, ErrorResponse, JsonBody};
use crate::auth::service::Caller;
use crate::error::ApiError;
use crate::projects::Principal;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, remove))
        .routes(routes!(members, add_member))
        .routes(routes!(set_role, remove_member))
}

#[derive(Serialize, ToSchema)]
struct ProjectView {
    id: String,
    name: String,
    display_name: String,
    role: String,
    created_at: String,
}

fn view(project: Project, role: Role) -> ProjectView {
    ProjectView {
        id: project.id.to_string(),
        name: project.slug,
        display_name: project.name,
        role: role.to_string(),
        created_at: project.created_at.to_rfc3339(),
    }
}

#[derive(Deserialize, ToSchema)]
pub(super) struct NewProject {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
}

/// Creates a project; the caller becomes its owner.
#[utoipa::path(post, path = "/v1/projects", tag = "projects", security(("bearer" = [])), request_body = NewProject,
    responses((status = 201, body = ProjectView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    JsonBody(body): JsonBody<NewProject>,
) -> Result<(StatusCode, Json<ProjectView>), ApiError> {
    let display_name = body.display_name.unwrap_or_else(|| body.name.clone());
    let project = state
        .projects
        .create(caller, &body.name, &display_name)
        .await?;
    Ok((StatusCode::CREATED, Json(view(project, Role::Owner))))
}

/// The caller's projects, with the caller's role in each.
#[utoipa::path(get, path = "/v1/projects", tag = "projects", security(("bearer" = [])),
    responses((status = 200, body = [ProjectView]), (status = 401, body = ErrorResponse)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<ProjectView>>, ApiError> {
    let projects = state.projects.list(caller).await?;
    Ok(Json(
        projects
            .into_iter()
            .map(|(project, role)| view(project, role))
            .collect(),
    ))
}

/// One project (any member).
#[utoipa::path(get, path = "/v1/projects/{project}", tag = "projects", security(("bearer" = [])), params(("project" = String, Path, description = "The project name")),
    responses((status = 200, body = ProjectView), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn show(
    State(state): State<AppState>,
    principal: Principal,
    Path(project): Path<String>,
) -> Result<Json<ProjectView>, ApiError> {
    let (project, role) = state
        .projects
        .authorize(principal, &project, crate::projects::Permission::View)
        .await?;
    Ok(Json(view(project, role)))
}

#[derive(Deserialize, ToSchema)]
pub(super) struct ProjectChange {
    display_name: String,
}

/// Renames a project (owner, admin).
#[utoipa::path(patch, path = "/v1/projects/{project}", tag = "projects", security(("bearer" = [])), params(("project" = String, Path, description = "The project name")), request_body = ProjectChange,
    responses((status = 200, body = ProjectView), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn update(
    State(state): State<AppState>,
    principal: Principal,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<ProjectChange>,
) -> Result<Json<ProjectView>, ApiError> {
    let updated = state
        .projects
        .update(principal, &project, &body.display_name)
        .await?;
    let (_, role) = state
        .projects
        .authorize(principal, &project, crate::projects::Permission::View)
        .await?;
    Ok(Json(view(updated, role)))
}

/// Deletes a project (owner).
#[utoipa::path(delete, path = "/v1/projects/{project}", tag = "projects", security(("bearer" = [])), params(("project" = String, Path, description = "The project name")),
    responses((status = 204), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    Path(project): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.projects.delete(principal, &project).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
struct MemberView {
    user_id: String,
    email: String,
    display_name: String,
    role: String,
}

/// The project members (any member).
#[utoipa::path(get, path = "/v1/projects/{project}/members", tag = "projects", security(("bearer" = [])), params(("project" = String, Path, description = "The project name")),
    responses((status = 200, body = [MemberView]), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn members(
    State(state): State<AppState>,
    principal: Principal,
    Path(project): Path<String>,
) -> Result<Json<Vec<MemberView>>, ApiError> {
    let members = state.projects.members(principal, &project).await?;
    Ok(Json(
        members
            .into_iter()
            .map(|member| MemberView {
                user_id: member.user_id.to_string(),
                email: member.email,
                display_name: member.display_name,
                role: member.role.to_string(),
            })
            .collect(),
    ))
}

#[derive(Deserialize, ToSchema)]
pub(super) struct NewMember {
    email: String,
    role: String,
}

#[derive(Serialize, ToSchema)]
struct AddedMember {
    user_id: String,
    role: String,
}

/// Adds a user, by email, with a role (owner, admin; only owners grant owner).
#[utoipa::path(post, path = "/v1/projects/{project}/members", tag = "projects", security(("bearer" = [])), params(("project" = String, Path, description = "The project name")), request_body = NewMember,
    responses((status = 201, body = AddedMember), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
async fn add_member(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<NewMember>,
) -> Result<(StatusCode, Json<AddedMember>), ApiError> {
    let role: Role = body.role.parse().map_err(ApiError::from)?;
    let user = state
        .projects
        .add_member(caller, &project, &body.email, role)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(AddedMember {
            user_id: user.to_string(),
            role: role.to_string(),
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
pub(super) struct RoleChange {
    role: String,
}

fn member_id(user: &str) -> Result<UserId, ApiError> {
    uuid::Uuid::parse_str(user)
        .map(UserId)
        .map_err(|_| ApiError::not_found("project member"))
}

/// Changes a member role (owner, admin; only owners touch owners).
#[utoipa::path(patch, path = "/v1/projects/{project}/members/{user}", tag = "projects", security(("bearer" = [])), params(("project" = String, Path, description = "The project name"), ("user" = String, Path, description = "The member user id")), request_body = RoleChange,
    responses((status = 204), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
async fn set_role(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, user)): Path<(String, String)>,
    JsonBody(body): JsonBody<RoleChange>,
) -> Result<StatusCode, ApiError> {
    let role: Role = body.role.parse().map_err(ApiError::from)?;
    state
        .projects
        .set_role(caller, &project, member_id(&user)?, role)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes a member (owner, admin; only owners remove owners).
#[utoipa::path(delete, path = "/v1/projects/{project}/members/{user}", tag = "projects", security(("bearer" = [])), params(("project" = String, Path, description = "The project name"), ("user" = String, Path, description = "The member user id")),
    responses((status = 204), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
async fn remove_member(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, user)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .projects
        .remove_member(caller, &project, member_id(&user)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
