//! `headers`: echoes the request as JSON (test fixture, spin-sdk 5.2).
//!
//! The body is `{"method", "uri", "headers", "body_len"}` with every request header the guest
//! received, including Spin's `spin-*` headers. It reads the raw `IncomingRequest` because the
//! SDK's `Request` keeps only one value per header name.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use serde_json::{Map, Value, json};
use spin_sdk::http::{IncomingRequest, Response};
use spin_sdk::http_component;

/// Answers `200` with the JSON echo, or `500` if the request body cannot be read.
#[http_component]
async fn handle_headers(request: IncomingRequest) -> Response {
    let method = request.method().to_string();
    let uri = request.uri();
    let headers = collect_headers(request.headers().entries());
    let body = match request.into_body().await {
        Ok(body) => body,
        Err(error) => {
            return Response::new(500, format!("failed to read request body: {error:?}"));
        }
    };
    let echo = json!({
        "method": method,
        "uri": uri,
        "headers": headers,
        "body_len": body.len(),
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(echo.to_string())
        .build()
}

/// Lowercases names and joins the values of a repeated name with `", "`, in arrival order.
fn collect_headers(entries: Vec<(String, Vec<u8>)>) -> Map<String, Value> {
    let mut headers = Map::new();
    for (name, value) in entries {
        let name = name.to_ascii_lowercase();
        let value = String::from_utf8_lossy(&value).into_owned();
        match headers.get_mut(&name) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(&value);
            }
            _ => {
                headers.insert(name, Value::String(value));
            }
        }
    }
    headers
}
