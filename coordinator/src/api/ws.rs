//! WebSockets. `/ws/events?project=…` streams a project's events live as JSON text frames,
//! filtered by `type` (comma-separated), `function` and `agent`, resuming after the event id
//! `after`. `/ws/agents/{agent}?project=…` runs each frame the client sends as a message to the
//! agent, in order, answering `{"type":"reply",…}`, and streams the agent's events too.
//!
//! Both take the same credentials as the API: `Authorization: Bearer …`, or `access_token=…` in
//! the query for clients (browsers) that cannot set headers on a WebSocket.

use std::net::{Ipv4Addr, SocketAddr};

use axum::Router;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use axum::routing::get;
use base64::Engine as _;
use futures::StreamExt as _;
use nexus_store::{AgentId, Project};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::AppState;
use crate::error::ApiError;
use crate::events::{Event, EventId, Listener, MissedEvents};
use crate::projects::Permission;

/// The largest frame a client may send: a message to an agent.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;
/// Messages from one socket that may wait for the agent; past this the socket is not read.
const MAX_PENDING_MESSAGES: usize = 64;

pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/ws/events", get(events))
        .route("/ws/agents/{agent}", get(agent))
}

#[derive(Deserialize)]
pub(super) struct EventsQuery {
    project: String,
    #[serde(rename = "type")]
    types: Option<String>,
    function: Option<String>,
    agent: Option<String>,
    after: Option<String>,
    access_token: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct AgentQuery {
    project: String,
    access_token: Option<String>,
}

/// Which events a listener wants, matched on their JSON fields.
struct Filter {
    project: String,
    types: Option<Vec<String>>,
    function: Option<String>,
    agent: Option<String>,
}

impl Filter {
    fn matches(&self, event: &Value) -> bool {
        let field = |name: &str| event.get(name).and_then(Value::as_str);
        field("project") == Some(self.project.as_str())
            && self.types.as_ref().is_none_or(|types| {
                field("type").is_some_and(|kind| types.iter().any(|wanted| wanted == kind))
            })
            && self
                .function
                .as_deref()
                .is_none_or(|function| field("function") == Some(function))
            && self
                .agent
                .as_deref()
                .is_none_or(|agent| field("agent") == Some(agent))
    }
}

/// The project named in the query, if the credentials' role in it grants `permission`.
async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    access_token: Option<&str>,
    project: &str,
    permission: Permission,
) -> Result<Project, ApiError> {
    let from_header = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let token = from_header
        .or(access_token)
        .ok_or_else(|| ApiError::unauthenticated("a bearer token or access_token is required"))?;
    let principal = state.principal(token.trim()).await?;
    let (project, _) = state
        .projects
        .authorize(principal, project, permission)
        .await?;
    Ok(project)
}

async fn events(
    State(state): State<AppState>,
    Query(query): Query<EventsQuery>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let project = authorize(
        &state,
        &headers,
        query.access_token.as_deref(),
        &query.project,
        Permission::View,
    )
    .await?;
    let after = query
        .after
        .as_deref()
        .map(str::parse::<EventId>)
        .transpose()
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    let filter = Filter {
        project: project.id.to_string(),
        types: query
            .types
            .map(|types| types.split(',').map(str::to_owned).collect()),
        function: query.function,
        agent: query.agent,
    };
    let events = state.events.subscribe(after).await;
    Ok(upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| stream_events(socket, events, filter)))
}

/// The frame of an event, or of a gap.
fn event_frame(event: Result<Event, MissedEvents>, filter: &Filter) -> Option<Message> {
    let value = match event {
        Ok(event) => serde_json::to_value(&event).ok()?,
        Err(missed) => {
            return Some(text(
                &json!({"type": "missed", "message": missed.to_string()}),
            ));
        }
    };
    filter.matches(&value).then(|| text(&value))
}

fn text(value: &Value) -> Message {
    Message::Text(Utf8Bytes::from(value.to_string()))
}

async fn stream_events(mut socket: WebSocket, mut events: Listener, filter: Filter) {
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                // Pings are answered by the socket itself; anything else from the client is
                // ignored until it closes.
                Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
            event = events.next() => {
                let Some(event) = event else { return };
                if let Some(frame) = event_frame(event, &filter)
                    && socket.send(frame).await.is_err()
                {
                    return;
                }
            }
        }
    }
}

async fn agent(
    State(state): State<AppState>,
    Path(agent): Path<String>,
    Query(query): Query<AgentQuery>,
    headers: HeaderMap,
    connected: Option<axum::Extension<ConnectInfo<SocketAddr>>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let project = authorize(
        &state,
        &headers,
        query.access_token.as_deref(),
        &query.project,
        Permission::Invoke,
    )
    .await?;
    let agent = uuid::Uuid::parse_str(&agent)
        .map(AgentId)
        .map_err(|_| ApiError::not_found("agent"))?;
    state.agents.get(project.id, agent).await?;
    let client = connected.map_or(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)), |info| {
        info.0.0
    });
    let filter = Filter {
        project: project.id.to_string(),
        types: None,
        function: None,
        agent: Some(agent.to_string()),
    };
    let events = state.events.subscribe(None).await;
    Ok(upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| converse(socket, state, project, agent, client, events, filter)))
}

/// Runs the client's frames as messages to the agent, one after another, and sends back each
/// reply and the agent's events as they come.
async fn converse(
    mut socket: WebSocket,
    state: AppState,
    project: Project,
    agent: AgentId,
    client: SocketAddr,
    mut events: Listener,
    filter: Filter,
) {
    let (messages, mut pending) = mpsc::channel::<Vec<u8>>(MAX_PENDING_MESSAGES);
    let (replies, mut replied) = mpsc::channel::<Value>(MAX_PENDING_MESSAGES);
    let worker = tokio::spawn(async move {
        while let Some(body) = pending.recv().await {
            let reply = run_message(&state, &project, agent, client, body).await;
            if replies.send(reply).await.is_err() {
                return;
            }
        }
    });
    loop {
        tokio::select! {
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(body))) => {
                    if messages.send(body.as_bytes().to_vec()).await.is_err() { break; }
                }
                Some(Ok(Message::Binary(body))) => {
                    if messages.send(body.to_vec()).await.is_err() { break; }
                }
                Some(Ok(Message::Close(_)) | Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            reply = replied.recv() => {
                let Some(reply) = reply else { break };
                if socket.send(text(&reply)).await.is_err() { break; }
            }
            event = events.next() => {
                let Some(event) = event else { break };
                if let Some(frame) = event_frame(event, &filter)
                    && socket.send(frame).await.is_err()
                {
                    break;
                }
            }
        }
    }
    worker.abort();
}

/// One message's reply frame: the function's status, content type and body (as text when it
/// is UTF-8, else base64), or the error that kept it from running.
async fn run_message(
    state: &AppState,
    project: &Project,
    agent: AgentId,
    client: SocketAddr,
    body: Vec<u8>,
) -> Value {
    let reply = match state
        .agents
        .exchange(project, agent, body.into(), None, client)
        .await
    {
        Ok(reply) => reply,
        Err(error) => {
            return json!({"type": "error", "code": error.code, "message": error.message});
        }
    };
    let mut frame = json!({
        "type": "reply",
        "status": reply.status.as_u16(),
        "content_type": reply.content_type,
    });
    match std::str::from_utf8(&reply.body) {
        Ok(text) => frame["body"] = Value::from(text),
        Err(_) => {
            frame["body_base64"] =
                Value::from(base64::engine::general_purpose::STANDARD.encode(&reply.body));
        }
    }
    frame
}
