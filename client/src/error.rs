//! [`ClientError`]: every way a call can fail, the coordinator's refusals parsed from its one
//! error body, and [`ClientError::hint`], the next step to suggest to a person.

use std::error::Error as StdError;
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use serde::Deserialize;

/// What a source error is boxed as, so this crate's public API names none of its transports.
pub(crate) type BoxError = Box<dyn StdError + Send + Sync>;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The coordinator refused: it answered with a status other than 2xx.
    #[error("the coordinator answered {status}: {message} (code {code}, request id {request_id})")]
    Api {
        /// The HTTP status.
        status: StatusCode,
        /// The coordinator's stable, snake_case code (`not_found`, `conflict`…); `unknown`
        /// when the body is not the coordinator's error body (a proxy's page, say).
        code: String,
        /// What went wrong, for people.
        message: String,
        /// The request's id in the coordinator's logs (empty when it gave none).
        request_id: String,
        /// How long to wait before retrying, when the coordinator said (`Retry-After`).
        retry_after: Option<Duration>,
    },
    /// No connection could be made: nothing listens there, or the name does not resolve.
    #[error("cannot connect to {url}")]
    Connect {
        /// What was called.
        url: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The connection broke after it was made.
    #[error("the connection to {url} failed")]
    Transport {
        /// What was called.
        url: String,
        /// Why.
        #[source]
        source: BoxError,
    },
    /// The call did not finish within its time limit.
    #[error("{url} did not answer within {limit:?}")]
    Timeout {
        /// What was called.
        url: String,
        /// The time limit.
        limit: Duration,
    },
    /// The answer is larger than the client reads.
    #[error("the answer from {url} is larger than {limit} bytes")]
    TooLarge {
        /// What was called.
        url: String,
        /// The limit, in bytes.
        limit: usize,
    },
    /// The answer is not what this route answers (JSON of another shape, a wrong status).
    #[error("unexpected answer from {url}: {reason}")]
    BadResponse {
        /// What was called.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
    /// The coordinator URL given to [`crate::Client::new`] is unusable.
    #[error("invalid coordinator URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The request cannot be sent as given (a header value that is not text, a part name
    /// with a quote…); nothing was sent.
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// The WebSocket failed after it was open, or sent what no route of it sends.
    #[error("the WebSocket {url} failed")]
    WebSocket {
        /// What was called.
        url: String,
        /// Why.
        #[source]
        source: BoxError,
    },
}

/// The coordinator's error body: `{"error":{"code","message","request_id"}}`.
#[derive(Deserialize)]
struct Envelope {
    error: ErrorBody,
}

#[derive(Deserialize)]
struct ErrorBody {
    code: String,
    message: String,
    #[serde(default)]
    request_id: String,
}

/// The most of a body that is not the error body kept as the message.
const MAX_MESSAGE_CHARS: usize = 512;

impl ClientError {
    /// The refusal a non-2xx answer carries, from its error body when it has one.
    pub(crate) fn from_answer(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let header_request_id = headers
            .get("x-request-id")
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default();
        let retry_after = headers
            .get(http::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let (code, message, request_id) = match serde_json::from_slice::<Envelope>(body) {
            Ok(Envelope { error }) => (error.code, error.message, error.request_id),
            Err(_) => {
                let text = String::from_utf8_lossy(body);
                let text = text.trim();
                let message = if text.is_empty() {
                    status.canonical_reason().unwrap_or("no details").to_owned()
                } else {
                    text.chars().take(MAX_MESSAGE_CHARS).collect()
                };
                ("unknown".to_owned(), message, String::new())
            }
        };
        Self::Api {
            status,
            code,
            message,
            request_id: if request_id.is_empty() {
                header_request_id.to_owned()
            } else {
                request_id
            },
            retry_after,
        }
    }

    pub(crate) fn bad_response(url: &str, reason: impl Into<String>) -> Self {
        Self::BadResponse {
            url: url.to_owned(),
            reason: reason.into(),
        }
    }

    /// The HTTP status the coordinator refused with.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The coordinator's error code (`not_found`, `precondition_failed`…).
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// How long the coordinator asked the caller to wait before retrying.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Api { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// Whether the coordinator answered 404.
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(StatusCode::NOT_FOUND)
    }

    /// A next step for a person who hit this error, for the common cases.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            Self::Api {
                status, message, ..
            } => api_hint(*status, message),
            Self::Connect { .. } => Some(
                "is the coordinator running? start it with `nexus up` or set \
                 --coordinator/NEXUS_COORDINATOR",
            ),
            Self::Transport { .. } => {
                Some("the coordinator closed the connection: check its logs, then retry")
            }
            Self::Timeout { .. } => Some(
                "the coordinator did not answer in time: retry, or give the call a longer time \
                 limit",
            ),
            Self::TooLarge { .. } => {
                Some("ask for less at a time (a smaller page), or raise the client's size limit")
            }
            Self::BadResponse { .. } => Some(
                "is that URL a SirsiNexus coordinator, and is it as recent as this client? \
                 compare `nexus --version` with the coordinator's",
            ),
            Self::InvalidUrl { .. } => Some(
                "give the coordinator's URL as http://host:port (--coordinator or \
                 NEXUS_COORDINATOR)",
            ),
            Self::InvalidRequest(_) | Self::WebSocket { .. } => None,
        }
    }
}

fn api_hint(status: StatusCode, message: &str) -> Option<&'static str> {
    let missing = |what: &str| message.starts_with(what) && message.ends_with("not found");
    match status {
        StatusCode::UNAUTHORIZED if message.contains("join token") => Some(
            "node administration takes the cluster's join token, not a user's: pass the token \
             the coordinator was started with",
        ),
        StatusCode::UNAUTHORIZED => Some("log in again: nexus login"),
        StatusCode::FORBIDDEN => {
            Some("your role in the project does not allow this: ask one of its owners or admins")
        }
        StatusCode::NOT_FOUND if missing("project member") => {
            Some("check the user id against the project's member list")
        }
        StatusCode::NOT_FOUND if missing("project") => Some("list your projects: nexus projects"),
        StatusCode::NOT_FOUND if missing("function version") => {
            Some("check the version number against the function's versions")
        }
        StatusCode::NOT_FOUND if missing("function") => {
            Some("list the project's functions: nexus functions")
        }
        StatusCode::NOT_FOUND if missing("agent") => {
            Some("list the project's agents: nexus agents")
        }
        StatusCode::NOT_FOUND if missing("cluster") => Some(
            "this coordinator runs no cluster: start it with `nexus coordinator --cluster` to \
             manage edge nodes",
        ),
        StatusCode::NOT_FOUND if missing("route") => {
            Some("the coordinator does not serve this route: it may be older than this client")
        }
        StatusCode::PAYLOAD_TOO_LARGE => Some(
            "the request is over the coordinator's size limit: send less (function apps: leave \
             out files they do not need; the upload limit is the coordinator's \
             max_upload_bytes)",
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => Some(
            "deploy a .wasm component, a tar with spin.toml at its root, or the app's files as \
             multipart",
        ),
        StatusCode::UNPROCESSABLE_ENTITY => Some(
            "the component does not load: build it for wasm32-wasip2 with an HTTP handler \
             (wasi:http/incoming-handler)",
        ),
        StatusCode::PRECONDITION_FAILED => {
            Some("the value changed since you read it: read it again, then retry the write")
        }
        StatusCode::TOO_MANY_REQUESTS => Some(
            "the coordinator is busy: retry after the delay it asked for (Retry-After), or \
             send fewer requests at once",
        ),
        StatusCode::SERVICE_UNAVAILABLE => {
            Some("the coordinator or its database is unavailable: retry shortly, and check /readyz")
        }
        StatusCode::INTERNAL_SERVER_ERROR => Some(
            "the coordinator failed: give its operator the request id, which finds the failure \
             in its logs",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
