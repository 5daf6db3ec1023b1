//! Invocations: running functions (in [`invoke`]), and the records of asynchronous ones:
//! `GET /v1/invocations/{id}`, `GET /v1/projects/{p}/invocations` (the dead-letter list with
//! `status=dead`), redrive and purge.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use http::Method;
use serde::{Deserialize, Serialize};

use crate::error::ClientError;
use crate::{Client, Result};

mod invoke;

pub use self::invoke::{Accepted, FunctionRequest, FunctionResponse};

/// The header asking for an asynchronous answer (RFC 7240).
pub(crate) const PREFER: &str = "prefer";
/// The `Prefer` value asking for one.
pub(crate) const RESPOND_ASYNC: &str = "respond-async";
/// The header naming an idempotency key.
pub(crate) const IDEMPOTENCY_KEY: &str = "idempotency-key";

open_enum! {
    /// Where an asynchronous invocation stands.
    pub enum InvocationStatus {
        /// Waiting for its next attempt.
        Queued = "queued",
        /// An attempt is running.
        Running = "running",
        /// The function answered 2xx or 3xx.
        Succeeded = "succeeded",
        /// The function answered 4xx: retrying would not help.
        Failed = "failed",
        /// It used up its attempts or its age: on the dead-letter list.
        Dead = "dead",
    }
}

open_enum! {
    /// How one attempt of an asynchronous invocation went.
    pub enum AttemptStatus {
        /// Still running.
        Running = "running",
        /// The function answered 2xx or 3xx.
        Succeeded = "succeeded",
        /// The function answered 4xx.
        Failed = "failed",
        /// It could not run, or the function answered 5xx.
        Error = "error",
        /// Its coordinator stopped renewing its lease.
        Lost = "lost",
    }
}

/// An asynchronous invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invocation {
    /// Its id.
    pub id: String,
    /// Its project's id.
    pub project_id: String,
    /// The function.
    pub function: String,
    /// The version it runs (picked when it was accepted).
    pub version: i64,
    /// The agent it is a message to.
    pub agent: Option<String>,
    /// Where it stands.
    pub status: InvocationStatus,
    /// The key it was accepted with.
    pub idempotency_key: Option<String>,
    /// Attempts made so far.
    pub attempts: i32,
    /// Attempts allowed.
    pub max_attempts: i32,
    /// When the next attempt may start (queued) or started (RFC 3339).
    pub run_at: String,
    /// No attempt starts after this (RFC 3339).
    pub expires_at: String,
    /// Why the latest attempt failed.
    pub error: Option<String>,
    /// When it was accepted (RFC 3339).
    pub created_at: String,
    /// When it last changed (RFC 3339).
    pub updated_at: String,
    /// When it finished (RFC 3339).
    pub finished_at: Option<String>,
    /// Each attempt, first first; only from [`Client::get_invocation`].
    #[serde(default)]
    pub attempt_log: Option<Vec<Attempt>>,
    /// The function's latest answer; only from [`Client::get_invocation`].
    #[serde(default)]
    pub result: Option<InvocationResult>,
}

/// One attempt of an asynchronous invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    /// Its number, from 1.
    pub attempt: i32,
    /// The node it ran on.
    pub node: Option<String>,
    /// How it went.
    pub status: AttemptStatus,
    /// The function's HTTP status, when it answered.
    pub http_status: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it finished (RFC 3339).
    pub finished_at: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: Option<i64>,
    /// What the guest wrote to stdout (capped by its runtime), when it wrote anything.
    #[serde(default)]
    pub stdout: Option<String>,
    /// What the guest wrote to stderr.
    #[serde(default)]
    pub stderr: Option<String>,
    /// Whether its runtime cut either stream at the cap.
    #[serde(default)]
    pub output_truncated: bool,
}

/// The function's answer to an asynchronous invocation, as kept (the body cut at 1 MiB).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationResult {
    /// The function's HTTP status.
    pub status: i32,
    /// Its headers (those that are text).
    pub headers: BTreeMap<String, String>,
    /// The body, when it is UTF-8.
    pub body: Option<String>,
    /// The body base64-encoded, when it is not UTF-8.
    pub body_base64: Option<String>,
    /// The whole body's size.
    pub size: i64,
    /// Whether the body kept is cut short.
    pub truncated: bool,
}

impl InvocationResult {
    /// The body kept, as bytes, whichever way it was sent.
    pub fn body_bytes(&self) -> Result<Bytes> {
        match (&self.body, &self.body_base64) {
            (Some(text), _) => Ok(Bytes::from(text.clone())),
            (None, Some(encoded)) => base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map(Bytes::from)
                .map_err(|error| ClientError::bad_response("body_base64", error.to_string())),
            (None, None) => Ok(Bytes::new()),
        }
    }
}

/// A page of a project's invocations, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvocationPage {
    /// The invocations (without attempts or result).
    pub invocations: Vec<Invocation>,
    /// Pass as `before` for the next page; `None` on the last one.
    pub next: Option<String>,
}

/// Which invocations [`Client::list_invocations`] lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvocationFilter {
    /// Only those with this status.
    pub status: Option<InvocationStatus>,
    /// Only this function's.
    pub function: Option<String>,
    /// The `next` of the previous page.
    pub before: Option<String>,
    /// Invocations per page, 1 to 1000 (default 50).
    pub limit: Option<u32>,
}

/// Which dead invocations a redrive or a purge takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DeadLetters {
    /// Only this function's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
    /// Only these ids; all (up to 1,000 at a time) when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ids: Option<Vec<String>>,
}

#[derive(Serialize, Deserialize)]
struct Redriven {
    redriven: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct Purged {
    purged: u64,
}

impl Client {
    /// `GET /v1/invocations/{id}`: an invocation with every attempt and the function's latest
    /// answer (any member of its project).
    pub async fn get_invocation(&self, id: &str) -> Result<Invocation> {
        let call = self.call(Method::GET, &["v1", "invocations", id]);
        self.send(call).await?.json()
    }

    /// `GET /v1/projects/{project}/invocations`: a page of the project's invocations, newest
    /// first.
    pub async fn list_invocations(
        &self,
        project: &str,
        filter: &InvocationFilter,
    ) -> Result<InvocationPage> {
        let call = self
            .call(Method::GET, &["v1", "projects", project, "invocations"])
            .query_opt("status", filter.status.as_ref())
            .query_opt("function", filter.function.as_deref())
            .query_opt("before", filter.before.as_deref())
            .query_opt("limit", filter.limit);
        self.send(call).await?.json()
    }

    /// A page of the project's dead-letter list: [`Client::list_invocations`] with the status
    /// `dead` (whatever `filter.status` says).
    pub async fn list_dead_letters(
        &self,
        project: &str,
        filter: &InvocationFilter,
    ) -> Result<InvocationPage> {
        let filter = InvocationFilter {
            status: Some(InvocationStatus::Dead),
            ..filter.clone()
        };
        self.list_invocations(project, &filter).await
    }

    /// `POST /v1/projects/{project}/invocations/dead/redrive`: queues dead invocations again,
    /// each with a fresh budget from its function's retry policy (developer and up); the ids
    /// queued.
    pub async fn redrive_dead_letters(
        &self,
        project: &str,
        which: &DeadLetters,
    ) -> Result<Vec<String>> {
        let segments = ["v1", "projects", project, "invocations", "dead", "redrive"];
        let call = self.call(Method::POST, &segments).json(which);
        Ok(self.send(call).await?.json::<Redriven>()?.redriven)
    }

    /// `POST /v1/projects/{project}/invocations/dead/purge`: deletes dead invocations
    /// (developer and up); how many.
    pub async fn purge_dead_letters(&self, project: &str, which: &DeadLetters) -> Result<u64> {
        let segments = ["v1", "projects", project, "invocations", "dead", "purge"];
        let call = self.call(Method::POST, &segments).json(which);
        Ok(self.send(call).await?.json::<Purged>()?.purged)
    }
}
