//! The coordinator's gRPC services, served on the API's listener (HTTP/2, `content-type:
//! application/grpc…`): the standard health service and server reflection, `SessionService`
//! and `AgentService` over the same domain services as the REST API, and the cluster's
//! `NodeService`.
//!
//! Like the REST handlers, the services here only translate: metadata and messages in,
//! domain calls, messages or a [`Status`] out. [`ApiError`] becomes a [`Status`] in one place,
//! below.

mod agents;
mod sessions;

use std::task::{Context, Waker};

use axum::http::header::CONTENT_TYPE;
use axum::http::{Request, StatusCode};
use nexus_proto::v1::agent_service_server::AgentServiceServer;
use nexus_proto::v1::session_service_server::SessionServiceServer;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::server::NamedService as _;
use tonic::service::Routes;
use tonic::{Code, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use crate::api::{AppState, REQUEST_ID, request_id_of};
use crate::error::ApiError;

/// The largest request message a service here decodes. Their requests hold a few ids at most.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// Whether `request` is a gRPC call (`application/grpc`, `application/grpc+proto`, …).
pub(crate) fn is_grpc<B>(request: &Request<B>) -> bool {
    request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/grpc"))
}

/// Every gRPC service the coordinator serves: `extra` (the cluster's), `SessionService`,
/// health, and reflection over every file of `proto/` and the health service. Called on the
/// runtime, once, before the listener serves.
pub(crate) fn routes(state: &AppState, extra: Option<Routes>) -> Routes {
    let sessions = SessionServiceServer::new(sessions::Sessions::new(state.clone()))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
    let agents = AgentServiceServer::new(agents::Agents::new(state.clone()))
        .max_decoding_message_size(agents::MAX_MESSAGE_BYTES);

    // The reporter starts with the server as a whole ("") serving.
    let (health, health_service) = tonic_health::server::health_reporter();
    set_serving(&health, SessionServiceServer::<sessions::Sessions>::NAME);
    set_serving(&health, AgentServiceServer::<agents::Agents>::NAME);

    let mut routes = extra
        .unwrap_or_default()
        .add_service(sessions)
        .add_service(agents)
        .add_service(health_service.max_decoding_message_size(MAX_MESSAGE_BYTES));
    match reflection().build_v1() {
        Ok(service) => {
            routes = routes.add_service(service.max_decoding_message_size(MAX_MESSAGE_BYTES));
        }
        Err(error) => tracing::error!(%error, "gRPC reflection v1 is not served"),
    }
    // grpcurl and older clients still ask v1alpha.
    match reflection().build_v1alpha() {
        Ok(service) => {
            routes = routes.add_service(service.max_decoding_message_size(MAX_MESSAGE_BYTES));
        }
        Err(error) => tracing::error!(%error, "gRPC reflection v1alpha is not served"),
    }
    routes
}

/// Reflection over our protos and the health service (the reflection service adds its own).
fn reflection() -> tonic_reflection::server::Builder<'static> {
    tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(nexus_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
}

/// Marks `service` serving. `routes` is synchronous, so it cannot await the reporter's lock;
/// nobody else holds that lock yet, so the update completes at its first poll (`unconstrained`,
/// so the task's cooperative budget cannot make it wait). Were it ever to wait, the runtime
/// finishes it.
fn set_serving(health: &HealthReporter, service: &'static str) {
    let health = health.clone();
    let mut update = Box::pin(tokio::task::unconstrained(async move {
        health
            .set_service_status(service, ServingStatus::Serving)
            .await;
    }));
    let mut context = Context::from_waker(Waker::noop());
    if update.as_mut().poll(&mut context).is_pending() {
        tokio::spawn(update);
    }
}

/// The token of `authorization: Bearer <token>`.
pub(crate) fn bearer(metadata: &MetadataMap) -> Result<&str, ApiError> {
    let value = metadata
        .get("authorization")
        .ok_or_else(|| ApiError::unauthenticated("missing authorization metadata"))?;
    value
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| ApiError::unauthenticated("expected `authorization: Bearer <token>`"))
}

/// The client's `x-request-id` when it is sane, otherwise a new one, as in REST.
pub(crate) fn request_id(metadata: &MetadataMap) -> String {
    request_id_of(&metadata.clone().into_headers())
}

/// The response or status, either carrying the request id.
pub(crate) fn answer<T>(
    outcome: Result<T, ApiError>,
    request_id: &str,
) -> Result<Response<T>, Status> {
    let request_id = MetadataValue::try_from(request_id).ok();
    match outcome {
        Ok(message) => {
            let mut response = Response::new(message);
            if let Some(request_id) = request_id {
                response.metadata_mut().insert(REQUEST_ID, request_id);
            }
            Ok(response)
        }
        Err(error) => {
            let mut status = Status::from(error);
            if let Some(request_id) = request_id {
                status.metadata_mut().insert(REQUEST_ID, request_id);
            }
            Err(status)
        }
    }
}

/// Appends the audit row of a mutating call, however it ended: `action` is the HTTP/2 request
/// it arrived as (`POST /<package>.<Service>/<Method>`), as REST rows name theirs.
pub(crate) async fn audit(
    state: &AppState,
    actor: Option<String>,
    action: &str,
    target: String,
    outcome: Result<(), &ApiError>,
    request_id: &str,
) {
    let slot = crate::audit::AuditSlot::new(action.to_owned(), target, Some(request_id.to_owned()));
    if let Some(actor) = actor {
        slot.set_actor(actor);
    }
    let status = outcome.map_or_else(|error| error.status, |()| StatusCode::OK);
    crate::audit::close(&state.store, &slot, status).await;
}

/// The gRPC code for an API error's HTTP status.
fn code_of(status: StatusCode) -> Code {
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => Code::InvalidArgument,
        StatusCode::UNAUTHORIZED => Code::Unauthenticated,
        StatusCode::FORBIDDEN => Code::PermissionDenied,
        StatusCode::NOT_FOUND => Code::NotFound,
        StatusCode::CONFLICT => Code::AlreadyExists,
        StatusCode::PRECONDITION_FAILED => Code::FailedPrecondition,
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => Code::ResourceExhausted,
        StatusCode::SERVICE_UNAVAILABLE => Code::Unavailable,
        StatusCode::GATEWAY_TIMEOUT => Code::DeadlineExceeded,
        _ => Code::Internal,
    }
}

/// The one mapping from API errors to gRPC statuses. The message is the one REST shows (5xx
/// messages are already free of internals); a retry delay goes in `retry-after`, as in REST.
impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        let mut metadata = MetadataMap::new();
        if let Some(retry_after) = error.retry_after {
            metadata.insert(
                "retry-after",
                MetadataValue::from(retry_after.as_secs().max(1)),
            );
        }
        // A conflict with the target's state rather than with another name.
        let code = match error.code {
            "agent_suspended" => Code::FailedPrecondition,
            _ => code_of(error.status),
        };
        Status::with_metadata(code, error.message, metadata)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn api_errors_keep_their_kind_and_message() {
        let cases = [
            (ApiError::bad_request("bad"), Code::InvalidArgument),
            (ApiError::invalid_component("bad"), Code::InvalidArgument),
            (ApiError::unauthenticated("who"), Code::Unauthenticated),
            (ApiError::forbidden("no"), Code::PermissionDenied),
            (ApiError::not_found("session"), Code::NotFound),
            (ApiError::conflict("taken"), Code::AlreadyExists),
            (ApiError::too_large("big"), Code::ResourceExhausted),
            (ApiError::unavailable("down"), Code::Unavailable),
        ];
        for (error, code) in cases {
            let message = error.message.clone();
            let status = Status::from(error);
            assert_eq!((status.code(), status.message()), (code, message.as_str()));
        }
    }

    #[test]
    fn internal_errors_say_nothing_of_their_cause() {
        let cause = std::io::Error::other("disk at /var/secret failed");
        let status = Status::from(ApiError::internal(&cause));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret"), "{}", status.message());
    }

    #[test]
    fn overload_keeps_its_retry_delay() {
        let error = ApiError::from_runtime(
            StatusCode::TOO_MANY_REQUESTS,
            "overloaded",
            "busy",
            Some(Duration::from_millis(1500)),
        );
        let status = Status::from(error);
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert_eq!(
            status
                .metadata()
                .get("retry-after")
                .and_then(|value| value.to_str().ok()),
            Some("1")
        );
    }

    #[test]
    fn reflection_accepts_every_descriptor_set() {
        assert!(reflection().build_v1().is_ok());
        assert!(reflection().build_v1alpha().is_ok());
    }
}
