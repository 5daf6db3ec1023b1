//! `counter-p3`: increments a counter in the `default` key-value store, built on spin-sdk 7.0
//! (WASIp3, `spin:key-value/key-value@3.0.0`).
//!
//! Same contract as the WASIp2 `counter`: key `count`, decimal text, missing = 0, not atomic.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_service]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_7 as spin_sdk;

use spin_sdk::http::{HeaderMap, HeaderName, HeaderValue, IntoResponse, Request, StatusCode};
use spin_sdk::http_service;
use spin_sdk::key_value::Store;

const COUNT_KEY: &str = "count";

/// Answers `200 <new count>`, or `500` with the reason (a store error's `Debug` text).
#[http_service]
async fn handle_counter(_request: Request) -> impl IntoResponse {
    match increment().await {
        Ok(new_count) => text_response(StatusCode::OK, new_count.to_string()),
        Err(reason) => text_response(StatusCode::INTERNAL_SERVER_ERROR, reason),
    }
}

async fn increment() -> Result<u64, String> {
    let store = Store::open_default()
        .await
        .map_err(|error| format!("{error:?}"))?;
    let stored_count = store
        .get(COUNT_KEY)
        .await
        .map_err(|error| format!("{error:?}"))?;
    let current_count = match stored_count {
        None => 0,
        Some(bytes) => parse_count(&bytes)?,
    };
    let new_count = current_count
        .checked_add(1)
        .ok_or_else(|| "count overflowed u64".to_owned())?;
    store
        .set(COUNT_KEY, new_count.to_string())
        .await
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

fn text_response(status: StatusCode, body: String) -> (StatusCode, HeaderMap, String) {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("content-type"),
        HeaderValue::from_static("text/plain"),
    );
    (status, headers, body)
}
