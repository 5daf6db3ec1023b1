//! `sleep`: a test fixture for work that takes time but no CPU (a slow backend, a timer).
//! `GET /?ms=N` waits N milliseconds (at most 5000) on the monotonic clock, then answers
//! `200 slept N ms`.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use std::time::Duration;

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

/// The longest wait a request may ask for.
const MAX_MILLIS: u64 = 5_000;

/// Waits as long as the `ms` query parameter says (0 when absent or not a number).
#[http_component]
fn handle_sleep(request: Request) -> Response {
    let millis = request
        .query()
        .split('&')
        .find_map(|pair| pair.strip_prefix("ms="))
        .and_then(|value| value.parse::<u64>().ok())
        .unwrap_or(0)
        .min(MAX_MILLIS);
    // std's sleep on wasm32-wasip2 blocks on `wasi:clocks/monotonic-clock` subscribe + poll:
    // the host parks the instance instead of spinning.
    std::thread::sleep(Duration::from_millis(millis));
    Response::builder()
        .status(200)
        .header("content-type", "text/plain")
        .body(format!("slept {millis} ms"))
        .build()
}
