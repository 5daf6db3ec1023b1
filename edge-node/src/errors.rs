//! The one shape of every error the edge node answers itself, and the one place that maps
//! error kinds to HTTP statuses.
//!
//! ```json
//! {"error":{"code":"deadline_exceeded","message":"guest did not respond within 30s","request_id":"…"}}
//! ```
//! Guest responses are passed through untouched; only failures the node detects get this body.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use nexus_proto::ErrorEnvelope;
use nexus_runtime::{Cap, Fault, InvokeError, LoadError, SecretUnavailable};

/// An error the edge node answers with.
#[derive(Debug)]
pub struct EdgeError {
    status: StatusCode,
    code: &'static str,
    message: String,
    retry_after: Option<Duration>,
}

impl EdgeError {
    /// No route matches the request path.
    pub fn not_found(path: &str) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "route_not_found",
            message: format!("no route matches `{path}`"),
            retry_after: None,
        }
    }

    /// The request could not be understood before it reached a guest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: "bad_request",
            message: message.into(),
            retry_after: None,
        }
    }

    /// The deployed app could not be loaded (a missing variable, a component that no longer
    /// compiles on this node…). The reason names the app's parts, which is its deployer's to see.
    pub fn load_failed(error: &dyn std::fmt::Display) -> Self {
        tracing::warn!(%error, "app failed to load");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "app_load_failed",
            message: error.to_string(),
            retry_after: None,
        }
    }

    /// Why the app could not be loaded: a runtime fault is internal, a component over the size
    /// or compile-time cap has its own code, anything else is [`EdgeError::load_failed`].
    pub fn from_load(error: LoadError) -> Self {
        let code = match &error {
            LoadError::Engine(_) => return Self::internal(&error),
            LoadError::SecretUnavailable(secret) => return Self::secret_unavailable(secret),
            LoadError::ComponentTooLarge { .. } => "component_too_large",
            LoadError::CompileTimeout { .. } => "compile_timeout",
            _ => return Self::load_failed(&error),
        };
        tracing::warn!(%error, "app refused by a load cap");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code,
            message: error.to_string(),
            retry_after: None,
        }
    }

    /// A secret variable could not be read (its store is down or refused): the guest did not
    /// run. The caller learns which variable; the cause, which names the store, is logged.
    pub fn secret_unavailable(error: &SecretUnavailable) -> Self {
        tracing::warn!(variable = %error.name, reason = %error.reason, "secret variable unavailable");
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "secret_unavailable",
            message: format!(
                "secret variable `{}` could not be read from the secrets store; see the node's log",
                error.name
            ),
            retry_after: None,
        }
    }

    /// The node is draining: it finishes what it runs and takes nothing new.
    pub fn draining() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "node_draining",
            message: "the node is draining".to_owned(),
            retry_after: Some(Duration::from_secs(1)),
        }
    }

    /// A component the app needs could not be fetched or did not match its digest.
    pub fn artifact_unavailable(error: &dyn std::fmt::Display) -> Self {
        tracing::warn!(%error, "component unavailable");
        Self {
            status: StatusCode::BAD_GATEWAY,
            code: "artifact_unavailable",
            message: error.to_string(),
            retry_after: None,
        }
    }

    /// A cloud host was asked to run a deployment other than the one its bundle holds.
    pub fn wrong_deployment(asked: &str, held: &str) -> Self {
        Self {
            status: StatusCode::CONFLICT,
            code: "wrong_deployment",
            message: format!("this host runs deployment {held}, not {asked}"),
            retry_after: None,
        }
    }

    /// A caller that claimed to be the coordinator without its credential.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthorized",
            message: message.into(),
            retry_after: None,
        }
    }

    /// The guest's response is larger than the host can return (a cloud's payload limit).
    pub fn response_too_large(limit: usize) -> Self {
        Self {
            status: StatusCode::BAD_GATEWAY,
            code: "response_too_large",
            message: format!("the function's response is larger than {limit} bytes"),
            retry_after: None,
        }
    }

    /// No function of that name (or no alias) is on this node's routing table.
    pub fn function_not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            code: "not_found",
            message: "function not found".to_owned(),
            retry_after: None,
        }
    }

    /// A request body over the limit of what the node keeps for later.
    pub fn payload_too_large(limit: usize) -> Self {
        Self {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: format!("an asynchronous invocation's body is at most {limit} bytes"),
            retry_after: None,
        }
    }

    /// The node's outbox is full: it takes no asynchronous work until it has forwarded some.
    pub fn outbox_full() -> Self {
        Self {
            status: StatusCode::SERVICE_UNAVAILABLE,
            code: "outbox_full",
            message: "the node cannot queue more asynchronous invocations until it reaches its \
                      coordinator"
                .to_owned(),
            retry_after: Some(Duration::from_secs(5)),
        }
    }

    /// Whether the invocation failed before any guest code ran, so another node may run it
    /// whatever its method.
    pub fn ran_nothing(&self) -> bool {
        matches!(
            self.code,
            "overloaded"
                | "app_load_failed"
                | "node_draining"
                | "artifact_unavailable"
                | "wrong_deployment"
                | "secret_unavailable"
        )
    }

    /// A fault of the node itself. The details go to the log, not to the caller.
    pub fn internal(error: &dyn std::fmt::Display) -> Self {
        tracing::error!(%error, "internal error");
        Self {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: "internal error; see the node's log".to_owned(),
            retry_after: None,
        }
    }

    /// What went wrong, for people.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// When a retry is likely to succeed, for errors of capacity.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        self.code
    }

    /// Logs the error under a new request id and returns the response that carries that id.
    pub fn logged_response(self) -> http::Response<Bytes> {
        let request_id = uuid::Uuid::now_v7().to_string();
        if self.status.is_server_error() {
            tracing::warn!(
                request_id,
                code = self.code,
                status = self.status.as_u16(),
                "request failed"
            );
        } else {
            tracing::debug!(
                request_id,
                code = self.code,
                status = self.status.as_u16(),
                "request refused"
            );
        }
        self.into_response(&request_id)
    }

    /// The response for this error, tagged with `request_id`.
    pub fn into_response(self, request_id: &str) -> http::Response<Bytes> {
        let body = ErrorEnvelope::new(self.code, &self.message, request_id).to_json();
        let mut response = http::Response::new(Bytes::from(body));
        *response.status_mut() = self.status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(retry_after) = self.retry_after {
            let seconds = retry_after.as_secs().max(1);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

impl From<InvokeError> for EdgeError {
    fn from(error: InvokeError) -> Self {
        if let InvokeError::SecretUnavailable(secret) = &error {
            return Self::secret_unavailable(secret);
        }
        let (status, code, retry_after) = match &error {
            InvokeError::Overloaded { retry_after } => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                Some(*retry_after),
            ),
            InvokeError::DeadlineExceeded { .. } => {
                (StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded", None)
            }
            InvokeError::GuestTrap { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "guest_trap", None)
            }
            InvokeError::NoResponse { .. } => {
                (StatusCode::INTERNAL_SERVER_ERROR, "guest_no_response", None)
            }
            InvokeError::BodyTooLarge { .. } => {
                (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", None)
            }
            InvokeError::HeadersTooLarge { .. } => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
                None,
            ),
            InvokeError::GuestLimit { cap, .. } => (
                StatusCode::INTERNAL_SERVER_ERROR,
                guest_limit_code(*cap),
                None,
            ),
            InvokeError::Internal(_) | InvokeError::SecretUnavailable(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal", None)
            }
        };
        // Guest traps carry the guest's own backtrace, which is the deployer's to see; the
        // runtime's internals are not.
        let message = match error.fault() {
            Fault::Internal | Fault::Upstream => {
                "internal error; see the node's log for this request id".to_owned()
            }
            Fault::Guest | Fault::Caller | Fault::Capacity => error.to_string(),
        };
        Self {
            status,
            code,
            message,
            retry_after,
        }
    }
}

/// The code of a guest's breach of `cap`.
fn guest_limit_code(cap: Cap) -> &'static str {
    match cap {
        Cap::Resources => "resource_limit_exceeded",
        Cap::HeaderCount | Cap::HeaderBytes => "header_limit_exceeded",
        Cap::HostCallBytes => "host_call_limit_exceeded",
        Cap::OutboundRequests => "outbound_limit_exceeded",
        Cap::ComponentBytes => "component_too_large",
        Cap::CompileTime => "compile_timeout",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_invoke_error_maps_to_its_status() {
        let cases = [
            (
                InvokeError::Overloaded {
                    retry_after: Duration::from_secs(1),
                },
                503,
            ),
            (
                InvokeError::DeadlineExceeded {
                    deadline: Duration::from_secs(1),
                },
                504,
            ),
            (
                InvokeError::GuestTrap {
                    message: "x".into(),
                },
                500,
            ),
            (
                InvokeError::NoResponse {
                    message: "x".into(),
                },
                500,
            ),
            (InvokeError::BodyTooLarge { limit: 1 }, 413),
            (
                InvokeError::HeadersTooLarge {
                    cap: Cap::HeaderCount,
                    limit: 1,
                },
                431,
            ),
            (
                InvokeError::GuestLimit {
                    cap: Cap::Resources,
                    limit: 1,
                },
                500,
            ),
            (InvokeError::Internal("secret detail".into()), 500),
            (
                InvokeError::SecretUnavailable(SecretUnavailable {
                    name: "api_key".into(),
                    reason: "vault at http://10.0.0.1 is down".into(),
                }),
                503,
            ),
        ];
        for (error, status) in cases {
            assert_eq!(EdgeError::from(error).status().as_u16(), status);
        }
    }

    #[test]
    fn a_breach_names_its_cap_and_is_not_safe_to_retry() {
        let error = InvokeError::GuestLimit {
            cap: Cap::Resources,
            limit: 10,
        };
        assert!(!error.retry_is_safe());
        assert_eq!(error.fault(), Fault::Guest);
        let edge = EdgeError::from(error);
        assert_eq!(edge.code(), "resource_limit_exceeded");
        assert_eq!(edge.message(), "guest exceeded the max_resources cap of 10");
        assert!(!edge.ran_nothing());
        let load = EdgeError::from_load(LoadError::ComponentTooLarge {
            component: "big".into(),
            size: 20,
            limit: 10,
        });
        assert_eq!(load.code(), "component_too_large");
        assert!(
            load.message()
                .contains("max_component_bytes cap of 10 bytes")
        );
    }

    #[test]
    fn body_has_one_shape_and_hides_internals() {
        let response =
            EdgeError::from(InvokeError::Internal("secret detail".into())).into_response("req-1");
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["error"]["code"], "internal");
        assert_eq!(body["error"]["request_id"], "req-1");
        assert!(
            !body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("secret")
        );
    }

    #[test]
    fn an_unreadable_secret_names_the_variable_not_the_store() {
        let response = EdgeError::from(InvokeError::SecretUnavailable(SecretUnavailable {
            name: "api_key".into(),
            reason: "vault at http://10.0.0.1 is down".into(),
        }))
        .into_response("r");
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["error"]["code"], "secret_unavailable");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains("`api_key`"), "{message}");
        assert!(!message.contains("10.0.0.1"), "{message}");
    }

    #[test]
    fn overload_says_when_to_retry() {
        let response = EdgeError::from(InvokeError::Overloaded {
            retry_after: Duration::from_secs(2),
        })
        .into_response("r");
        assert_eq!(response.headers()[header::RETRY_AFTER], "2");
    }
}
