//! The WebSockets: `/ws/events` as a [`Stream`] of [`EventFrame`]s, and `/ws/agents/{agent}`
//! as an [`AgentSession`] that sends messages and streams replies and the agent's events.

use std::pin::Pin;
use std::task::{Context, Poll};

use base64::Engine as _;
use bytes::Bytes;
use futures::{SinkExt as _, Stream};
use http::header::{AUTHORIZATION, USER_AGENT};
use http::{HeaderValue, StatusCode};
use serde_json::{Map, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::error::ClientError;
use crate::events::{parse_event, parse_frame};
use crate::transport::{USER_AGENT_VALUE, join};
use crate::{Client, Event, EventFilter, EventFrame, Result};

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// An open socket, and what its errors name.
struct Connection {
    socket: Socket,
    url: String,
    /// The largest frame read.
    limit: usize,
}

impl Connection {
    fn failed(&self, error: tungstenite::Error) -> ClientError {
        match error {
            tungstenite::Error::Capacity(_) => ClientError::TooLarge {
                url: self.url.clone(),
                limit: self.limit,
            },
            other => ClientError::WebSocket {
                url: self.url.clone(),
                source: other.into(),
            },
        }
    }

    fn unexpected(&self, reason: String) -> ClientError {
        ClientError::WebSocket {
            url: self.url.clone(),
            source: reason.into(),
        }
    }

    /// The next text frame (`Some(None)` for a frame to skip: a ping, a pong), the end, or
    /// an error.
    fn poll_text(&mut self, context: &mut Context<'_>) -> Poll<Option<Result<Option<String>>>> {
        match Pin::new(&mut self.socket).poll_next(context) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(None) | Poll::Ready(Some(Ok(Message::Close(_)))) => Poll::Ready(None),
            Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(self.failed(error)))),
            Poll::Ready(Some(Ok(Message::Text(text)))) => {
                Poll::Ready(Some(Ok(Some(text.as_str().to_owned()))))
            }
            Poll::Ready(Some(Ok(Message::Binary(_)))) => Poll::Ready(Some(Err(self.unexpected(
                "the coordinator sent a binary frame; its frames are JSON text".to_owned(),
            )))),
            Poll::Ready(Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_)))) => {
                Poll::Ready(Some(Ok(None)))
            }
        }
    }

    async fn close(mut self) -> Result<()> {
        match self.socket.close(None).await {
            Ok(()) => Ok(()),
            Err(error) => Err(self.failed(error)),
        }
    }
}

/// A project's events, live, as [`Client::events`] opened them. Ends when the coordinator
/// closes the socket; an error item (a broken connection, a frame that is not an event) may
/// be followed by more items.
pub struct EventStream {
    connection: Connection,
    last_id: Option<String>,
}

impl EventStream {
    /// The id of the last event read: [`EventFilter::after`] for a new stream that picks up
    /// where this one stopped.
    pub fn last_id(&self) -> Option<&str> {
        self.last_id.as_deref()
    }

    /// Closes the socket.
    pub async fn close(self) -> Result<()> {
        self.connection.close().await
    }
}

impl Stream for EventStream {
    type Item = Result<EventFrame>;

    fn poll_next(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let stream = self.get_mut();
        loop {
            let text = match stream.connection.poll_text(context) {
                Poll::Ready(Some(Ok(text))) => text,
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            let Some(text) = text else { continue };
            let frame = parse_frame(&text).map_err(|reason| stream.connection.unexpected(reason));
            if let Ok(EventFrame::Event(event)) = &frame {
                stream.last_id = Some(event.id.clone());
            }
            return Poll::Ready(Some(frame));
        }
    }
}

/// What an agent's socket sends.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentFrame {
    /// The function's answer to a message, in the order the messages were sent.
    Reply(AgentReply),
    /// Why a message did not run (the agent is suspended, its mailbox full…).
    Error {
        /// The coordinator's error code.
        code: String,
        /// What went wrong, for people.
        message: String,
    },
    /// One of the agent's events.
    Event(Event),
    /// Events of the agent went by that this socket will not see.
    Missed {
        /// What was missed, for people.
        message: String,
    },
}

/// The function's answer to a message sent on an agent's socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentReply {
    /// Its status.
    pub status: StatusCode,
    /// Its content type.
    pub content_type: Option<String>,
    /// Its body.
    pub body: Bytes,
}

/// A conversation with an agent over `/ws/agents/{agent}`: each message sent runs, in order,
/// and its reply comes back as an [`AgentFrame::Reply`] (or [`AgentFrame::Error`]), between
/// the agent's events.
pub struct AgentSession {
    connection: Connection,
}

impl AgentSession {
    /// Sends a message (at most 1 MiB) to the agent; its reply comes on the stream.
    pub async fn send(&mut self, message: impl Into<Bytes>) -> Result<()> {
        let connection = &mut self.connection;
        match connection
            .socket
            .send(Message::Binary(message.into()))
            .await
        {
            Ok(()) => Ok(()),
            Err(error) => Err(connection.failed(error)),
        }
    }

    /// Closes the socket.
    pub async fn close(self) -> Result<()> {
        self.connection.close().await
    }
}

impl Stream for AgentSession {
    type Item = Result<AgentFrame>;

    fn poll_next(self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let session = self.get_mut();
        loop {
            let text = match session.connection.poll_text(context) {
                Poll::Ready(Some(Ok(text))) => text,
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            let Some(text) = text else { continue };
            let frame =
                parse_agent_frame(&text).map_err(|reason| session.connection.unexpected(reason));
            return Poll::Ready(Some(frame));
        }
    }
}

/// The agent socket's frame `text`, or why it is not one.
pub(crate) fn parse_agent_frame(text: &str) -> Result<AgentFrame, String> {
    let mut object: Map<String, Value> =
        serde_json::from_str(text).map_err(|error| format!("not a JSON object: {error}"))?;
    let mut text_field = |name: &str| match object.remove(name) {
        Some(Value::String(text)) => Some(text),
        _ => None,
    };
    match text_field("type").as_deref() {
        Some("reply") => {
            let body = match (text_field("body"), text_field("body_base64")) {
                (Some(text), _) => Bytes::from(text),
                (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map(Bytes::from)
                    .map_err(|error| format!("a reply's body_base64: {error}"))?,
                (None, None) => Bytes::new(),
            };
            let content_type = text_field("content_type");
            let status = object
                .get("status")
                .and_then(Value::as_u64)
                .and_then(|status| u16::try_from(status).ok())
                .and_then(|status| StatusCode::from_u16(status).ok())
                .ok_or("a reply has an HTTP status")?;
            Ok(AgentFrame::Reply(AgentReply {
                status,
                content_type,
                body,
            }))
        }
        Some("error") => Ok(AgentFrame::Error {
            code: text_field("code").unwrap_or_default(),
            message: text_field("message").unwrap_or_default(),
        }),
        Some("missed") => Ok(AgentFrame::Missed {
            message: text_field("message").unwrap_or_default(),
        }),
        Some(kind) => {
            object.insert("type".to_owned(), Value::String(kind.to_owned()));
            parse_event(object).map(AgentFrame::Event)
        }
        None => Err("a frame has a string `type`".to_owned()),
    }
}

impl Client {
    /// Opens `/ws/events` for `project`: once this returns, every event that matches `filter`
    /// is streamed (and with [`EventFilter::after`], the kept ones after it first). Connecting
    /// is within the client's time limit; the stream itself has none.
    pub async fn events(&self, project: &str, filter: &EventFilter) -> Result<EventStream> {
        let mut query = vec![("project", project.to_owned())];
        if !filter.types.is_empty() {
            query.push(("type", filter.types.join(",")));
        }
        for (name, value) in [
            ("function", &filter.function),
            ("agent", &filter.agent),
            ("after", &filter.after),
        ] {
            if let Some(value) = value {
                query.push((name, value.clone()));
            }
        }
        let connection = self.connect(&["ws", "events"], &query).await?;
        Ok(EventStream {
            connection,
            last_id: None,
        })
    }

    /// Opens `/ws/agents/{agent}` (developer and up): a conversation with the agent.
    pub async fn agent_session(&self, project: &str, agent_id: &str) -> Result<AgentSession> {
        let query = [("project", project.to_owned())];
        let connection = self.connect(&["ws", "agents", agent_id], &query).await?;
        Ok(AgentSession { connection })
    }

    /// The WebSocket URL of the route made of `segments` (each escaped) with `query`.
    pub(crate) fn socket_url(&self, segments: &[&str], query: &[(&str, String)]) -> String {
        let http_url = join(&self.base, segments);
        let mut url = match http_url.strip_prefix("http://") {
            Some(rest) => format!("ws://{rest}"),
            None => http_url,
        };
        if !query.is_empty() {
            url.push('?');
            url.push_str(
                &url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(query)
                    .finish(),
            );
        }
        url
    }

    /// Connects to a WebSocket route, with the token in `Authorization` (never in the URL,
    /// which proxies and logs keep).
    async fn connect(&self, segments: &[&str], query: &[(&str, String)]) -> Result<Connection> {
        let url = self.socket_url(segments, query);
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|error| ClientError::InvalidRequest(format!("{url:?}: {error}")))?;
        let headers = request.headers_mut();
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        if let Some(token) = &self.token {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                ClientError::InvalidRequest("the token is not a header value".to_owned())
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let config = WebSocketConfig::default()
            .max_message_size(Some(self.max_response_bytes))
            .max_frame_size(Some(self.max_response_bytes));
        let connecting = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
        let connected = tokio::time::timeout(self.timeout, connecting)
            .await
            .map_err(|_| ClientError::Timeout {
                url: url.clone(),
                limit: self.timeout,
            })?;
        match connected {
            Ok((socket, _)) => Ok(Connection {
                socket,
                url,
                limit: self.max_response_bytes,
            }),
            Err(tungstenite::Error::Http(response)) => Err(ClientError::from_answer(
                response.status(),
                response.headers(),
                response.body().as_deref().unwrap_or_default(),
            )),
            Err(tungstenite::Error::Io(error)) => Err(ClientError::Connect {
                url,
                source: error.into(),
            }),
            Err(error) => Err(ClientError::WebSocket {
                url,
                source: error.into(),
            }),
        }
    }
}

#[cfg(test)]
mod tests;
