//! `/v1/projects/{p}/api-keys`: keys for machines, managed by the project's owners and admins.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use nexus_store::{ApiKey, ApiKeyId, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, ErrorResponse, JsonBody};
use crate::auth::service::Caller;
use crate::error::ApiError;
use crate::projects::Permission;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

#[derive(Deserialize, ToSchema)]
pub(super) struct NewKey {
    /// A label, e.g. the machine that uses it.
    name: String,
    /// `admin`, `developer` or `viewer`.
    role: String,
}

#[derive(Serialize, ToSchema)]
struct KeyView {
    id: String,
    name: String,
    /// The first characters of the key, to recognise it.
    prefix: String,
    role: String,
    created_at: String,
    last_used_at: Option<String>,
    revoked: bool,
}

#[derive(Serialize, ToSchema)]
struct CreatedKeyView {
    #[serde(flatten)]
    key: KeyView,
    /// The key itself, shown this once: send it as `Authorization: Bearer <key>`.
    secret: String,
}

fn view(key: ApiKey) -> KeyView {
    KeyView {
        id: key.id.to_string(),
        name: key.name,
        prefix: key.prefix,
        role: key.role.to_string(),
        created_at: key.created_at.to_rfc3339(),
        last_used_at: key.last_used_at.map(|at| at.to_rfc3339()),
        revoked: key.revoked_at.is_some(),
    }
}

/// Creates an API key (owner, admin). The secret is in this answer only.
#[utoipa::path(post, path = "/v1/projects/{project}/api-keys", tag = "api-keys", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name")), request_body = NewKey,
    responses((status = 201, body = CreatedKeyView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn create(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<NewKey>,
) -> Result<(StatusCode, Json<CreatedKeyView>), ApiError> {
    let (project, _) = state
        .projects
        .authorize(caller, &project, Permission::ManageApiKeys)
        .await?;
    let role: Role = body.role.parse().map_err(ApiError::from)?;
    let created = state
        .api_keys
        .create(project.id, &body.name, role, Some(caller.user))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedKeyView {
            key: view(created.key),
            secret: created.secret,
        }),
    ))
}

/// The project's API keys, without their secrets (owner, admin).
#[utoipa::path(get, path = "/v1/projects/{project}/api-keys", tag = "api-keys", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name")),
    responses((status = 200, body = [KeyView]), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<Vec<KeyView>>, ApiError> {
    let (project, _) = state
        .projects
        .authorize(caller, &project, Permission::ManageApiKeys)
        .await?;
    let keys = state.api_keys.list(project.id).await?;
    Ok(Json(keys.into_iter().map(view).collect()))
}

/// Revokes an API key (owner, admin); it authenticates nothing from the next request on.
#[utoipa::path(delete, path = "/v1/projects/{project}/api-keys/{key}", tag = "api-keys", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("key" = String, Path, description = "The key id")),
    responses((status = 204), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse)))]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (project, _) = state
        .projects
        .authorize(caller, &project, Permission::ManageApiKeys)
        .await?;
    let key = uuid::Uuid::parse_str(&key)
        .map(ApiKeyId)
        .map_err(|_| ApiError::not_found("API key"))?;
    state.api_keys.revoke(project.id, key).await?;
    Ok(StatusCode::NO_CONTENT)
}
