//! Dispatch: getting an invocation run somewhere. The HTTP trigger decides *what* runs (alias →
//! version); a [`Dispatch`] decides *where* and runs it. The embedded platform's dispatch runs
//! the version in process; a cluster's sends it to an edge node. Both take the same
//! [`Invocation`] and answer with the function's response or an [`ApiError`].

use std::collections::BTreeMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response};
use bytes::Bytes;
use nexus_proto::{Digest, ResolvedApp};
use nexus_runtime::LogSink;
use nexus_store::{AgentId, Function, FunctionVersion, FunctionVersionId, ProjectId};

mod observed;

pub use self::observed::{AsyncInvocationId, ObservedDispatch, ran_on};

use crate::cloud::Placement;
use crate::cluster::Priority;
use crate::error::ApiError;
use crate::functions::priority_of;

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
    /// Where the function runs and the clouds it may use; a property of the function too.
    pub placement: Arc<Placement>,
    /// The digest of the resolved app record: a cloud bundle of this version holds the same.
    pub app_digest: Digest,
    /// Edge nodes that keep the version loaded while an alias points at it; a property of
    /// the function.
    pub min_warm: u32,
}

/// What a [`Target`] carries of its function rather than of its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionSettings {
    /// The priority class of requests that name none.
    pub priority: Priority,
    /// The labels a node must carry.
    pub node_selector: Arc<BTreeMap<String, String>>,
    /// Where it runs.
    pub placement: Arc<Placement>,
    /// Nodes that keep its aliased versions warm.
    pub min_warm: u32,
}

impl FunctionSettings {
    /// The settings of `function` as stored.
    pub fn of(function: &Function) -> Self {
        Self {
            priority: priority_of(function),
            node_selector: Arc::new(function.node_selector.clone()),
            placement: Arc::new(Placement::of_function(function)),
            min_warm: u32::try_from(function.min_warm).unwrap_or(0),
        }
    }
}

impl Target {
    /// The target of a stored version of `function` in `project_id`, with the function's
    /// `settings`.
    pub fn of_version(
        project_id: ProjectId,
        function: &str,
        settings: &FunctionSettings,
        version: FunctionVersion,
    ) -> Result<Self, ApiError> {
        let app: ResolvedApp =
            serde_json::from_value(version.spec).map_err(|error| ApiError::internal(&error))?;
        Ok(Self::new(
            version.id,
            project_id,
            function,
            version.version,
            Arc::new(app),
            settings,
        ))
    }

    /// Version `version` (id `version_id`) of `function` in `project_id`, running `app`.
    pub fn new(
        version_id: FunctionVersionId,
        project_id: ProjectId,
        function: &str,
        version: i64,
        app: Arc<ResolvedApp>,
        settings: &FunctionSettings,
    ) -> Self {
        let app_digest = Digest::of(&serde_json::to_vec(app.as_ref()).unwrap_or_default());
        Self {
            version_id,
            project_id,
            function: function.to_owned(),
            version,
            app,
            priority: settings.priority,
            node_selector: Arc::clone(&settings.node_selector),
            placement: Arc::clone(&settings.placement),
            app_digest,
            min_warm: settings.min_warm,
        }
    }

    /// This version with the function's `settings` as they now are.
    pub fn with_settings(&self, settings: &FunctionSettings) -> Self {
        Self {
            priority: settings.priority,
            node_selector: Arc::clone(&settings.node_selector),
            placement: Arc::clone(&settings.placement),
            min_warm: settings.min_warm,
            ..self.clone()
        }
    }

    /// Whether this target carries `settings`.
    pub fn has_settings(&self, settings: &FunctionSettings) -> bool {
        self.priority == settings.priority
            && self.node_selector == settings.node_selector
            && self.placement == settings.placement
            && self.min_warm == settings.min_warm
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
    /// Where the guest's stdout and stderr go once its instance has ended (runtimes the
    /// coordinator reaches hand them over; clouds keep them in their own logs).
    pub logs: Option<LogSink>,
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

    /// Keeps `target` loaded, however long it idles, on as many nodes as its function's
    /// `min_warm` asks, for `period`; called again before that runs out while it is wanted.
    fn keep_warm(&self, target: Arc<Target>, period: Duration) -> DispatchFuture<()>;
}

/// A request body: kept whole when small (it can be sent again, or elsewhere), streamed
/// otherwise.
pub(crate) enum Replayable {
    Whole(Bytes),
    Streaming(Body),
}

impl Replayable {
    /// Reads up to `limit` bytes of `body`: all of it when it is that small.
    pub(crate) async fn read(mut body: Body, limit: usize) -> Result<Self, ApiError> {
        use futures::StreamExt as _;
        use http_body::Body as _;
        use http_body_util::BodyExt as _;
        if body.is_end_stream() {
            return Ok(Self::Whole(Bytes::new()));
        }
        let mut chunks = Vec::new();
        let mut size = 0;
        while let Some(frame) = body.frame().await {
            let frame =
                frame.map_err(|error| ApiError::bad_request(format!("request body: {error}")))?;
            if let Ok(data) = frame.into_data() {
                size += data.len();
                chunks.push(data);
                if size > limit {
                    let read = futures::stream::iter(chunks.into_iter().map(Ok::<_, axum::Error>));
                    let rest = read.chain(body.into_data_stream());
                    return Ok(Self::Streaming(Body::from_stream(rest)));
                }
            }
        }
        Ok(Self::Whole(match chunks.len() {
            0 => Bytes::new(),
            1 => chunks.swap_remove(0),
            _ => chunks.concat().into(),
        }))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Version 1 of a function `f` with an empty app, on the edge.
    pub(crate) fn target() -> Arc<Target> {
        let app = ResolvedApp {
            name: "f".to_owned(),
            version: None,
            variables: BTreeMap::new(),
            components: BTreeMap::new(),
            http_triggers: Vec::new(),
        };
        let settings = FunctionSettings {
            priority: Priority::default(),
            node_selector: Arc::default(),
            placement: Arc::default(),
            min_warm: 0,
        };
        Arc::new(Target::new(
            FunctionVersionId::new(),
            ProjectId::new(),
            "f",
            1,
            Arc::new(app),
            &settings,
        ))
    }
}
