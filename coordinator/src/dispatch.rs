//! Dispatch: getting an invocation run somewhere. The HTTP trigger decides *what* runs (alias →
//! version); a [`Dispatch`] decides *where* and runs it. The embedded platform's dispatch runs
//! the version in process; a cluster's sends it to an edge node. Both take the same
//! [`Invocation`] and answer with the function's response or an [`ApiError`].

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, Response};
use nexus_proto::ResolvedApp;
use nexus_store::{AgentId, FunctionVersion, FunctionVersionId, ProjectId};

use crate::cluster::Priority;
use crate::error::ApiError;

/// One immutable function version, as a runtime needs it, with its function's priority class
/// and node selector.
#[derive(Debug, Clone)]
pub struct Target {
    /// The version's id: the same id always means the same record and component bytes.
    pub version_id: FunctionVersionId,
    /// The project the function belongs to: its tenant.
    pub project_id: ProjectId,
    /// The function's name.
    pub function: String,
    /// The version number.
    pub version: i64,
    /// The resolved app the version runs.
    pub app: Arc<ResolvedApp>,
    /// The function's priority class, for requests that name none. A property of the function,
    /// not of the version: it changes without a new version.
    pub priority: Priority,
    /// The labels a node must carry, each with exactly this value, to run the function (empty:
    /// any node). Like the priority class, a property of the function that changes without a
    /// new version; shared, so that a target stays cheap to clone.
    pub node_selector: Arc<BTreeMap<String, String>>,
}

impl Target {
    /// The target of a stored version of `function` in `project_id`, whose priority class is
    /// `priority` and node selector `node_selector`.
    pub fn of_version(
        project_id: ProjectId,
        function: &str,
        priority: Priority,
        node_selector: Arc<BTreeMap<String, String>>,
        version: FunctionVersion,
    ) -> Result<Self, ApiError> {
        let app: ResolvedApp =
            serde_json::from_value(version.spec).map_err(|error| ApiError::internal(&error))?;
        Ok(Self {
            version_id: version.id,
            project_id,
            function: function.to_owned(),
            version: version.version,
            app: Arc::new(app),
            priority,
            node_selector,
        })
    }
}

/// A request for a function version.
pub struct Invocation {
    /// What runs.
    pub target: Arc<Target>,
    /// The path prefix the function is mounted under (`/{project}/{function}`): the app sees
    /// the request path without it.
    pub prefix: String,
    /// The client's address.
    pub client: SocketAddr,
    /// The client's request, as received.
    pub request: Request<Body>,
    /// The agent it runs for: the function then opens that agent's key-value stores instead
    /// of the project's.
    pub agent: Option<AgentId>,
}

/// What a dispatch answers: the function's response, or why it could not run.
pub type DispatchFuture<T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send>>;

/// Runs invocations.
pub trait Dispatch: Send + Sync {
    /// Runs `invocation` and returns the function's response, streamed.
    fn invoke(&self, invocation: Invocation) -> DispatchFuture<Response<Body>>;

    /// Readies `target` for its first request (fetches and compiles its components, loads the
    /// app) so that a newly deployed version answers at once.
    fn prepare(&self, target: Arc<Target>) -> DispatchFuture<()>;
}
