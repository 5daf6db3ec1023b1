//! `wasi-probe-p3`: `wasi:keyvalue` and `wasi:config` from a WASIp3 guest (test fixture,
//! spin-sdk 7.0, through `spin_sdk::experimental`, where spin-sdk 7 generates the bindings of
//! its `spin-sdk-experimental` world). The interfaces are synchronous WIT, the same ones
//! WASIp2 guests import.
//!
//! | query | answer |
//! |---|---|
//! | `op=config&key=k` | `200` with the `Debug` text of `wasi:config` `get(k)` |
//! | `op=set&key=k&value=v` | sets `k` in bucket `?store=` (default `default`): `200 ok` |
//! | `op=get&key=k` | `200 <value>`, or `404 not found` |
//! | `op=increment&key=k` | `atomics.increment` by 1: `200 <new value>` |
//!
//! Any error (including `AccessDenied` from `open`) is a `500` with its `Debug` text.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_service]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_7 as spin_sdk;

use spin_sdk::experimental::wasi::config::store as config;
use spin_sdk::experimental::wasi::keyvalue::{atomics, store};
use spin_sdk::http::{HeaderMap, HeaderName, HeaderValue, IntoResponse, Request, StatusCode};
use spin_sdk::http_service;

const DEFAULT_STORE: &str = "default";

/// Runs the probe described in the crate docs.
#[http_service]
async fn handle_wasi_probe(request: Request) -> impl IntoResponse {
    let query: Vec<(String, String)> =
        form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    match probe(&query) {
        Ok((status, body)) => text_response(status, body),
        Err(reason) => text_response(StatusCode::INTERNAL_SERVER_ERROR, reason),
    }
}

fn param<'a>(query: &'a [(String, String)], wanted: &str) -> Result<&'a str, String> {
    query
        .iter()
        .find(|(name, _)| name == wanted)
        .map(|(_, value)| value.as_str())
        .ok_or_else(|| format!("missing query parameter {wanted:?}"))
}

fn debug(error: impl std::fmt::Debug) -> String {
    format!("{error:?}")
}

fn probe(query: &[(String, String)]) -> Result<(StatusCode, String), String> {
    let op = param(query, "op")?;
    if op == "config" {
        let value = config::get(param(query, "key")?).map_err(debug)?;
        return Ok((StatusCode::OK, format!("{value:?}")));
    }
    let label = param(query, "store").unwrap_or(DEFAULT_STORE);
    let bucket = store::open(label).map_err(debug)?;
    let key = param(query, "key")?;
    match op {
        "set" => {
            bucket
                .set(key, param(query, "value")?.as_bytes())
                .map_err(debug)?;
            Ok((StatusCode::OK, "ok".to_owned()))
        }
        "get" => match bucket.get(key).map_err(debug)? {
            Some(value) => Ok((StatusCode::OK, String::from_utf8_lossy(&value).into_owned())),
            None => Ok((StatusCode::NOT_FOUND, "not found".to_owned())),
        },
        "increment" => {
            let value = atomics::increment(&bucket, key, 1).map_err(debug)?;
            Ok((StatusCode::OK, value.to_string()))
        }
        unknown_op => Err(format!("unknown op {unknown_op:?}")),
    }
}

fn text_response(status: StatusCode, body: String) -> (StatusCode, HeaderMap, String) {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("content-type"),
        HeaderValue::from_static("text/plain"),
    );
    (status, headers, body)
}
