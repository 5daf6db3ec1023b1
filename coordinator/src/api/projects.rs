//! `/v1/projects` and `/v1/projects/{p}/members`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, patch};
use axum::{Json, Router};
use nexus_store::{Project, Role, UserId};
use serde::{Deserialize, Serialize};

use super::{AppState, JsonBody};
use crate::auth::service::Caller;
use crate::error::ApiError;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/projects", get(list).post(create))
        .route(
            "/v1/projects/{project}",
            get(show).patch(update).delete(remove),
        )
        .route(
            "/v1/projects/{project}/members",
            get(members).post(add_member),
        )
        .route(
            "/v1/projects/{project}/members/{user}",
            patch(set_role).delete(remove_member),
        )
}

#[derive(Serialize)]
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

#[derive(Deserialize)]
struct NewProject {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
}

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

async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<ProjectView>, ApiError> {
    let (project, role) = state
        .projects
        .authorize(caller, &project, crate::projects::Permission::View)
        .await?;
    Ok(Json(view(project, role)))
}

#[derive(Deserialize)]
struct ProjectChange {
    display_name: String,
}

async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<ProjectChange>,
) -> Result<Json<ProjectView>, ApiError> {
    let updated = state
        .projects
        .update(caller, &project, &body.display_name)
        .await?;
    let (_, role) = state
        .projects
        .authorize(caller, &project, crate::projects::Permission::View)
        .await?;
    Ok(Json(view(updated, role)))
}

async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<StatusCode, ApiError> {
    state.projects.delete(caller, &project).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct MemberView {
    user_id: String,
    email: String,
    display_name: String,
    role: String,
}

async fn members(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<Vec<MemberView>>, ApiError> {
    let members = state.projects.members(caller, &project).await?;
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

#[derive(Deserialize)]
struct NewMember {
    email: String,
    role: String,
}

#[derive(Serialize)]
struct AddedMember {
    user_id: String,
    role: String,
}

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

#[derive(Deserialize)]
struct RoleChange {
    role: String,
}

fn member_id(user: &str) -> Result<UserId, ApiError> {
    uuid::Uuid::parse_str(user)
        .map(UserId)
        .map_err(|_| ApiError::not_found("project member"))
}

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
