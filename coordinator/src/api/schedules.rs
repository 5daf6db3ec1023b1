//! `/v1/projects/{p}/schedules`: a function alias or an agent invoked asynchronously on a cron
//! expression or once. Anyone in the project sees them; developers and up change them.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, TimeDelta, Utc};
use nexus_store::{AgentId, Schedule, ScheduleId};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, ErrorResponse, JsonBody};
use crate::error::ApiError;
use crate::functions::LIVE;
use crate::projects::{Permission, Principal};
use crate::schedules::{ScheduleRequest, When, method};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(get, delete))
}

/// The longest delay of a one-shot: a year.
const MAX_DELAY_MS: u64 = 366 * 24 * 60 * 60 * 1000;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct NewScheduleBody {
    /// Unique in the project: 1 to 128 letters, digits, `-`, `_` or `.`.
    name: String,
    /// The function.
    function: String,
    /// Its alias (default `live`); the version is picked at each firing.
    alias: Option<String>,
    /// An agent of the project: each firing is a message to it.
    agent: Option<String>,
    /// Fire at every tick of this cron expression (UTC; five fields, or six with seconds
    /// first).
    #[schema(example = "*/5 * * * *")]
    cron: Option<String>,
    /// Fire once, this many milliseconds from now.
    after_ms: Option<u64>,
    /// Fire once, at this time (RFC 3339).
    at: Option<String>,
    /// The method the function sees (default `POST`).
    pub(super) method: Option<String>,
    /// The path and query the function sees (default `/`).
    path: Option<String>,
    /// The body the function sees (text).
    body: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct ScheduleView {
    id: String,
    name: String,
    function: String,
    alias: String,
    agent: Option<String>,
    /// The cron expression; absent for a one-shot.
    cron: Option<String>,
    method: String,
    path: String,
    /// The next tick; absent once a one-shot has fired.
    next_fire_at: Option<String>,
    last_fired_at: Option<String>,
    /// Ticks fired so far.
    fired: i32,
    created_at: String,
}

fn view(schedule: Schedule) -> ScheduleView {
    ScheduleView {
        id: schedule.id.to_string(),
        name: schedule.name,
        function: schedule.function,
        alias: schedule.alias,
        agent: schedule.agent_id.map(|agent| agent.to_string()),
        cron: schedule.cron,
        method: schedule.method,
        path: schedule.path,
        next_fire_at: schedule.next_fire_at.map(|at| at.to_rfc3339()),
        last_fired_at: schedule.last_fired_at.map(|at| at.to_rfc3339()),
        fired: schedule.fired,
        created_at: schedule.created_at.to_rfc3339(),
    }
}

pub(super) fn when(body: &NewScheduleBody) -> Result<When, ApiError> {
    match (&body.cron, body.after_ms, &body.at) {
        (Some(cron), None, None) => Ok(When::Cron(cron.clone())),
        (None, Some(after_ms), None) if after_ms <= MAX_DELAY_MS => {
            let delay = TimeDelta::milliseconds(i64::try_from(after_ms).unwrap_or(i64::MAX));
            Ok(When::At(Utc::now() + delay))
        }
        (None, Some(_), None) => Err(ApiError::bad_request(format!(
            "after_ms is at most {MAX_DELAY_MS} (a year)"
        ))),
        (None, None, Some(at)) => DateTime::parse_from_rfc3339(at)
            .map(|at| When::At(at.with_timezone(&Utc)))
            .map_err(|error| ApiError::bad_request(format!("at is not an RFC 3339 time: {error}"))),
        _ => Err(ApiError::bad_request(
            "give exactly one of cron, after_ms and at",
        )),
    }
}

fn schedule_id(id: &str) -> Result<ScheduleId, ApiError> {
    uuid::Uuid::parse_str(id)
        .map(ScheduleId)
        .map_err(|_| ApiError::not_found("schedule"))
}

/// Creates a schedule (developer and up).
#[utoipa::path(post, path = "/v1/projects/{project}/schedules", tag = "schedules", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name")), request_body = NewScheduleBody,
    responses((status = 201, body = ScheduleView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
async fn create(
    State(state): State<AppState>,
    principal: Principal,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<NewScheduleBody>,
) -> Result<(StatusCode, Json<ScheduleView>), ApiError> {
    let (project, _) = state
        .projects
        .authorize(principal, &project, Permission::Deploy)
        .await?;
    let agent = body
        .agent
        .as_deref()
        .map(|agent| {
            uuid::Uuid::parse_str(agent)
                .map(AgentId)
                .map_err(|_| ApiError::not_found("agent"))
        })
        .transpose()?;
    let request = ScheduleRequest {
        when: when(&body)?,
        method: method(body.method.as_deref())?,
        name: body.name,
        function: body.function,
        alias: body.alias.unwrap_or_else(|| LIVE.to_owned()),
        agent,
        path: body.path.unwrap_or_else(|| "/".to_owned()),
        body: body.body.unwrap_or_default().into_bytes(),
    };
    let schedule = state.schedules.create(project.id, request).await?;
    Ok((StatusCode::CREATED, Json(view(schedule))))
}

/// The project's schedules, in name order (any member).
#[utoipa::path(get, path = "/v1/projects/{project}/schedules", tag = "schedules", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name")),
    responses((status = 200, body = Vec<ScheduleView>), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(project): Path<String>,
) -> Result<Json<Vec<ScheduleView>>, ApiError> {
    let (project, _) = state
        .projects
        .authorize(principal, &project, Permission::View)
        .await?;
    let schedules = state.schedules.list(project.id).await?;
    Ok(Json(schedules.into_iter().map(view).collect()))
}

/// One schedule (any member).
#[utoipa::path(get, path = "/v1/projects/{project}/schedules/{schedule}", tag = "schedules", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("schedule" = String, Path, description = "The schedule id")),
    responses((status = 200, body = ScheduleView), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, schedule)): Path<(String, String)>,
) -> Result<Json<ScheduleView>, ApiError> {
    let (project, _) = state
        .projects
        .authorize(principal, &project, Permission::View)
        .await?;
    let schedule = state
        .schedules
        .get(project.id, schedule_id(&schedule)?)
        .await?;
    Ok(Json(view(schedule)))
}

/// Deletes a schedule (developer and up); it fires no more.
#[utoipa::path(delete, path = "/v1/projects/{project}/schedules/{schedule}", tag = "schedules", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("schedule" = String, Path, description = "The schedule id")),
    responses((status = 204), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn delete(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, schedule)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let (project, _) = state
        .projects
        .authorize(principal, &project, Permission::Deploy)
        .await?;
    state
        .schedules
        .delete(project.id, schedule_id(&schedule)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
