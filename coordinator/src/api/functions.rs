//! `/v1/projects/{p}/functions`: deploy versions, list functions, versions and aliases, set a
//! function's priority class and node selector, move and roll back aliases.
//!
//! `POST …/functions/{name}/versions` takes the app in one of three forms, by `Content-Type`:
//! `application/x-tar` (a tar with `spin.toml` at its root and the files it references),
//! `multipart/form-data` (a `spin.toml` part and one part per referenced file, each named by
//! its relative path), or `application/wasm` (one component, served on `/...`). The new
//! version becomes the target of the alias named by `?alias=` (default `live`); `?alias=none`
//! moves no alias, except that a function's first version always becomes `live`. No route
//! changes a version.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{DefaultBodyLimit, FromRequest, Multipart, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use bytes::Bytes;
use nexus_store::{Alias, Function, FunctionVersion};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, ErrorResponse, JsonBody};
use crate::auth::service::Caller;
use crate::cloud::{CloudTargets, Placement, PlacementMode};
use crate::cluster::Priority;
use crate::error::ApiError;
use crate::functions::{AliasTarget, DeployLimits, FunctionUpdate, LIVE, MoveAlias, Upload};

pub(super) fn routes(limits: &DeployLimits) -> OpenApiRouter<AppState> {
    let uploads = OpenApiRouter::new()
        .routes(routes!(deploy))
        .layer(DefaultBodyLimit::max(limits.max_upload_bytes));
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(show, update))
        .routes(routes!(version))
        .routes(routes!(set_alias))
        .routes(routes!(rollback))
        .merge(uploads)
}

#[derive(Serialize, ToSchema)]
struct CanaryView {
    version: i64,
    weight: i32,
}

#[derive(Serialize, ToSchema)]
struct PreviousView {
    version: i64,
    canary: Option<CanaryView>,
}

#[derive(Serialize, ToSchema)]
struct AliasView {
    name: String,
    version: i64,
    canary: Option<CanaryView>,
    /// Where a rollback would move the alias.
    previous: Option<PreviousView>,
    updated_at: String,
}

fn alias_view(alias: Alias) -> AliasView {
    let canary = |version: Option<i64>, weight: Option<i32>| {
        version.map(|version| CanaryView {
            version,
            weight: weight.unwrap_or(0),
        })
    };
    AliasView {
        version: alias.version_a,
        canary: canary(alias.version_b, Some(alias.weight_b)),
        previous: alias.previous_version_a.map(|version| PreviousView {
            version,
            canary: canary(alias.previous_version_b, alias.previous_weight_b),
        }),
        name: alias.name,
        updated_at: alias.updated_at.to_rfc3339(),
    }
}

#[derive(Serialize, ToSchema)]
struct VersionView {
    version: i64,
    #[schema(value_type = Object)]
    component_digests: serde_json::Value,
    created_at: String,
    /// The resolved app; only in the view of one version.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    app: Option<serde_json::Value>,
}

fn version_view(version: FunctionVersion, with_app: bool) -> VersionView {
    VersionView {
        version: version.version,
        component_digests: version.component_digests,
        created_at: version.created_at.to_rfc3339(),
        app: with_app.then_some(version.spec),
    }
}

#[derive(Serialize, ToSchema)]
struct FunctionView {
    name: String,
    /// The priority class of its requests that name none in `nexus-priority`: `critical`,
    /// `high`, `normal` or `low`.
    priority: String,
    /// The labels an edge node must carry, each with exactly this value, to run the function;
    /// empty when any node may.
    #[schema(example = json!({"gpu": "true"}))]
    node_selector: BTreeMap<String, String>,
    /// How its asynchronous invocations are retried.
    async_retry: AsyncRetryView,
    /// Where it runs: `edge`, `aws-lambda`, or `auto` (edge nodes first, its cloud target when
    /// none can take a call).
    #[schema(example = "auto")]
    placement: String,
    /// The clouds it may run in.
    cloud: CloudTargets,
    /// Edge nodes that keep its aliased versions loaded however long they idle.
    min_warm: i32,
    created_at: String,
    aliases: Vec<AliasView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    versions: Option<Vec<VersionView>>,
}

/// How a function's asynchronous invocations are retried.
#[derive(Serialize, Deserialize, ToSchema, Clone, Copy)]
#[serde(deny_unknown_fields)]
pub(super) struct AsyncRetryView {
    /// Attempts in all, the first included: 1 to 100 (default 3).
    max_attempts: i32,
    /// No attempt starts this long after the invocation was accepted: 1 s to 7 days in
    /// milliseconds (default 6 hours).
    max_age_ms: i64,
    /// The wait before the first retry, in milliseconds (0 to 1 hour, default 1 s); each
    /// later wait doubles, up to 15 minutes, with jitter.
    backoff_ms: i64,
}

fn function_view(
    function: Function,
    aliases: Vec<Alias>,
    versions: Option<Vec<FunctionVersion>>,
) -> FunctionView {
    let placement = Placement::of_function(&function);
    FunctionView {
        placement: placement.mode.to_string(),
        cloud: placement.targets,
        name: function.name,
        priority: function.priority,
        node_selector: function.node_selector,
        min_warm: function.min_warm,
        async_retry: AsyncRetryView {
            max_attempts: function.async_retry.max_attempts,
            max_age_ms: function.async_retry.max_age_ms,
            backoff_ms: function.async_retry.backoff_ms,
        },
        created_at: function.created_at.to_rfc3339(),
        aliases: aliases.into_iter().map(alias_view).collect(),
        versions: versions.map(|versions| {
            versions
                .into_iter()
                .map(|version| version_view(version, false))
                .collect()
        }),
    }
}

#[derive(Deserialize)]
pub(super) struct DeployQuery {
    alias: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct DeployedView {
    function: String,
    #[serde(flatten)]
    version: VersionView,
    /// Aliases this deploy moved to the new version.
    aliases: Vec<AliasView>,
}

/// Deploys a new, immutable version from a tar, a multipart body or one component (developer and up).
#[utoipa::path(post, path = "/v1/projects/{project}/functions/{function}/versions", tag = "functions", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("function" = String, Path, description = "The function name"), ("alias" = Option<String>, Query, description = "The alias to move to the new version (default `live`; `none` moves none)")),
    request_body(content((Vec<u8> = "application/x-tar"), (Vec<u8> = "multipart/form-data"), (Vec<u8> = "application/wasm"))),
    responses((status = 201, body = DeployedView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 413, body = ErrorResponse), (status = 415, body = ErrorResponse), (status = 422, body = ErrorResponse)))]
async fn deploy(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, function)): Path<(String, String)>,
    Query(query): Query<DeployQuery>,
    request: Request,
) -> Result<(StatusCode, Json<DeployedView>), ApiError> {
    let limit = state.functions.limits().max_upload_bytes;
    let move_alias = match query.alias.as_deref() {
        None => MoveAlias::To(LIVE.to_owned()),
        Some("none") => MoveAlias::Nothing,
        Some(alias) => MoveAlias::To(alias.to_owned()),
    };
    let upload = read_upload(request, &state, limit).await?;
    let deployed = state
        .functions
        .deploy(caller, &project, &function, upload, move_alias)
        .await?;
    // The version is committed whatever happens here; a failure only means its first request
    // loads it instead, and says why.
    if !deployed.aliases.is_empty()
        && let Err(error) = state.dispatch.prepare(Arc::clone(&deployed.target)).await
    {
        tracing::warn!(%error, project, function, "the new version failed to load");
    }
    Ok((
        StatusCode::CREATED,
        Json(DeployedView {
            function,
            version: version_view(deployed.version, false),
            aliases: deployed.aliases.into_iter().map(alias_view).collect(),
        }),
    ))
}

/// The upload in whichever form the `Content-Type` names.
pub(super) async fn read_upload<S: Send + Sync>(
    request: Request,
    state: &S,
    limit: usize,
) -> Result<Upload, ApiError> {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .map(|essence| essence.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let too_large = || ApiError::too_large(format!("the upload is larger than {limit} bytes"));
    match content_type.as_str() {
        "application/x-tar" | "application/tar" | "application/wasm" => {
            let body = Bytes::from_request(request, state)
                .await
                .map_err(|rejection| {
                    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        too_large()
                    } else {
                        ApiError::bad_request(rejection.body_text())
                    }
                })?;
            Ok(if content_type == "application/wasm" {
                Upload::Component(body)
            } else {
                Upload::Tar(body)
            })
        }
        "multipart/form-data" => {
            let mut multipart = Multipart::from_request(request, state)
                .await
                .map_err(|rejection| ApiError::bad_request(rejection.body_text()))?;
            let part_error = |error: axum::extract::multipart::MultipartError| {
                if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    ApiError::bad_request(error.body_text())
                }
            };
            let mut files = Vec::new();
            loop {
                let field = multipart.next_field().await.map_err(part_error)?;
                let Some(field) = field else { break };
                let name = field
                    .name()
                    .ok_or_else(|| ApiError::bad_request("a multipart part has no name"))?
                    .to_owned();
                let bytes = field.bytes().await.map_err(part_error)?;
                files.push((name, bytes));
            }
            Ok(Upload::Files(files))
        }
        other => Err(ApiError::bad_request(format!(
            "cannot deploy a body of type {other:?}: send application/x-tar, multipart/form-data \
             or application/wasm"
        ))
        .with_status(StatusCode::UNSUPPORTED_MEDIA_TYPE)),
    }
}

/// The project functions with their aliases (any member).
#[utoipa::path(get, path = "/v1/projects/{project}/functions", tag = "functions", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name")),
    responses((status = 200, body = [FunctionView]), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Path(project): Path<String>,
) -> Result<Json<Vec<FunctionView>>, ApiError> {
    let functions = state.functions.list(caller, &project).await?;
    Ok(Json(
        functions
            .into_iter()
            .map(|(function, aliases)| function_view(function, aliases, None))
            .collect(),
    ))
}

/// One function with its versions and aliases (any member).
#[utoipa::path(get, path = "/v1/projects/{project}/functions/{function}", tag = "functions", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("function" = String, Path, description = "The function name")),
    responses((status = 200, body = FunctionView), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn show(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, function)): Path<(String, String)>,
) -> Result<Json<FunctionView>, ApiError> {
    let (function, versions, aliases) = state.functions.show(caller, &project, &function).await?;
    Ok(Json(function_view(function, aliases, Some(versions))))
}

/// A change to a function's settings: `priority`, `node_selector`, `async_retry`, `placement`,
/// `cloud`. A field left out
/// keeps its value.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct FunctionChange {
    /// The priority class of the function's requests that name none in `nexus-priority`:
    /// `critical`, `high`, `normal` or `low`.
    #[schema(example = "high")]
    priority: Option<String>,
    /// The labels an edge node must carry, each with exactly this value, to run the function
    /// (like a Kubernetes `nodeSelector`); `{}` lets any node run it. At most 16 entries; keys
    /// are `[prefix/]name` (253 characters at most, the prefix a DNS subdomain), names and
    /// values 1 to 63 letters, digits, `-`, `_` and `.` starting and ending with a letter or
    /// digit (a value may be empty).
    #[schema(example = json!({"gpu": "true"}))]
    node_selector: Option<BTreeMap<String, String>>,
    /// How asynchronous invocations accepted from now on are retried (all three fields).
    async_retry: Option<AsyncRetryView>,
    /// Where it runs: `edge`, `aws-lambda` (its Lambda target only) or `auto` (edge nodes
    /// first, its cloud target when none can take a call); a cloud placement needs `cloud`.
    #[schema(example = "auto")]
    placement: Option<String>,
    /// The clouds it may run in; replaces those it had.
    cloud: Option<CloudTargets>,
    /// Edge nodes that keep the versions its aliases point at loaded however long they idle,
    /// against cold starts (0 to 100; 0 lets them scale to zero).
    #[schema(example = 1)]
    min_warm: Option<i32>,
}

/// Sets a function's priority class, node selector or both; the change applies to the next
/// request (developer and up).
#[utoipa::path(patch, path = "/v1/projects/{project}/functions/{function}", tag = "functions", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("function" = String, Path, description = "The function name")), request_body = FunctionChange,
    responses((status = 200, body = FunctionView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn update(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, function)): Path<(String, String)>,
    JsonBody(body): JsonBody<FunctionChange>,
) -> Result<Json<FunctionView>, ApiError> {
    let change = function_update(body)?;
    let warmth_changed = change.min_warm.is_some();
    let (function, versions, aliases) = state
        .functions
        .update(caller, &project, &function, change)
        .await?;
    if warmth_changed {
        state.warm.renew_now();
    }
    Ok(Json(function_view(function, aliases, Some(versions))))
}

/// The settings a change names, parsed; empty changes are refused.
pub(super) fn function_update(body: FunctionChange) -> Result<FunctionUpdate, ApiError> {
    if body.priority.is_none()
        && body.node_selector.is_none()
        && body.async_retry.is_none()
        && body.placement.is_none()
        && body.cloud.is_none()
        && body.min_warm.is_none()
    {
        return Err(ApiError::bad_request(
            "the change is empty: give priority, node_selector, async_retry, placement, cloud or min_warm",
        ));
    }
    let placement = body
        .placement
        .map(|placement| placement.parse::<PlacementMode>())
        .transpose()
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let priority = body
        .priority
        .map(|priority| priority.parse::<Priority>())
        .transpose()
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    Ok(FunctionUpdate {
        priority,
        node_selector: body.node_selector,
        async_retry: body.async_retry.map(|retry| nexus_store::AsyncRetry {
            max_attempts: retry.max_attempts,
            max_age_ms: retry.max_age_ms,
            backoff_ms: retry.backoff_ms,
        }),
        placement,
        cloud: body.cloud,
        min_warm: body.min_warm,
    })
}

/// One version, with its resolved app (any member).
#[utoipa::path(get, path = "/v1/projects/{project}/functions/{function}/versions/{version}", tag = "functions", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("function" = String, Path, description = "The function name"), ("version" = i64, Path, description = "The version number")),
    responses((status = 200, body = VersionView), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn version(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, function, version)): Path<(String, String, String)>,
) -> Result<Json<VersionView>, ApiError> {
    let number: i64 = version
        .parse()
        .map_err(|_| ApiError::not_found("function version"))?;
    let found = state
        .functions
        .version(caller, &project, &function, number)
        .await?;
    Ok(Json(version_view(found, true)))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CanaryChange {
    version: i64,
    weight: i32,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct AliasChange {
    version: i64,
    canary: Option<CanaryChange>,
}

/// Points an alias at a version, optionally with a weighted canary (developer and up).
#[utoipa::path(put, path = "/v1/projects/{project}/functions/{function}/aliases/{alias}", tag = "functions", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("function" = String, Path, description = "The function name"), ("alias" = String, Path, description = "The alias name")), request_body = AliasChange,
    responses((status = 200, body = AliasView), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn set_alias(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, function, alias)): Path<(String, String, String)>,
    JsonBody(body): JsonBody<AliasChange>,
) -> Result<Json<AliasView>, ApiError> {
    let target = AliasTarget {
        version: body.version,
        canary: body.canary.map(|canary| (canary.version, canary.weight)),
    };
    let moved = state
        .functions
        .set_alias(caller, &project, &function, &alias, target)
        .await?;
    Ok(Json(alias_view(moved)))
}

/// Moves an alias back to where it pointed before its last move (developer and up).
#[utoipa::path(post, path = "/v1/projects/{project}/functions/{function}/aliases/{alias}/rollback", tag = "functions", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name"), ("function" = String, Path, description = "The function name"), ("alias" = String, Path, description = "The alias name")),
    responses((status = 200, body = AliasView), (status = 401, body = ErrorResponse), (status = 403, body = ErrorResponse), (status = 404, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
async fn rollback(
    State(state): State<AppState>,
    caller: Caller,
    Path((project, function, alias)): Path<(String, String, String)>,
) -> Result<Json<AliasView>, ApiError> {
    let moved = state
        .functions
        .rollback(caller, &project, &function, &alias)
        .await?;
    Ok(Json(alias_view(moved)))
}
