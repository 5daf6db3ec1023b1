//! `variables`: returns a component variable (test fixture, spin-sdk 5.2,
//! `fermyon:spin/variables@2.0.0`).
//!
//! It reads `greeting`, or the variable named by the query parameter `name`.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

const DEFAULT_VARIABLE: &str = "greeting";

/// Answers `200 <value>`, or `500` with the variables error's `Debug` text
/// (e.g. `Undefined("...")`).
#[http_component]
fn handle_variables(request: Request) -> Response {
    let name = query_param(request.query(), "name").unwrap_or_else(|| DEFAULT_VARIABLE.to_owned());
    match spin_sdk::variables::get(&name) {
        Ok(value) => text_response(200, value),
        Err(error) => text_response(500, format!("{error:?}")),
    }
}

fn query_param(query: &str, wanted: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == wanted)
        .map(|(_, value)| value.into_owned())
}

fn text_response(status: u16, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body)
        .build()
}
