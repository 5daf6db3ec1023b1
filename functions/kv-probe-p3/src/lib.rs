//! `kv-probe-p3`: opens a key-value store and runs one operation on it (test fixture,
//! spin-sdk 7.0, `spin:key-value/key-value@3.0.0`).
//!
//! Same query and answers as the WASIp2 `kv-probe`: `store=<label>` (default `default`), then
//! an optional `op` of `keys`, `set` (`key`, `value`), `get` (`key`; `404` when missing),
//! `delete` (`key`) or `exists` (`key`). Store errors are a `500` with the error's `Debug` text.
//! In WASIp3, `get-keys` returns a stream; it is collected before answering.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_service]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_7 as spin_sdk;

use probe_support::Query;
use spin_sdk::http::{HeaderMap, HeaderName, HeaderValue, IntoResponse, Request, StatusCode};
use spin_sdk::http_service;
use spin_sdk::key_value::Store;

const DEFAULT_STORE: &str = "default";

/// Runs the probe described in the crate docs.
#[http_service]
async fn handle_kv_probe(request: Request) -> impl IntoResponse {
    let query = Query::parse(request.uri().query().unwrap_or_default());
    match probe(&query).await {
        Ok((status, body)) => text_response(status, body),
        Err(reason) => text_response(StatusCode::INTERNAL_SERVER_ERROR, reason),
    }
}

async fn probe(query: &Query) -> Result<(StatusCode, String), String> {
    let label = query.get("store").unwrap_or(DEFAULT_STORE);
    let store = Store::open(label)
        .await
        .map_err(|error| format!("{error:?}"))?;
    let Some(op) = query.get("op") else {
        return Ok((StatusCode::OK, "opened".to_owned()));
    };
    match op {
        "keys" => {
            let mut keys = store
                .get_keys()
                .await
                .collect()
                .await
                .map_err(|error| format!("{error:?}"))?;
            keys.sort();
            Ok((StatusCode::OK, keys.join("\n")))
        }
        "set" => {
            let key = query.require("key")?;
            let value = query.require("value")?;
            store
                .set(key, value)
                .await
                .map_err(|error| format!("{error:?}"))?;
            Ok((StatusCode::OK, "ok".to_owned()))
        }
        "get" => {
            let key = query.require("key")?;
            match store.get(key).await.map_err(|error| format!("{error:?}"))? {
                Some(value) => Ok((StatusCode::OK, String::from_utf8_lossy(&value).into_owned())),
                None => Ok((StatusCode::NOT_FOUND, "not found".to_owned())),
            }
        }
        "delete" => {
            let key = query.require("key")?;
            store
                .delete(key)
                .await
                .map_err(|error| format!("{error:?}"))?;
            Ok((StatusCode::OK, "ok".to_owned()))
        }
        "exists" => {
            let key = query.require("key")?;
            let exists = store
                .exists(key)
                .await
                .map_err(|error| format!("{error:?}"))?;
            Ok((StatusCode::OK, exists.to_string()))
        }
        unknown_op => Err(format!(
            "unknown op {unknown_op:?}: expected keys, set, get, delete or exists"
        )),
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
