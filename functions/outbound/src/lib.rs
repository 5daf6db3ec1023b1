//! `outbound`: GETs the URL in the `x-target-url` request header through outbound HTTP
//! (test fixture, spin-sdk 5.2, `wasi:http/outgoing-handler@0.2.0`).
//!
//! It exists to test the outbound-HTTP allowlist: a denied host shows up as
//! `Http(HttpRequestDenied)` in the `500` body.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use spin_sdk::http::{Request, Response, SendError};
use spin_sdk::http_component;

const TARGET_HEADER: &str = "x-target-url";

/// Answers `200 status=<upstream status>\n<upstream body>`, or `500` with the reason (the send
/// error's `Debug` text).
#[http_component]
async fn handle_outbound(request: Request) -> Response {
    let Some(target_url) = request
        .header(TARGET_HEADER)
        .and_then(|value| value.as_str())
    else {
        return Response::new(500, format!("missing or non-UTF-8 {TARGET_HEADER} header"));
    };
    let upstream_request = Request::get(target_url).build();
    let upstream_result: Result<Response, SendError> = spin_sdk::http::send(upstream_request).await;
    match upstream_result {
        Ok(upstream_response) => {
            let mut body = format!("status={}\n", upstream_response.status()).into_bytes();
            body.extend_from_slice(upstream_response.body());
            Response::new(200, body)
        }
        Err(error) => Response::new(500, format!("{error:?}")),
    }
}
