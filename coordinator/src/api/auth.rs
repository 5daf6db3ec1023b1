//! `/v1/auth/*` and `/v1/sessions`.

use axum::extract::{ConnectInfo, Path, State};
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, StatusCode};
use axum::{Extension, Json};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, ErrorResponse, JsonBody};
use crate::auth::service::{Caller, ClientInfo, Tokens};
use crate::error::ApiError;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(sessions))
        .routes(routes!(revoke))
}

#[derive(Deserialize, ToSchema)]
pub(super) struct Register {
    email: String,
    #[serde(default)]
    display_name: Option<String>,
    password: String,
}

#[derive(Serialize, ToSchema)]
struct Registered {
    user_id: String,
}

/// Creates an account.
#[utoipa::path(post, path = "/v1/auth/register", tag = "auth", request_body = Register,
    responses((status = 201, body = Registered), (status = 400, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
async fn register(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    JsonBody(body): JsonBody<Register>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    state.limits.auth_call(ip_of(connection.as_ref()))?;
    let display_name = body.display_name.unwrap_or_else(|| body.email.clone());
    let user = state
        .auth
        .register(&body.email, &display_name, &body.password)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(Registered {
            user_id: user.to_string(),
        }),
    ))
}

#[derive(Deserialize, ToSchema)]
pub(super) struct Login {
    email: String,
    password: String,
}

/// Logs in: an access token and a refresh token for a new session.
#[utoipa::path(post, path = "/v1/auth/login", tag = "auth", request_body = Login,
    responses((status = 200, body = Tokens), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
async fn login(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Login>,
) -> Result<Json<Tokens>, ApiError> {
    let ip = ip_of(connection.as_ref());
    state.limits.auth_call(ip)?;
    state.limits.login_attempt(&body.email)?;
    let client = ClientInfo {
        user_agent: headers
            .get(USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.chars().take(256).collect()),
        ip: ip.map(|ip| ip.to_string()),
    };
    let logged_in = state.auth.login(&body.email, &body.password, client).await;
    match &logged_in {
        Ok(_) => state.limits.login_succeeded(&body.email),
        Err(error) if error.status == StatusCode::UNAUTHORIZED => {
            state.limits.login_failed(&body.email);
        }
        Err(_) => {}
    }
    Ok(Json(logged_in?))
}

/// The address a request came from.
fn ip_of(
    connection: Option<&Extension<ConnectInfo<std::net::SocketAddr>>>,
) -> Option<std::net::IpAddr> {
    connection.map(|Extension(ConnectInfo(address))| address.ip())
}

#[derive(Deserialize, ToSchema)]
pub(super) struct Refresh {
    refresh_token: String,
}

/// Exchanges a refresh token (once) for new tokens; reuse revokes the session.
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = Refresh,
    responses((status = 200, body = Tokens), (status = 400, body = ErrorResponse), (status = 401, body = ErrorResponse)))]
async fn refresh(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    JsonBody(body): JsonBody<Refresh>,
) -> Result<Json<Tokens>, ApiError> {
    state.limits.auth_call(ip_of(connection.as_ref()))?;
    Ok(Json(state.auth.refresh(&body.refresh_token).await?))
}

/// Ends the caller's session.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorResponse)))]
async fn logout(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    state.auth.logout(caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize, ToSchema)]
struct SessionView {
    id: String,
    current: bool,
    created_at: String,
    last_used_at: String,
    revoked: bool,
    user_agent: Option<String>,
    ip: Option<String>,
}

/// The caller's sessions.
#[utoipa::path(get, path = "/v1/sessions", tag = "auth", security(("bearer" = [])),
    responses((status = 200, body = [SessionView]), (status = 401, body = ErrorResponse)))]
async fn sessions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<SessionView>>, ApiError> {
    let sessions = state.auth.sessions(caller).await?;
    Ok(Json(
        sessions
            .into_iter()
            .map(|session| SessionView {
                id: session.id.to_string(),
                current: session.id == caller.session,
                created_at: session.created_at.to_rfc3339(),
                last_used_at: session.last_used_at.to_rfc3339(),
                revoked: session.revoked_at.is_some(),
                user_agent: session.user_agent,
                ip: session.ip,
            })
            .collect(),
    ))
}

/// Revokes one of the caller's sessions; its tokens stop working at their next request.
#[utoipa::path(delete, path = "/v1/sessions/{id}", tag = "auth", security(("bearer" = [])),
    params(("id" = String, Path, description = "The session id")),
    responses((status = 204), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn revoke(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = uuid::Uuid::parse_str(&id).map_err(|_| ApiError::not_found("session"))?;
    state
        .auth
        .revoke_session(caller, nexus_store::SessionId(id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
