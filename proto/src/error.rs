//! The one JSON shape of every error the platform answers itself, edge node and coordinator
//! alike:
//!
//! ```json
//! {"error":{"code":"deadline_exceeded","message":"guest did not respond within 30s","request_id":"…"}}
//! ```

use serde::{Deserialize, Serialize};

/// The body of an error response.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// What went wrong, for programs (`code`) and people (`message`), and which request it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// A stable, snake_case code, e.g. `route_not_found`.
    pub code: String,
    /// A sentence saying what went wrong.
    pub message: String,
    /// The id of the request, as in the `x-request-id` response header and the logs.
    pub request_id: String,
}

impl ErrorEnvelope {
    /// An envelope for one error.
    pub fn new(code: &str, message: &str, request_id: &str) -> Self {
        Self {
            error: ErrorBody {
                code: code.to_owned(),
                message: message.to_owned(),
                request_id: request_id.to_owned(),
            },
        }
    }

    /// The JSON text. Serialising three strings cannot fail; `{}` stands in regardless.
    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_else(|_| b"{}".to_vec())
    }
}
