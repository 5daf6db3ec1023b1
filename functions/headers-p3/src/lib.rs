//! `headers-p3`: the `headers` echo on spin-sdk 7.0 (test fixture, WASIp3).
//!
//! Same contract as the WASIp2 `headers`: the body is `{"method", "uri", "headers",
//! "header_list", "body_len"}` describing the request as the guest received it, and the
//! response carries `content-type: application/json`, then one header per query parameter
//! `respond-header=<name>:<value>`, in query order, with the status in `respond-status`
//! (default 200).

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_service]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_7 as spin_sdk;

use serde_json::{Map, Value, json};
use spin_sdk::http::body::IncomingBodyExt as _;
use spin_sdk::http::{HeaderMap, HeaderName, HeaderValue, IntoResponse, Request, StatusCode};
use spin_sdk::http_service;

/// Answers with the JSON echo, or `500` with the reason when the request body cannot be read
/// or the requested status or headers are invalid.
#[http_service]
async fn handle_headers(request: Request) -> impl IntoResponse {
    echo(request)
        .await
        .unwrap_or_else(|reason| (StatusCode::INTERNAL_SERVER_ERROR, HeaderMap::new(), reason))
}

async fn echo(request: Request) -> Result<(StatusCode, HeaderMap, String), String> {
    let (status, response_headers) = requested_response(request.uri().query().unwrap_or(""))?;
    let method = request.method().as_str().to_owned();
    let uri = request.uri().to_string();
    let entries: Vec<(String, String)> = request
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    let body = request
        .into_body()
        .bytes()
        .await
        .map_err(|error| format!("failed to read request body: {error:?}"))?;
    let echo = json!({
        "method": method,
        "uri": uri,
        "headers": joined_headers(&entries),
        "header_list": entries,
        "body_len": body.len(),
    });
    Ok((status, response_headers, echo.to_string()))
}

/// The status and headers asked for by `respond-status` and `respond-header` in `query`.
fn requested_response(query: &str) -> Result<(StatusCode, HeaderMap), String> {
    let mut status = StatusCode::OK;
    let mut headers = HeaderMap::new();
    headers.append(
        HeaderName::from_static("content-type"),
        HeaderValue::from_static("application/json"),
    );
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "respond-status" => {
                status = StatusCode::from_bytes(value.as_bytes())
                    .map_err(|_| format!("invalid respond-status `{value}`"))?;
            }
            "respond-header" => {
                let (name, value) = value
                    .split_once(':')
                    .ok_or_else(|| format!("respond-header `{value}` is not `name:value`"))?;
                let name = HeaderName::from_bytes(name.as_bytes())
                    .map_err(|_| format!("invalid response header name `{name}`"))?;
                let value = HeaderValue::from_str(value)
                    .map_err(|_| format!("invalid response header value `{value}`"))?;
                headers.append(name, value);
            }
            _ => {}
        }
    }
    Ok((status, headers))
}

/// Lowercases names and joins the values of a repeated name with `", "`, in arrival order.
fn joined_headers(entries: &[(String, String)]) -> Map<String, Value> {
    let mut headers = Map::new();
    for (name, value) in entries {
        let name = name.to_ascii_lowercase();
        match headers.get_mut(&name) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(value);
            }
            _ => {
                headers.insert(name, Value::String(value.clone()));
            }
        }
    }
    headers
}
