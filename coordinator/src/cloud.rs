//! Cloud targets: functions whose bundle runs as an AWS Lambda function (`nexus-edge lambda`),
//! invoked with the AWS SDK and the standard credential chain, as an Azure function app
//! (`nexus-edge azure`) called over HTTPS with its key from the secrets store, or as a Cloud
//! Run service (`nexus-edge cloud-run`) called with an ID token minted from a service
//! account's key in the secrets store; where a function's placement ([`Placement`]) sends them
//! ([`PlacedDispatch`]).
//!
//! A cloud target gets the same [`CloudInvoke`] an edge node would get as an invocation head
//! and body, and answers with a [`CloudResponse`]; errors say whether any function code ran,
//! so that a caller knows whether it may run the request somewhere else.

mod dispatch;
mod gcp;
mod http;
pub mod lambda;
mod placement;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, Method, Uri};
use bytes::Bytes;
use nexus_proto::cloud::CloudResponse;
use nexus_store::AgentId;

use crate::dispatch::Target;

pub use self::dispatch::{MAX_CLOUD_REQUEST_BYTES, PlacedDispatch};
pub use self::lambda::{Credentials, LambdaConfig, LambdaTarget};
pub use self::placement::{
    AzurePlacement, CloudTarget, CloudTargets, GcpPlacement, LambdaPlacement, Placement,
    PlacementError, PlacementMode,
};

/// Why a cloud target gave no response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudError {
    /// The request never reached the function (no connection, no credentials, throttled, no
    /// such function): nothing ran, so it may be sent elsewhere.
    #[error("the cloud target was not reached: {0}")]
    NotReached(String),
    /// The function failed outside the app (the host crashed, ran out of time or memory):
    /// the app may have run.
    #[error("the cloud function failed: {0}")]
    Function(String),
    /// The function answered with something that is not a response.
    #[error("the cloud function's answer is not a response: {0}")]
    BadAnswer(String),
}

impl CloudError {
    /// Whether no function code ran, so the invocation may go to another target whatever
    /// its method.
    pub fn ran_nothing(&self) -> bool {
        matches!(self, Self::NotReached(_))
    }
}

/// The result of a synchronous cloud invocation.
pub type CloudResult = Result<CloudResponse, CloudError>;

/// An invocation with its body read, as a cloud takes it.
pub(crate) struct CloudRequest {
    pub(crate) target: Arc<Target>,
    pub(crate) method: Method,
    pub(crate) uri: Uri,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
    /// The mount the client reached the function under.
    pub(crate) prefix: String,
    pub(crate) client: SocketAddr,
    pub(crate) agent: Option<AgentId>,
}
