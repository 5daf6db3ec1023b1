//! The coordinator's one API error, and the one place that maps each kind to an HTTP status
//! and a stable code. The body is [`nexus_proto::ErrorEnvelope`]; the request id is filled in
//! by the request-id middleware, which sees every response.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// An error the API answers with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable, snake_case code.
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// When retrying may succeed, sent as `Retry-After` (whole seconds, at least 1).
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// An error a runtime answered with, its status and code kept (`guest_trap`,
    /// `deadline_exceeded`, `overloaded`…).
    pub fn from_runtime(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        Self {
            retry_after,
            ..Self::new(status, code, message)
        }
    }

    /// The request is malformed or a field is invalid.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// No valid credentials (missing, expired, revoked, wrong password).
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    /// The caller may see the resource but not do this to it.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// No such resource, or one the caller may not know exists.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// The request conflicts with what exists (a taken email, a duplicate name…).
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// The upload, or a file in it, is larger than a limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }

    /// A deployed component would not load on a node: an unsupported import, a compile or
    /// link error, no HTTP handler, or too long to compile.
    pub fn invalid_component(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_component",
            message,
        )
    }

    /// The database is unreachable or keeps conflicting; retrying later may work.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// A fault of the coordinator itself. The details go to the log, not to the caller.
    pub fn internal(error: &dyn std::error::Error) -> Self {
        tracing::error!(error = %error, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the coordinator failed; the request id identifies the failure in its logs",
        )
    }
}

impl From<nexus_store::Error> for ApiError {
    fn from(error: nexus_store::Error) -> Self {
        use nexus_store::Error;
        match &error {
            Error::NotFound { what } => Self::not_found(what),
            Error::Conflict { message } => Self::conflict(message.clone()),
            Error::Invalid { .. } => Self::bad_request(error.to_string()),
            Error::RetryExhausted { .. } => Self::unavailable(error.to_string()),
            _ if error.is_retryable() => Self::unavailable(error.to_string()),
            _ => Self::internal(&error),
        }
    }
}

/// Set on an error response so that the request-id middleware can write its body.
#[derive(Debug, Clone)]
pub(crate) struct PendingErrorBody {
    pub code: &'static str,
    pub message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = self.status.into_response();
        if let Some(retry_after) = self.retry_after {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after.as_secs().max(1)),
            );
        }
        response.extensions_mut().insert(PendingErrorBody {
            code: self.code,
            message: self.message,
        });
        response
    }
}
