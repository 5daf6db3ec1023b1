//! `flaky`: a test fixture for a bad release. One request in five, at random, answers
//! `500 flaked`; the others `200 ok`.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use std::hash::BuildHasher as _;

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

/// Answers 500 to about a fifth of the requests.
#[http_component]
fn handle_flaky(_request: Request) -> Response {
    // Each instance's `RandomState` is seeded from `wasi:random`.
    let roll = std::collections::hash_map::RandomState::new().hash_one(0_u8);
    let (status, body) = if roll.is_multiple_of(5) {
        (500, "flaked")
    } else {
        (200, "ok")
    };
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body)
        .build()
}
