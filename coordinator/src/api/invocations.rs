//! Invocations through the API: `POST /v1/projects/{p}/invocations` (sync, or async with
//! `"mode":"async"`), the project's invocations and dead letters (list, redrive, purge), and
//! `GET /v1/invocations/{id}`. Also the accept path that `Prefer: respond-async` takes on the
//! trigger and on agent messages.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use nexus_store::{
    AgentId, Attempt, InvocationId, InvocationRecord, InvocationStatus, NewInvocation,
    StoredRequest,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, ErrorResponse, JsonBody};
use crate::dispatch::Target;
use crate::error::ApiError;
use crate::functions::LIVE;
use crate::invocations::{DEFAULT_PAGE, MAX_REQUEST_BYTES, decode_headers, encode_headers};
use crate::projects::{Permission, Principal};
use crate::trigger::{Resolution, VERSION_HEADER};

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(invoke, list))
        .routes(routes!(get))
        .routes(routes!(redrive))
        .routes(routes!(purge))
        // A body of up to MAX_REQUEST_BYTES, base64-encoded, in JSON.
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES / 3 * 4 + 64 * 1024))
}

/// The route of invocations, which the audit log does not record.
pub(crate) const INVOKE_ROUTE: &str = "/v1/projects/{project}/invocations";

/// The header that names an idempotency key.
pub(crate) const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// The longest idempotency key.
const MAX_KEY_CHARS: usize = 255;

#[derive(Deserialize, ToSchema, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub(super) enum Mode {
    /// Run now and answer with the function's response.
    #[default]
    Sync,
    /// Answer `202` with the invocation's id once it is recorded; run it later.
    Async,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct InvokeBody {
    /// The function.
    function: String,
    /// Its alias (default `live`).
    alias: Option<String>,
    /// `sync` (default) or `async`.
    #[serde(default)]
    mode: Mode,
    /// The method the function sees (default `POST`).
    method: Option<String>,
    /// The path and query the function sees (default `/`).
    path: Option<String>,
    /// Headers the function sees.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// The body, as text.
    body: Option<String>,
    /// The body, base64-encoded (instead of `body`).
    body_base64: Option<String>,
    /// For `async`: the same key in the project within 24 hours names the first invocation.
    pub(super) idempotency_key: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct AcceptedView {
    /// The invocation's id.
    id: String,
    /// `queued`, or where the first invocation with the same idempotency key stands.
    status: String,
    /// Where to follow it.
    url: String,
}

#[derive(Serialize, ToSchema)]
struct AttemptView {
    attempt: i32,
    /// Where it ran.
    node: Option<String>,
    /// `running`, `succeeded`, `failed` (the function's 4xx), `error` or `lost` (its
    /// coordinator stopped renewing its lease).
    status: String,
    /// The function's HTTP status, when it answered.
    http_status: Option<i32>,
    error: Option<String>,
    started_at: String,
    finished_at: Option<String>,
    duration_ms: Option<i64>,
    /// What the guest wrote to stdout (capped by its runtime), when it wrote anything.
    #[serde(skip_serializing_if = "Option::is_none")]
    stdout: Option<String>,
    /// What the guest wrote to stderr.
    #[serde(skip_serializing_if = "Option::is_none")]
    stderr: Option<String>,
    /// Whether its runtime cut either at the cap.
    output_truncated: bool,
}

#[derive(Serialize, ToSchema)]
struct ResultView {
    /// The function's HTTP status.
    status: i32,
    headers: BTreeMap<String, String>,
    /// The body as text, when it is UTF-8.
    body: Option<String>,
    /// The body base64-encoded, when it is not UTF-8.
    body_base64: Option<String>,
    /// The whole body's size; the body kept is cut at 1 MiB.
    size: i64,
    truncated: bool,
}

#[derive(Serialize, ToSchema)]
struct InvocationView {
    id: String,
    project_id: String,
    function: String,
    version: i64,
    agent: Option<String>,
    /// `queued`, `running`, `succeeded`, `failed` or `dead`.
    status: String,
    idempotency_key: Option<String>,
    attempts: i32,
    max_attempts: i32,
    /// When the next attempt may start (queued) or started.
    run_at: String,
    /// No attempt starts after this.
    expires_at: String,
    /// Why the latest attempt failed.
    error: Option<String>,
    created_at: String,
    updated_at: String,
    finished_at: Option<String>,
    /// Each attempt, first first (only on `GET /v1/invocations/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt_log: Option<Vec<AttemptView>>,
    /// The latest answer of the function (only on `GET /v1/invocations/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<ResultView>,
}

#[derive(Serialize, ToSchema)]
struct InvocationPageView {
    /// Newest first.
    invocations: Vec<InvocationView>,
    /// Pass as `before` for the next page; absent on the last one.
    next: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct ListQuery {
    status: Option<String>,
    function: Option<String>,
    before: Option<String>,
    limit: Option<u32>,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct DeadLettersBody {
    /// Only this function's.
    function: Option<String>,
    /// Only these ids (default: all, up to 1,000 at a time).
    pub(super) ids: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
struct RedrivenView {
    /// The invocations queued again.
    redriven: Vec<String>,
}

#[derive(Serialize, ToSchema)]
struct PurgedView {
    /// How many dead invocations were deleted.
    purged: u64,
}

pub(crate) use nexus_proto::wire::prefers_respond_async as wants_async;

/// The client's idempotency key, checked.
pub(super) fn idempotency_key(given: Option<&str>) -> Result<Option<String>, ApiError> {
    match given {
        None => Ok(None),
        Some(key) if !key.is_empty() && key.chars().count() <= MAX_KEY_CHARS => {
            Ok(Some(key.to_owned()))
        }
        Some(_) => Err(ApiError::bad_request(format!(
            "an idempotency key has 1 to {MAX_KEY_CHARS} characters"
        ))),
    }
}

/// Records `request` as an asynchronous invocation of `target` (resolved by `resolution`),
/// mounted under `prefix`, for `agent` when given, and answers `202` once it is committed.
pub(crate) async fn accept(
    state: &AppState,
    resolution: &Resolution,
    target: &Target,
    request: Request<Body>,
    prefix: String,
    client: SocketAddr,
    agent: Option<AgentId>,
) -> Result<Response, ApiError> {
    let (mut parts, body) = request.into_parts();
    // Its attempts continue the trace of the span accepting it (the trigger's).
    nexus_telemetry::trace::inject(&tracing::Span::current(), &mut parts.headers);
    let key = idempotency_key(
        parts
            .headers
            .get(IDEMPOTENCY_KEY)
            .map(|value| {
                value
                    .to_str()
                    .map_err(|_| ApiError::bad_request("the idempotency key is not text"))
            })
            .transpose()?,
    )?;
    let body = http_body_util::Limited::new(body, MAX_REQUEST_BYTES)
        .collect()
        .await
        .map_err(|_| {
            ApiError::too_large(format!(
                "an asynchronous invocation's body is at most {MAX_REQUEST_BYTES} bytes"
            ))
        })?
        .to_bytes();
    let new = NewInvocation {
        id: InvocationId::new(),
        project_id: target.project_id,
        function_id: resolution.function_id(),
        version: target.version,
        agent_id: agent,
        idempotency_key: key,
        retry: resolution.async_retry(),
        request: StoredRequest {
            method: parts.method.to_string(),
            uri: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), ToString::to_string),
            prefix,
            headers: encode_headers(&parts.headers),
            body: body.to_vec(),
            client: client.to_string(),
        },
    };
    let enqueued = state
        .invocations
        .accept(new, target.function.clone())
        .await?;
    let url = format!("/v1/invocations/{}", enqueued.id);
    let mut response = (
        StatusCode::ACCEPTED,
        Json(AcceptedView {
            id: enqueued.id.to_string(),
            status: enqueued.status.to_string(),
            url: url.clone(),
        }),
    )
        .into_response();
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(&url) {
        headers.insert(header::LOCATION, location);
    }
    headers.insert(
        HeaderName::from_static("preference-applied"),
        HeaderValue::from_static("respond-async"),
    );
    headers.insert(VERSION_HEADER, HeaderValue::from(target.version));
    if !enqueued.created {
        headers.insert(
            HeaderName::from_static("nexus-idempotent-replay"),
            HeaderValue::from_static("true"),
        );
    }
    Ok(response)
}

/// Invokes a function (developer and up): `sync` answers with the function's response (and
/// its version in `nexus-version`); `async` answers `202` with the invocation's id once it is
/// recorded, and runs it with retries.
#[utoipa::path(post, path = "/v1/projects/{project}/invocations", tag = "invocations", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name")), request_body = InvokeBody,
    responses((status = 200, description = "sync: the function's response, whatever its status"),
        (status = 202, body = AcceptedView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 413, body = ErrorResponse)))]
async fn invoke(
    State(state): State<AppState>,
    principal: Principal,
    Path(project): Path<String>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    request_headers: HeaderMap,
    JsonBody(body): JsonBody<InvokeBody>,
) -> Result<Response, ApiError> {
    let (project, _) = state
        .projects
        .authorize(principal, &project, Permission::Invoke)
        .await?;
    let alias = body.alias.as_deref().unwrap_or(LIVE);
    let resolution = state
        .triggers
        .resolve(&project.slug, &body.function, alias)
        .await?
        .ok_or_else(|| ApiError::not_found("function"))?;
    let target = Arc::clone(resolution.pick());
    let mut request = function_request(&body, &request_headers)?;
    let respond_async = body.mode == Mode::Async;
    if respond_async && let Some(key) = idempotency_key(body.idempotency_key.as_deref())? {
        let key = HeaderValue::from_str(&key)
            .map_err(|_| ApiError::bad_request("the idempotency key is not a header value"))?;
        request.headers_mut().insert(IDEMPOTENCY_KEY, key);
    }
    crate::trigger::run_version(
        &state,
        &resolution,
        target,
        request,
        String::new(),
        client,
        respond_async,
    )
    .await
}

/// The request the function sees, from the body's method, path, headers and body. Its host
/// is the API's, unless the caller names one.
pub(super) fn function_request(
    body: &InvokeBody,
    api_headers: &HeaderMap,
) -> Result<Request<Body>, ApiError> {
    let method = match &body.method {
        Some(method) => Method::from_bytes(method.as_bytes())
            .map_err(|_| ApiError::bad_request(format!("not an HTTP method: {method:?}")))?,
        None => Method::POST,
    };
    let path = body.path.as_deref().unwrap_or("/");
    let uri = match path.parse::<Uri>() {
        Ok(uri) if path.starts_with('/') && uri.authority().is_none() => uri,
        _ => {
            return Err(ApiError::bad_request(format!(
                "path must be a path and query starting with '/': {path:?}"
            )));
        }
    };
    let bytes = match (&body.body, &body.body_base64) {
        (Some(_), Some(_)) => {
            return Err(ApiError::bad_request("give body or body_base64, not both"));
        }
        (Some(text), None) => text.clone().into_bytes(),
        (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|error| ApiError::bad_request(format!("body_base64: {error}")))?,
        (None, None) => Vec::new(),
    };
    if bytes.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::too_large(format!(
            "an invocation's body is at most {MAX_REQUEST_BYTES} bytes"
        )));
    }
    let mut request = Request::new(Body::from(bytes));
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    for (name, value) in &body.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| ApiError::bad_request(format!("not a header name: {name:?}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| ApiError::bad_request(format!("not a header value for {name}")))?;
        request.headers_mut().append(name, value);
    }
    if !request.headers().contains_key(header::HOST)
        && let Some(host) = api_headers.get(header::HOST)
    {
        request.headers_mut().insert(header::HOST, host.clone());
    }
    Ok(request)
}

/// The project's invocations, newest first, filtered by `status` (e.g. `dead`: the
/// dead-letter list) and `function` (any member).
#[utoipa::path(get, path = "/v1/projects/{project}/invocations", tag = "invocations", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"),
        ("status" = Option<String>, Query, description = "queued, running, succeeded, failed or dead"),
        ("function" = Option<String>, Query, description = "Only this function's"),
        ("before" = Option<String>, Query, description = "The `next` of the previous page"),
        ("limit" = Option<u32>, Query, description = "Invocations per page, 1 to 1000 (default 50)")),
    responses((status = 200, body = InvocationPageView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 404, body = ErrorResponse)))]
async fn list(
    State(state): State<AppState>,
    principal: Principal,
    Path(project): Path<String>,
    Query(query): Query<ListQuery>,
) -> Result<Json<InvocationPageView>, ApiError> {
    let (project, _) = state
        .projects
        .authorize(principal, &project, Permission::View)
        .await?;
    let status = query
        .status
        .as_deref()
        .map(str::parse::<InvocationStatus>)
        .transpose()
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let (records, next) = state
        .invocations
        .list(
            project.id,
            status,
            query.function.as_deref(),
            query.before.as_deref(),
            query.limit.unwrap_or(DEFAULT_PAGE),
        )
        .await?;
    Ok(Json(InvocationPageView {
        invocations: records
            .into_iter()
            .map(|record| view(record, None))
            .collect(),
        next,
    }))
}

/// One invocation: its status, every attempt (node, error, timings) and the function's latest
/// answer (any member of its project).
#[utoipa::path(get, path = "/v1/invocations/{id}", tag = "invocations", security(("bearer" = [])),
    params(("id" = String, Path, description = "The invocation id")),
    responses((status = 200, body = InvocationView), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn get(
    State(state): State<AppState>,
    principal: Principal,
    Path(id): Path<String>,
) -> Result<Json<InvocationView>, ApiError> {
    let not_found = || ApiError::not_found("invocation");
    let id = uuid::Uuid::parse_str(&id)
        .map(InvocationId)
        .map_err(|_| not_found())?;
    let (record, attempts) = state.invocations.get(id).await?;
    let project_id = record.project_id;
    let project = state
        .store
        .with_retry(|tx| Box::pin(async move { tx.get_project(project_id).await }))
        .await?;
    // Outsiders learn nothing, not even that the id exists.
    state
        .projects
        .authorize(principal, &project.slug, Permission::View)
        .await
        .map_err(|_| not_found())?;
    Ok(Json(view(record, Some(attempts))))
}

/// Queues dead invocations again, each with a fresh budget from its function's retry policy
/// (developer and up).
#[utoipa::path(post, path = "/v1/projects/{project}/invocations/dead/redrive", tag = "invocations", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name")), request_body = DeadLettersBody,
    responses((status = 200, body = RedrivenView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn redrive(
    State(state): State<AppState>,
    principal: Principal,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<DeadLettersBody>,
) -> Result<Json<RedrivenView>, ApiError> {
    let (project, _) = state
        .projects
        .authorize(principal, &project, Permission::Invoke)
        .await?;
    let ids = parse_ids(body.ids)?;
    let redriven = state
        .invocations
        .redrive(project.id, body.function.as_deref(), ids)
        .await?;
    Ok(Json(RedrivenView {
        redriven: redriven.iter().map(ToString::to_string).collect(),
    }))
}

/// Deletes dead invocations (developer and up).
#[utoipa::path(post, path = "/v1/projects/{project}/invocations/dead/purge", tag = "invocations", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name")), request_body = DeadLettersBody,
    responses((status = 200, body = PurgedView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse),
        (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn purge(
    State(state): State<AppState>,
    principal: Principal,
    Path(project): Path<String>,
    JsonBody(body): JsonBody<DeadLettersBody>,
) -> Result<Json<PurgedView>, ApiError> {
    let (project, _) = state
        .projects
        .authorize(principal, &project, Permission::Invoke)
        .await?;
    let ids = parse_ids(body.ids)?;
    let purged = state
        .invocations
        .purge(project.id, body.function.as_deref(), ids)
        .await?;
    Ok(Json(PurgedView { purged }))
}

pub(super) fn parse_ids(ids: Option<Vec<String>>) -> Result<Option<Vec<InvocationId>>, ApiError> {
    ids.map(|ids| {
        ids.iter()
            .map(|id| {
                uuid::Uuid::parse_str(id)
                    .map(InvocationId)
                    .map_err(|_| ApiError::bad_request(format!("not an invocation id: {id:?}")))
            })
            .collect()
    })
    .transpose()
}

fn view(record: InvocationRecord, attempts: Option<Vec<Attempt>>) -> InvocationView {
    let detailed = attempts.is_some();
    InvocationView {
        id: record.id.to_string(),
        project_id: record.project_id.to_string(),
        function: record.function,
        version: record.version,
        agent: record.agent_id.map(|agent| agent.to_string()),
        status: record.status.to_string(),
        idempotency_key: record.idempotency_key,
        attempts: record.attempts,
        max_attempts: record.max_attempts,
        run_at: record.run_at.to_rfc3339(),
        expires_at: record.expires_at.to_rfc3339(),
        error: record.error,
        created_at: record.created_at.to_rfc3339(),
        updated_at: record.updated_at.to_rfc3339(),
        finished_at: record.finished_at.map(|at| at.to_rfc3339()),
        attempt_log: attempts.map(|attempts| attempts.into_iter().map(attempt_view).collect()),
        result: record.result.filter(|_| detailed).map(|result| {
            let headers = decode_headers(&result.headers)
                .iter()
                .filter_map(|(name, value)| {
                    Some((name.to_string(), value.to_str().ok()?.to_owned()))
                })
                .collect();
            let truncated = result.size > result.body.len() as i64;
            let (body, body_base64) = match String::from_utf8(result.body) {
                Ok(text) => (Some(text), None),
                Err(error) => (
                    None,
                    Some(base64::engine::general_purpose::STANDARD.encode(error.into_bytes())),
                ),
            };
            ResultView {
                status: result.status,
                headers,
                body,
                body_base64,
                size: result.size,
                truncated,
            }
        }),
    }
}

fn attempt_view(attempt: Attempt) -> AttemptView {
    AttemptView {
        attempt: attempt.attempt,
        node: attempt.node,
        status: attempt.status,
        http_status: attempt.http_status,
        error: attempt.error,
        started_at: attempt.started_at.to_rfc3339(),
        finished_at: attempt.finished_at.map(|at| at.to_rfc3339()),
        duration_ms: attempt
            .finished_at
            .map(|end| (end - attempt.started_at).num_milliseconds()),
        stdout: attempt.stdout,
        stderr: attempt.stderr,
        output_truncated: attempt.output_truncated,
    }
}

/// The client's address, for handlers that take the whole request.
pub(crate) fn client_of(request: &Request<Body>) -> SocketAddr {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)), |info| info.0)
}
