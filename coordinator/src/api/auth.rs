//! `/v1/auth/*` and `/v1/sessions`.

use axum::extract::{ConnectInfo, Path, State};
use axum::http::header::USER_AGENT;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post};
use axum::{Extension, Json, Router};
use serde::{Deserialize, Serialize};

use super::{AppState, JsonBody};
use crate::auth::service::{Caller, ClientInfo, Tokens};
use crate::error::ApiError;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/auth/register", post(register))
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/sessions", get(sessions))
        .route("/v1/sessions/{id}", delete(revoke))
}

#[derive(Deserialize)]
struct Register {
    email: String,
    #[serde(default)]
    display_name: Option<String>,
    password: String,
}

#[derive(Serialize)]
struct Registered {
    user_id: String,
}

async fn register(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Register>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
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

#[derive(Deserialize)]
struct Login {
    email: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    connection: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    JsonBody(body): JsonBody<Login>,
) -> Result<Json<Tokens>, ApiError> {
    let client = ClientInfo {
        user_agent: headers
            .get(USER_AGENT)
            .and_then(|value| value.to_str().ok())
            .map(|value| value.chars().take(256).collect()),
        ip: connection.map(|Extension(ConnectInfo(address))| address.ip().to_string()),
    };
    Ok(Json(
        state
            .auth
            .login(&body.email, &body.password, client)
            .await?,
    ))
}

#[derive(Deserialize)]
struct Refresh {
    refresh_token: String,
}

async fn refresh(
    State(state): State<AppState>,
    JsonBody(body): JsonBody<Refresh>,
) -> Result<Json<Tokens>, ApiError> {
    Ok(Json(state.auth.refresh(&body.refresh_token).await?))
}

async fn logout(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    state.auth.logout(caller).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct SessionView {
    id: String,
    current: bool,
    created_at: String,
    last_used_at: String,
    revoked: bool,
    user_agent: Option<String>,
    ip: Option<String>,
}

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
