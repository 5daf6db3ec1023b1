//! The coordinator's HTTP API: routes, the request-id and error-body middleware, body limits,
//! health endpoints, and the extractor that turns a bearer token into a [`Caller`].

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, FromRequestParts, Request, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use nexus_proto::ErrorEnvelope;
use nexus_store::Store;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::agents::AgentService;
use crate::api_keys::ApiKeyService;
use crate::auth::service::{AuthService, Caller};
use crate::dispatch::{Dispatch, ObservedDispatch};
use crate::error::{ApiError, PendingErrorBody};
use crate::events::EventBus;
use crate::functions::{BlobStore, DeployLimits, FunctionService};
use crate::invocations::{AsyncConfig, InvocationQueue, InvocationService, Runner};
use crate::leader::{LeaderConfig, Leadership};
use crate::limits::{RateLimitConfig, RateLimits};
use crate::metrics::Metrics;
use crate::projects::{Principal, ProjectService};
use crate::rollouts::RolloutService;
use crate::schedules::ScheduleService;
use crate::trigger::{CatalogChanges, Resolver};
use crate::warm::WarmPools;

mod agent_context;
mod agents;
mod api_keys;
mod auth;
mod dashboard;
mod functions;
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod invocations;
mod nodes;
mod projects;
mod rollouts;
mod schedules;
mod users;
mod ws;

pub(crate) use agents::MESSAGES_ROUTE;
pub(crate) use invocations::INVOKE_ROUTE;

/// Whether `route` runs functions: invocations, which the audit log does not record.
pub(crate) fn is_invocation_route(route: &str) -> bool {
    route == MESSAGES_ROUTE || route == INVOKE_ROUTE
}

/// The largest request body the API reads. Deploy uploads get their own, larger limit.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The header carrying the request id, in both directions.
pub const REQUEST_ID: &str = "x-request-id";

/// The node of a coordinator that runs functions in its own process, as it is now.
pub type LocalNode = Arc<dyn Fn() -> crate::cluster::NodeView + Send + Sync>;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Arc<Store>,
    /// Accounts and sessions.
    pub auth: AuthService,
    /// Projects, members and roles.
    pub projects: ProjectService,
    /// Project API keys.
    pub api_keys: ApiKeyService,
    /// Agents.
    pub agents: AgentService,
    /// What happened, for whoever listens.
    pub events: Arc<dyn EventBus>,
    /// Functions, versions and aliases.
    pub functions: FunctionService,
    /// What the HTTP trigger's names resolve to.
    pub triggers: Arc<Resolver>,
    /// Where invocations run.
    pub dispatch: Arc<dyn Dispatch>,
    /// Asynchronous invocations.
    pub invocations: InvocationService,
    /// Schedules.
    pub schedules: ScheduleService,
    /// Progressive rollouts of versions behind aliases.
    pub rollouts: RolloutService,
    /// What `/metrics` shows.
    pub metrics: Arc<Metrics>,
    /// Abuse limits: auth endpoints, logins, each project's trigger requests.
    pub limits: Arc<RateLimits>,
    /// The node a coordinator running functions in its own process is, as `/nodes` shows it.
    pub local_node: Option<LocalNode>,
    /// The edge nodes, when this coordinator runs a cluster.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// Whether this replica runs the singleton work.
    pub leadership: Leadership,
    /// The `min_warm` pools.
    pub warm: WarmPools,
}

impl AppState {
    /// The services over `store`, signing access tokens with `keys`, keeping component bytes
    /// in `blobs`, running invocations through `dispatch`, publishing on `events` and
    /// announcing asynchronous invocations on `queue`. Within a Tokio runtime.
    pub fn new(
        store: Arc<Store>,
        keys: crate::auth::access_token::AccessTokenKeys,
        blobs: Arc<dyn BlobStore>,
        dispatch: Arc<dyn Dispatch>,
        events: Arc<dyn EventBus>,
        queue: Arc<dyn InvocationQueue>,
        async_config: AsyncConfig,
    ) -> Self {
        let changes = Arc::new(CatalogChanges::default());
        let metrics = Arc::new(Metrics::default());
        let leadership = Leadership::new(Arc::clone(&store), LeaderConfig::default());
        leadership.observe(&metrics);
        let dispatch: Arc<dyn Dispatch> = Arc::new(ObservedDispatch::new(
            dispatch,
            Arc::clone(&metrics),
            Arc::clone(&events),
        ));
        let triggers = Arc::new(Resolver::new(Arc::clone(&store), Arc::clone(&changes)));
        let warm = WarmPools::new(
            Arc::clone(&store),
            Arc::clone(&triggers),
            Arc::clone(&dispatch),
        );
        let invocations = InvocationService::new(
            Arc::clone(&store),
            queue,
            Arc::clone(&events),
            Arc::clone(&metrics),
            async_config,
        );
        Self {
            schedules: ScheduleService::new(
                Arc::clone(&store),
                Arc::clone(&triggers),
                invocations.clone(),
            ),
            invocations,
            rollouts: RolloutService::new(
                Arc::clone(&store),
                Arc::clone(&changes),
                Arc::clone(&events),
            ),
            functions: FunctionService::new(
                Arc::clone(&store),
                blobs,
                DeployLimits::default(),
                Arc::clone(&changes),
                Arc::clone(&events),
            ),
            auth: AuthService::new(Arc::clone(&store), keys),
            projects: ProjectService::new(Arc::clone(&store), Arc::clone(&changes)),
            api_keys: ApiKeyService::new(Arc::clone(&store)),
            agents: AgentService::new(
                Arc::clone(&store),
                Arc::clone(&events),
                Arc::clone(&triggers),
                Arc::clone(&dispatch),
            ),
            events,
            triggers,
            dispatch,
            store,
            metrics,
            limits: Arc::new(RateLimits::new(RateLimitConfig::default())),
            local_node: None,
            cluster: None,
            leadership,
            warm,
        }
    }

    /// Who `token` names: a machine by API key (`nxk_…`), else a user by access token.
    pub async fn principal(&self, token: &str) -> Result<Principal, ApiError> {
        if token.starts_with("nxk_") {
            return Ok(Principal::ApiKey(self.api_keys.authenticate(token).await?));
        }
        Ok(Principal::User(self.auth.authenticate(token).await?))
    }

    /// Starts the workers that run asynchronous invocations here, and seeks the leader lease,
    /// under which the schedules' loop, the invocation sweep and the rollouts' judge run;
    /// and renews the `min_warm` pins of this replica's nodes.
    pub fn start_workers(&self) {
        self.leadership.start();
        self.schedules.start(self.leadership.clone());
        self.rollouts.start(self.leadership.clone());
        self.warm.start();
        self.invocations.start(
            Runner {
                triggers: Arc::clone(&self.triggers),
                dispatch: Arc::clone(&self.dispatch),
                agents: self.agents.clone(),
            },
            self.leadership.clone(),
        );
    }

    /// Caps deploys by `limits`.
    #[must_use]
    pub fn with_deploy_limits(mut self, limits: DeployLimits) -> Self {
        self.functions = self.functions.with_limits(limits);
        self
    }
}

/// The API's routes, with their middleware, and `/openapi.json` describing every one of them.
pub fn router(state: AppState) -> Router {
    let (routes, spec) = api_routes(&state).split_for_parts();
    let spec = Arc::new(spec);
    routes
        .route(
            "/openapi.json",
            get(move || {
                let spec = Arc::clone(&spec);
                async move { Json(spec.as_ref().clone()) }
            }),
        )
        // WebSockets are not in the OpenAPI document, which cannot describe them.
        .merge(ws::routes())
        .merge(dashboard::routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            crate::audit::record,
        ))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(middleware::from_fn(request_id))
        .with_state(state)
}

/// Every documented route; the only way a route is added, so the spec cannot miss one.
fn api_routes(state: &AppState) -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .merge(auth::routes())
        .merge(projects::routes())
        .merge(api_keys::routes())
        .merge(agents::routes())
        .merge(invocations::routes())
        .merge(schedules::routes())
        .merge(rollouts::routes())
        .merge(nodes::routes())
        .merge(users::routes())
        .merge(functions::routes(state.functions.limits()))
}

/// The OpenAPI document's fixed parts; the paths come from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "SirsiNexus coordinator API", description = "Accounts, sessions and your data; projects, members and API keys; functions, versions, aliases and placements; agents and their context; invocations and schedules; nodes; health and metrics."),
    components(schemas(ErrorResponse, ErrorDetail)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Declares the `bearer` security scheme the handlers name.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new()
            .scheme(HttpAuthScheme::Bearer)
            .bearer_format("JWT")
            .build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The body of every error response ([`nexus_proto::ErrorEnvelope`]), for the spec.
#[derive(utoipa::ToSchema)]
#[schema(as = Error)]
#[expect(
    dead_code,
    reason = "describes the JSON nexus_proto::ErrorEnvelope writes"
)]
pub(crate) struct ErrorResponse {
    error: ErrorDetail,
}

/// What went wrong, for the spec.
#[derive(utoipa::ToSchema)]
#[expect(dead_code, reason = "describes the JSON nexus_proto::ErrorBody writes")]
pub(crate) struct ErrorDetail {
    /// A stable, snake_case code.
    code: String,
    /// What went wrong, for people.
    message: String,
    /// The request id, as in the `x-request-id` header.
    request_id: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "health",
    responses((status = 200, body = String), (status = 503, body = ErrorResponse)))]
async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state
        .store
        .ping()
        .await
        .map_err(|error| ApiError::unavailable(format!("database unreachable: {error}")))?;
    Ok("ready")
}

/// The coordinator's metrics in the Prometheus text format (see [`Metrics`]).
#[utoipa::path(get, path = "/metrics", tag = "health",
    responses((status = 200, body = String, content_type = "text/plain; version=0.0.4")))]
async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(CONTENT_TYPE, nexus_telemetry::metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
}

/// Gives every request an id (the client's `x-request-id` when it is sane, otherwise a new
/// one), returns it on the response, and writes the body of error responses with it.
async fn request_id(mut request: Request, next: Next) -> Response {
    let id = request_id_of(request.headers());
    request.extensions_mut().insert(RequestId(id.clone()));
    let mut response = next.run(request).await;
    if let Some(pending) = response.extensions_mut().remove::<PendingErrorBody>() {
        let body = ErrorEnvelope::new(pending.code, &pending.message, &id).to_json();
        let (mut parts, _) = response.into_parts();
        parts
            .headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        response = Response::from_parts(parts, axum::body::Body::from(body));
    } else if response.status() == StatusCode::PAYLOAD_TOO_LARGE {
        response = ApiError::bad_request(format!(
            "the request body is larger than {MAX_BODY_BYTES} bytes"
        ))
        .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        .render(&id);
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    response
}

/// The client's `x-request-id` when it is sane, otherwise a new one.
pub(crate) fn request_id_of(headers: &HeaderMap) -> String {
    headers
        .get(REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|value| {
            !value.is_empty()
                && value.len() <= 128
                && value.bytes().all(|byte| byte.is_ascii_graphic())
        })
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned)
}

/// The id of the request being served.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl ApiError {
    fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The response with its body written, for paths outside the router's middleware.
    pub(crate) fn render(self, request_id: &str) -> Response {
        let body = ErrorEnvelope::new(self.code, &self.message, request_id).to_json();
        let mut response =
            (self.status, [(CONTENT_TYPE, "application/json")], body).into_response();
        if let Some(retry_after) = self.retry_after {
            response
                .headers_mut()
                .insert(RETRY_AFTER, HeaderValue::from(retry_after.as_secs().max(1)));
        }
        response
    }
}

/// The token of `Authorization: Bearer <token>`.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let header = parts
        .headers
        .get(AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthenticated("missing Authorization header"))?;
    header
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthenticated("expected `Authorization: Bearer <token>`"))
}

/// Tells the audit log who the caller is.
fn record_actor(parts: &Parts, actor: String) {
    if let Some(slot) = parts.extensions.get::<crate::audit::AuditSlot>() {
        slot.set_actor(actor);
    }
}

/// A user, by access token. API keys are refused: these routes act as a person.
impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = state.auth.authenticate(bearer(parts)?).await?;
        record_actor(parts, format!("user:{}", caller.user));
        Ok(caller)
    }
}

/// A user by access token, or a machine by API key (`nxk_…`).
impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let principal = state.principal(bearer(parts)?).await?;
        record_actor(parts, principal.actor());
        Ok(principal)
    }
}

/// JSON bodies that fail to parse are the caller's error, in the one error shape.
pub(crate) struct JsonBody<T>(pub T);

impl<T, S> axum::extract::FromRequest<S> for JsonBody<T>
where
    T: serde::de::DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Err(ApiError::bad_request(rejection.body_text())
                    .with_status(StatusCode::PAYLOAD_TOO_LARGE))
            }
            Err(rejection) => Err(ApiError::bad_request(rejection.body_text())),
        }
    }
}
