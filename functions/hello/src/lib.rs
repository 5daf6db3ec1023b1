//! `hello`: the smallest Spin HTTP component, built on spin-sdk 5.2 (WASIp2).
//!
//! It exports `wasi:http/incoming-handler@0.2.0` and imports no Spin capability. It is not a
//! template for error handling: it cannot fail.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

/// Answers every request with `200 Hello, Nexus!` as `text/plain`.
#[http_component]
fn handle_hello(_request: Request) -> Response {
    Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body("Hello, Nexus!")
        .build()
}
