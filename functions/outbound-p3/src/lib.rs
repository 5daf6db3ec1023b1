//! `outbound-p3`: GETs the URL in the `x-target-url` request header through
//! `wasi:http/client@0.3.0` (test fixture, spin-sdk 7.0). Same contract as `outbound`: `200
//! status=<upstream status>\n<upstream body>`, or `500` with the error's `Debug` text.

extern crate spin_sdk_7 as spin_sdk;

use spin_sdk::http::body::IncomingBodyExt as _;
use spin_sdk::http::{IntoResponse, Request, StatusCode};
use spin_sdk::http_service;

const TARGET_HEADER: &str = "x-target-url";

/// Runs the probe described in the crate docs.
#[http_service]
async fn handle_outbound(request: Request) -> impl IntoResponse {
    let Some(target) = request
        .headers()
        .get(TARGET_HEADER)
        .and_then(|value| value.to_str().ok())
    else {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("missing {TARGET_HEADER} header"),
        );
    };
    match fetch(target).await {
        Ok(body) => (StatusCode::OK, body),
        Err(reason) => (StatusCode::INTERNAL_SERVER_ERROR, reason),
    }
}

async fn fetch(target: &str) -> Result<String, String> {
    let response = spin_sdk::http::get(target)
        .await
        .map_err(|error| format!("{error:?}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .bytes()
        .await
        .map_err(|error| format!("{error:?}"))?;
    Ok(format!(
        "status={}\n{}",
        status.as_u16(),
        String::from_utf8_lossy(&body)
    ))
}
