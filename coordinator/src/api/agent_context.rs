//! `/v1/projects/{p}/agents/{agent}/context`: an agent's key-value stores over HTTP. Values
//! are raw bytes; `ETag` identifies a value, `If-Match` / `If-None-Match: *` make a write a
//! compare-and-swap, `?ttl_ms=` makes it expire. Members read; developers and up write.

use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::agents::project_and_agent;
use super::{AppState, ErrorResponse};
use crate::agents::context::{AgentStore, Condition, DEFAULT_STORE};
use crate::error::ApiError;
use crate::projects::{Permission, Principal};

/// How long the key has left to live, in milliseconds; absent for a persistent key.
pub const TTL_HEADER: HeaderName = HeaderName::from_static("nexus-ttl-ms");

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_keys))
        .routes(routes!(get_value, put_value, delete_value))
}

#[derive(Deserialize)]
pub(super) struct StoreQuery {
    store: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct PutQuery {
    store: Option<String>,
    ttl_ms: Option<u64>,
}

#[derive(Serialize, ToSchema)]
struct KeysView {
    /// Sorted.
    keys: Vec<String>,
}

/// The agent's store the request names, if the caller's role grants `permission`.
async fn agent_store<'a>(
    state: &AppState,
    principal: Principal,
    (project, agent): (&str, &str),
    label: Option<&'a str>,
    permission: Permission,
) -> Result<AgentStore<'a>, ApiError> {
    let (project, agent) = project_and_agent(state, principal, project, agent, permission).await?;
    Ok(AgentStore {
        project,
        agent,
        label: label.unwrap_or(DEFAULT_STORE),
    })
}

fn quoted(etag: &str) -> HeaderValue {
    // Hex digits only: always a valid header value.
    HeaderValue::from_str(&format!("\"{etag}\"")).unwrap_or(HeaderValue::from_static("\"\""))
}

/// The write's condition from `If-Match` / `If-None-Match`.
pub(super) fn condition(headers: &HeaderMap) -> Result<Condition, ApiError> {
    let text = |name: &HeaderName| {
        headers
            .get(name)
            .map(|value| {
                value
                    .to_str()
                    .map(str::trim)
                    .map_err(|_| ApiError::bad_request(format!("{name} is not text")))
            })
            .transpose()
    };
    match (text(&header::IF_MATCH)?, text(&header::IF_NONE_MATCH)?) {
        (None, None) => Ok(Condition::None),
        (None, Some("*")) => Ok(Condition::Absent),
        (Some(etag), None) if etag.len() > 2 && etag.starts_with('"') && etag.ends_with('"') => {
            Ok(Condition::Matches(etag[1..etag.len() - 1].to_owned()))
        }
        _ => Err(ApiError::bad_request(
            "use either If-Match with one quoted etag or If-None-Match: *",
        )),
    }
}

/// The keys of one of the agent's stores (any member).
#[utoipa::path(get, path = "/v1/projects/{project}/agents/{agent}/context", tag = "agents", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("agent" = String, Path, description = "The agent id"),
        ("store" = Option<String>, Query, description = "The store label (default `default`)")),
    responses((status = 200, body = KeysView), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 503, body = ErrorResponse)))]
async fn list_keys(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, agent)): Path<(String, String)>,
    Query(query): Query<StoreQuery>,
) -> Result<Json<KeysView>, ApiError> {
    let store = agent_store(
        &state,
        principal,
        (&project, &agent),
        query.store.as_deref(),
        Permission::View,
    )
    .await?;
    Ok(Json(KeysView {
        keys: state.agents.context_keys(store).await?,
    }))
}

/// One value of one of the agent's stores, as bytes, with its `ETag` (any member).
#[utoipa::path(get, path = "/v1/projects/{project}/agents/{agent}/context/{key}", tag = "agents", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("agent" = String, Path, description = "The agent id"),
        ("key" = String, Path, description = "The key"), ("store" = Option<String>, Query, description = "The store label (default `default`)")),
    responses((status = 200, description = "The value", content_type = "application/octet-stream"), (status = 401, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
async fn get_value(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, agent, key)): Path<(String, String, String)>,
    Query(query): Query<StoreQuery>,
) -> Result<Response, ApiError> {
    let store = agent_store(
        &state,
        principal,
        (&project, &agent),
        query.store.as_deref(),
        Permission::View,
    )
    .await?;
    let found = state.agents.context_get(store, &key).await?;
    let mut response = Body::from(found.value).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::ETAG, quoted(&found.etag));
    if let Some(left) = found.expires_in {
        let millis = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
        headers.insert(TTL_HEADER, HeaderValue::from(millis));
    }
    Ok(response)
}

/// Writes one value (developer and up): the body is the value (up to 1 MiB). `If-Match:
/// "<etag>"` writes only over that value, `If-None-Match: *` only a new key (412 otherwise);
/// `ttl_ms` makes an unconditional write expire.
#[utoipa::path(put, path = "/v1/projects/{project}/agents/{agent}/context/{key}", tag = "agents", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("agent" = String, Path, description = "The agent id"),
        ("key" = String, Path, description = "The key"), ("store" = Option<String>, Query, description = "The store label (default `default`)"),
        ("ttl_ms" = Option<u64>, Query, description = "Expire after this many milliseconds")),
    request_body(content = Vec<u8>, description = "The value", content_type = "application/octet-stream"),
    responses((status = 204, description = "Written; `ETag` is the new value's"), (status = 400, body = ErrorResponse),
        (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse),
        (status = 412, body = ErrorResponse), (status = 413, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
async fn put_value(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, agent, key)): Path<(String, String, String)>,
    Query(query): Query<PutQuery>,
    request: Request,
) -> Result<Response, ApiError> {
    let store = agent_store(
        &state,
        principal,
        (&project, &agent),
        query.store.as_deref(),
        Permission::ManageAgents,
    )
    .await?;
    let condition = condition(request.headers())?;
    let value: Bytes = axum::body::to_bytes(request.into_body(), nexus_context::MAX_VALUE_BYTES)
        .await
        .map_err(|_| {
            ApiError::too_large(format!(
                "a value is at most {} bytes",
                nexus_context::MAX_VALUE_BYTES
            ))
        })?;
    let ttl = query.ttl_ms.map(Duration::from_millis);
    let etag = state
        .agents
        .context_put(store, &key, &value, ttl, condition)
        .await?;
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::ETAG, quoted(&etag));
    Ok(response)
}

/// Deletes one value (developer and up).
#[utoipa::path(delete, path = "/v1/projects/{project}/agents/{agent}/context/{key}", tag = "agents", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("agent" = String, Path, description = "The agent id"),
        ("key" = String, Path, description = "The key"), ("store" = Option<String>, Query, description = "The store label (default `default`)")),
    responses((status = 204), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 503, body = ErrorResponse)))]
async fn delete_value(
    State(state): State<AppState>,
    principal: Principal,
    Path((project, agent, key)): Path<(String, String, String)>,
    Query(query): Query<StoreQuery>,
) -> Result<StatusCode, ApiError> {
    let store = agent_store(
        &state,
        principal,
        (&project, &agent),
        query.store.as_deref(),
        Permission::ManageAgents,
    )
    .await?;
    state.agents.context_delete(store, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}
