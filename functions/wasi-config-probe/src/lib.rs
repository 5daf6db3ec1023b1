//! `wasi-config-probe`: reads `wasi:config/store@0.2.0-draft-2024-09-27` (test fixture,
//! spin-sdk 5.2, called the way a Spin user calls it: through `spin_sdk::wit::wasi::config`).
//!
//! | query | answer |
//! |---|---|
//! | `key=<k>` | `200` with the `Debug` text of `get(k)`: `Some("value")` or `None` |
//! | (no `key`) | `200` with `get-all`, one `name=value` line per variable, in the order answered |
//!
//! A `wasi:config` error is a `500` with its `Debug` text.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::wit::wasi::config::store;

/// Runs the probe described in the crate docs.
#[http_component]
fn handle_wasi_config_probe(request: Request) -> Response {
    let key = form_urlencoded::parse(request.query().as_bytes())
        .find(|(name, _)| name == "key")
        .map(|(_, value)| value.into_owned());
    let answer = match key {
        Some(key) => store::get(&key).map(|value| format!("{value:?}")),
        None => store::get_all().map(|pairs| {
            pairs
                .into_iter()
                .map(|(name, value)| format!("{name}={value}"))
                .collect::<Vec<_>>()
                .join("\n")
        }),
    };
    match answer {
        Ok(body) => text_response(200, body),
        Err(error) => text_response(500, format!("{error:?}")),
    }
}

fn text_response(status: u16, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body)
        .build()
}
