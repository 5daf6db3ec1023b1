//! `counter`: increments a counter in the `default` key-value store, built on spin-sdk 5.2
//! (WASIp2, `fermyon:spin/key-value@2.0.0`).
//!
//! The count lives under key `count` as decimal text; a missing key counts as 0. The
//! read-modify-write is not atomic: concurrent requests can lose increments.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;

const COUNT_KEY: &str = "count";

/// Answers `200 <new count>`, or `500` with the reason (a store error's `Debug` text).
#[http_component]
fn handle_counter(_request: Request) -> Response {
    match increment() {
        Ok(new_count) => text_response(200, new_count.to_string()),
        Err(reason) => text_response(500, reason),
    }
}

fn increment() -> Result<u64, String> {
    let store = Store::open_default().map_err(|error| format!("{error:?}"))?;
    let stored_count = store.get(COUNT_KEY).map_err(|error| format!("{error:?}"))?;
    let current_count = match stored_count {
        None => 0,
        Some(bytes) => parse_count(&bytes)?,
    };
    let new_count = current_count
        .checked_add(1)
        .ok_or_else(|| "count overflowed u64".to_owned())?;
    store
        .set(COUNT_KEY, new_count.to_string().as_bytes())
        .map_err(|error| format!("{error:?}"))?;
    Ok(new_count)
}

fn parse_count(bytes: &[u8]) -> Result<u64, String> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| format!("stored {COUNT_KEY:?} is not UTF-8: {bytes:?}"))?;
    text.trim()
        .parse()
        .map_err(|_| format!("stored {COUNT_KEY:?} is not a decimal number: {text:?}"))
}

fn text_response(status: u16, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body)
        .build()
}
