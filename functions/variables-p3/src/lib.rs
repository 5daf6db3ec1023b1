//! `variables-p3`: returns a component variable (test fixture, spin-sdk 7.0,
//! `spin:variables/variables@3.0.0`).
//!
//! It reads `greeting`, or the variable named by the query parameter `name`.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_service]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_7 as spin_sdk;

use spin_sdk::http::{HeaderMap, HeaderName, HeaderValue, IntoResponse, Request, StatusCode};
use spin_sdk::http_service;

const DEFAULT_VARIABLE: &str = "greeting";

/// Answers `200 <value>`, or `500` with the variables error's `Debug` text
/// (e.g. `Undefined("...")`).
#[http_service]
async fn handle_variables(request: Request) -> impl IntoResponse {
    let name = query_param(request.uri().query().unwrap_or_default(), "name")
        .unwrap_or_else(|| DEFAULT_VARIABLE.to_owned());
    match spin_sdk::variables::get(&name).await {
        Ok(value) => text_response(StatusCode::OK, value),
        Err(error) => text_response(StatusCode::INTERNAL_SERVER_ERROR, format!("{error:?}")),
    }
}

fn query_param(query: &str, wanted: &str) -> Option<String> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == wanted)
        .map(|(_, value)| value.into_owned())
}

fn text_response(status: StatusCode, body: String) -> (StatusCode, HeaderMap, String) {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("content-type"),
        HeaderValue::from_static("text/plain"),
    );
    (status, headers, body)
}
