//! `hello-p3`: the smallest Spin HTTP component, built on spin-sdk 7.0 (WASIp3).
//!
//! It exports `wasi:http/handler@0.3.0` and imports no Spin capability. Same contract as the
//! WASIp2 `hello`: it cannot fail.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_service]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_7 as spin_sdk;

use spin_sdk::http::{HeaderMap, HeaderName, HeaderValue, IntoResponse, Request, StatusCode};
use spin_sdk::http_service;

/// Answers every request with `200 Hello, Nexus!` as `text/plain`.
#[http_service]
async fn handle_hello(_request: Request) -> impl IntoResponse {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("content-type"),
        HeaderValue::from_static("text/plain"),
    );
    (StatusCode::OK, headers, String::from("Hello, Nexus!"))
}
