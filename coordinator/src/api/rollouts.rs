//! `/v1/projects/{p}/functions/{f}/rollouts`: progressive delivery of a version behind an
//! alias, judged step by step and rolled back on a breach. Anyone in the project sees them;
//! developers and up start and cancel them.

use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use nexus_store::{ProjectId, Rollout, RolloutId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, ErrorResponse, JsonBody};
use crate::error::ApiError;
use crate::functions::LIVE;
use crate::projects::{Permission, Principal};
use crate::rollouts::RolloutRequest;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get))
        .routes(routes!(cancel))
}

/// A rollout to start; every setting but the version has a default.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewRolloutBody {
    /// The version rolled out.
    version: i64,
    /// The alias moved (default `live`).
    alias: Option<String>,
    /// The new version's share of traffic at each step, in percent: rising, the last 100
    /// (default 1, 10, 50, 100).
    #[schema(example = json!([1, 10, 50, 100]))]
    steps: Option<Vec<i32>>,
    /// How long each step holds at least, in milliseconds (default 60000).
    step_ms: Option<u64>,
    /// Calls of the new version a step needs before it is judged (default 50).
    min_requests: Option<u64>,
    /// A breach: the new version's error rate (5xx answers) above the old one's by more than
    /// this share (default 0.05).
    max_error_rate_increase: Option<f64>,
    /// A breach: the new version's p99 latency above the old one's times this, plus 10 ms
    /// (default 2).
    max_p99_ratio: Option<f64>,
}

#[derive(Serialize, ToSchema)]
struct RolloutView {
    id: String,
    function: String,
    alias: String,
    from_version: i64,
    to_version: i64,
    steps: Vec<i32>,
    /// The step it is at (from 0).
    step: usize,
    /// The new version's share of traffic now, in percent.
    weight: i32,
    step_started_at: String,
    step_ms: i64,
    min_requests: i64,
    max_error_rate_increase: f64,
    max_p99_ratio: f64,
    /// `running`, `completed`, `rolled_back` or `cancelled`.
    status: String,
    /// Why it ended, when it did not complete.
    reason: Option<String>,
    created_at: String,
    updated_at: String,
}

fn view(rollout: Rollout) -> RolloutView {
    let weight = match rollout.status {
        nexus_store::RolloutStatus::Running => rollout.weight(),
        nexus_store::RolloutStatus::Completed => 100,
        _ => 0,
    };
    RolloutView {
        id: rollout.id.to_string(),
        function: rollout.function,
        alias: rollout.spec.alias,
        from_version: rollout.spec.from_version,
        to_version: rollout.spec.to_version,
        steps: rollout.spec.steps,
        step: rollout.step,
        weight,
        step_started_at: rollout.step_started_at.to_rfc3339(),
        step_ms: rollout.spec.step_ms,
        min_requests: rollout.spec.min_requests,
        max_error_rate_increase: rollout.spec.max_error_rate_increase,
        max_p99_ratio: rollout.spec.max_p99_ratio,
        status: rollout.status.as_str().to_owned(),
        reason: rollout.reason,
        created_at: rollout.created_at.to_rfc3339(),
        updated_at: rollout.updated_at.to_rfc3339(),
    }
}

/// The rollout `id` of the project's `function`, when `principal` has `permission` there.
async fn find(
    state: &AppState,
    principal: Principal,
    permission: Permission,
    project: &str,
    function: &str,
    id: &str,
) -> Result<(ProjectId, Rollout), ApiError> {
    let (project, _) = state
        .projects
        .authorize(principal, project, permission)
        .await?;
    let id = uuid::Uuid::parse_str(id)
        .map(RolloutId)
        .map_err(|_| ApiError::not_found("rollout"))?;
    let rollout = state.rollouts.get(project.id, id).await?;
    if rollout.function != function {
        return Err(ApiError::not_found("rollout"));
    }
    Ok((project.id, rollout))
}

/// Starts rolling a version out behind an alias (developer and up): the alias keeps its
/// version and sends the new one the first step's share.
#[utoipa::path(post, path = "/v1/projects/{project}/functions/{function}/rollouts", tag = "functions", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("function" = String, Path, description = "The function name")),
    request_body = NewRolloutBody,
    responses((status = 201, body = RolloutView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, function)): Path<(String, String)>,
    JsonBody(body): JsonBody<NewRolloutBody>,
) -> Result<(StatusCode, Json<RolloutView>), ApiError> {
    let (project, _) = state
        .projects
        .authorize(principal, &project, Permission::Deploy)
        .await?;
    let request = RolloutRequest {
        alias: body.alias.unwrap_or_else(|| LIVE.to_owned()),
        version: body.version,
        steps: body.steps,
        step: body.step_ms.map(Duration::from_millis),
        min_requests: body.min_requests,
        max_error_rate_increase: body.max_error_rate_increase,
        max_p99_ratio: body.max_p99_ratio,
    };
    let rollout = state
        .rollouts
        .create(project.id, &function, request)
        .await?;
    Ok((StatusCode::CREATED, Json(view(rollout))))
}

/// The function's rollouts, newest first (any member).
#[utoipa::path(get, path = "/v1/projects/{project}/functions/{function}/rollouts", tag = "functions", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("function" = String, Path, description = "The function name")),
    responses((status = 200, body = Vec<RolloutView>), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, function)): Path<(String, String)>,
) -> Result<Json<Vec<RolloutView>>, ApiError> {
    let (project, _) = state
        .projects
        .authorize(principal, &project, Permission::View)
        .await?;
    let rollouts = state.rollouts.list(project.id, &function).await?;
    Ok(Json(rollouts.into_iter().map(view).collect()))
}

/// One rollout (any member).
#[utoipa::path(get, path = "/v1/projects/{project}/functions/{function}/rollouts/{rollout}", tag = "functions", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("function" = String, Path, description = "The function name"),
        ("rollout" = String, Path, description = "The rollout id")),
    responses((status = 200, body = RolloutView), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, function, rollout)): Path<(String, String, String)>,
) -> Result<Json<RolloutView>, ApiError> {
    let (_, rollout) = find(
        &state,
        principal,
        Permission::View,
        &project,
        &function,
        &rollout,
    )
    .await?;
    Ok(Json(view(rollout)))
}

/// Stops a running rollout (developer and up): the alias goes back to its old version.
#[utoipa::path(post, path = "/v1/projects/{project}/functions/{function}/rollouts/{rollout}/cancel", tag = "functions", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("function" = String, Path, description = "The function name"),
        ("rollout" = String, Path, description = "The rollout id")),
    responses((status = 200, body = RolloutView), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
async fn cancel(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, function, rollout)): Path<(String, String, String)>,
) -> Result<Json<RolloutView>, ApiError> {
    let (project, rollout) = find(
        &state,
        principal,
        Permission::Deploy,
        &project,
        &function,
        &rollout,
    )
    .await?;
    let rollout = state.rollouts.cancel(project, rollout.id).await?;
    Ok(Json(view(rollout)))
}
