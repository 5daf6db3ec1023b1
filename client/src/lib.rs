//! The typed client of the SirsiNexus coordinator: one method per route of its REST API, the
//! event stream and agent conversations over its WebSockets, and errors that say what to do
//! next. The `nexus` CLI is a thin layer over it and the end-to-end tests drive the platform
//! with it, the way Quickwit's CLI and tests use `quickwit-rest-client`.
//!
//! It deliberately mirrors the API's JSON with its own types instead of depending on the
//! coordinator's crates, so that it builds without the server and keeps working against a
//! newer coordinator: unknown fields are ignored, and unknown values of closed sets (roles,
//! states, event types) are kept in an `Other`/`Unknown` variant instead of failing.
//!
//! It is not a retrying or caching client: each method is one request with one time limit,
//! and what to do about a failure is the caller's choice ([`ClientError::hint`] suggests one).
//! Plain `http://` only: TLS is left to a proxy in front of the coordinator for now.
//!
//! ```no_run
//! # async fn example() -> nexus_client::Result<()> {
//! use nexus_client::{Client, DeployAlias, FunctionRequest, Upload};
//!
//! let client = Client::new("http://127.0.0.1:8080")?;
//! let tokens = client.login("ada@example.com", "correct horse").await?;
//! let client = client.with_token(tokens.access_token);
//! let component = std::fs::read("hello.wasm").unwrap_or_default();
//! client
//!     .deploy("shop", "hello", Upload::Component(component.into()), DeployAlias::Live)
//!     .await?;
//! let answer = client
//!     .invoke("shop", "hello", None, FunctionRequest::get("/"))
//!     .await?;
//! println!("{} {:?}", answer.status, answer.body);
//! # Ok(())
//! # }
//! ```

#![deny(missing_docs)]

#[macro_use]
mod macros;

mod agents;
mod api_keys;
mod auth;
mod error;
mod events;
mod functions;
mod health;
mod invocations;
mod nodes;
mod projects;
mod rollouts;
mod schedules;
mod sockets;
#[cfg(test)]
mod test_server;
mod transport;

use std::fmt;
use std::time::Duration;

pub use self::agents::{
    Agent, AgentMessage, AgentPage, AgentState, ContextValue, NewAgent, PutCondition, PutOptions,
};
pub use self::api_keys::{ApiKey, CreatedApiKey};
pub use self::auth::{Registered, Session, Tokens};
pub use self::error::ClientError;
pub use self::events::{
    AgentChanged, AgentCreated, AgentDeleted, Event, EventFilter, EventFrame, EventKind,
    FunctionDeployed, GuestLog, InvocationDead, InvocationFinished, InvocationQueued,
    InvocationStarted, LogStream, NodeJoined, NodeLost, UnknownEvent,
};
pub use self::functions::{
    Alias, AsyncRetry, AzureTarget, Canary, CloudTargets, DeployAlias, Deployed, Function,
    FunctionChange, GcpTarget, LambdaTarget, Placement, PreviousTarget, Priority, Upload, Version,
};
pub use self::invocations::{
    Accepted, Attempt, AttemptStatus, DeadLetters, FunctionRequest, FunctionResponse, Invocation,
    InvocationFilter, InvocationPage, InvocationResult, InvocationStatus,
};
pub use self::nodes::{Drained, Node, NodeState};
pub use self::projects::{AddedMember, Member, Project, Role};
pub use self::rollouts::{NewRollout, Rollout};
pub use self::schedules::{NewSchedule, Schedule, ScheduleTime};
pub use self::sockets::{AgentFrame, AgentReply, AgentSession, EventStream};
/// The `http` crate, whose `StatusCode`, `Method` and `HeaderMap` appear in this API.
pub use http;

/// What every method returns.
pub type Result<T, E = ClientError> = std::result::Result<T, E>;

/// The time limit of a call, unless [`Client::with_timeout`] sets another.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The time limit of a deploy, unless [`Client::with_upload_timeout`] sets another: an upload
/// of up to the coordinator's 64 MiB limit, and the compilation the coordinator waits for
/// before it answers.
pub const DEFAULT_UPLOAD_TIMEOUT: Duration = Duration::from_secs(600);

/// The largest answer read, unless [`Client::with_max_response_bytes`] sets another. Listings
/// are paged well below it; a function's answer can be larger, and is refused.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// A client of one coordinator, calling as the holder of one token (or none).
///
/// Cheap to clone: clones share one connection pool. Methods that act as someone send the
/// token as `Authorization: Bearer …`; the HTTP trigger ([`Client::invoke`]) never gets it,
/// because the function it runs would see it.
#[derive(Clone)]
pub struct Client {
    /// `http://host:port[/prefix]`, without a trailing slash.
    base: String,
    token: Option<String>,
    timeout: Duration,
    upload_timeout: Duration,
    max_response_bytes: usize,
    transport: transport::Transport,
}

impl Client {
    /// A client of the coordinator at `base_url` (`http://host:port`, optionally with a path
    /// prefix when a proxy mounts the coordinator under one), without a token.
    ///
    /// Fails if `base_url` is not an absolute `http://` URL without a query or fragment.
    pub fn new(base_url: &str) -> Result<Self> {
        Ok(Self {
            base: transport::normalize_base(base_url)?,
            token: None,
            timeout: DEFAULT_TIMEOUT,
            upload_timeout: DEFAULT_UPLOAD_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            transport: transport::Transport::new(),
        })
    }

    /// Calls as the holder of `token`: a user's access token (from [`Client::login`]), a
    /// project API key (`nxk_…`), or for [`Client::list_nodes`] and [`Client::drain_node`]
    /// the cluster's join token.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// Gives every call but deploys (see [`Client::with_upload_timeout`]) and node drains
    /// this time limit, from sending the request to reading the whole answer.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Gives deploys this time limit.
    #[must_use]
    pub fn with_upload_timeout(mut self, timeout: Duration) -> Self {
        self.upload_timeout = timeout;
        self
    }

    /// Refuses answers (and WebSocket frames) larger than `bytes`.
    #[must_use]
    pub fn with_max_response_bytes(mut self, bytes: usize) -> Self {
        self.max_response_bytes = bytes;
        self
    }

    /// The coordinator's URL, normalized (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The token calls are made with, if any.
    pub fn token(&self) -> Option<&str> {
        self.token.as_deref()
    }
}

impl fmt::Debug for Client {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Client")
            .field("base", &self.base)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .field("upload_timeout", &self.upload_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}
