//! `kv-probe`: opens a key-value store and runs one operation on it (test fixture, spin-sdk 5.2,
//! `fermyon:spin/key-value@2.0.0`).
//!
//! Query parameters: `store=<label>` (default `default`), then an optional `op`:
//!
//! | query | answer |
//! |---|---|
//! | (no `op`) | `200 opened` |
//! | `op=keys` | `200` with the keys, sorted, one per line |
//! | `op=set&key=k&value=v` | `200 ok` |
//! | `op=get&key=k` | `200 <value>`, or `404 not found` |
//! | `op=delete&key=k` | `200 ok` |
//! | `op=exists&key=k` | `200 true` or `200 false` |
//!
//! Any store error, including failing to open (`AccessDenied`, `NoSuchStore`), is a `500` with
//! the error's `Debug` text; a bad query is a `500` that says what is missing.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use probe_support::Query;
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;

const DEFAULT_STORE: &str = "default";

/// Runs the probe described in the crate docs.
#[http_component]
fn handle_kv_probe(request: Request) -> Response {
    let query = Query::parse(request.query());
    match probe(&query) {
        Ok((status, body)) => text_response(status, body),
        Err(reason) => text_response(500, reason),
    }
}

fn probe(query: &Query) -> Result<(u16, String), String> {
    let label = query.get("store").unwrap_or(DEFAULT_STORE);
    let store = Store::open(label).map_err(|error| format!("{error:?}"))?;
    let Some(op) = query.get("op") else {
        return Ok((200, "opened".to_owned()));
    };
    match op {
        "keys" => {
            let mut keys = store.get_keys().map_err(|error| format!("{error:?}"))?;
            keys.sort();
            Ok((200, keys.join("\n")))
        }
        "set" => {
            let key = query.require("key")?;
            let value = query.require("value")?;
            store
                .set(key, value.as_bytes())
                .map_err(|error| format!("{error:?}"))?;
            Ok((200, "ok".to_owned()))
        }
        "get" => {
            let key = query.require("key")?;
            match store.get(key).map_err(|error| format!("{error:?}"))? {
                Some(value) => Ok((200, String::from_utf8_lossy(&value).into_owned())),
                None => Ok((404, "not found".to_owned())),
            }
        }
        "delete" => {
            let key = query.require("key")?;
            store.delete(key).map_err(|error| format!("{error:?}"))?;
            Ok((200, "ok".to_owned()))
        }
        "exists" => {
            let key = query.require("key")?;
            let exists = store.exists(key).map_err(|error| format!("{error:?}"))?;
            Ok((200, exists.to_string()))
        }
        unknown_op => Err(format!(
            "unknown op {unknown_op:?}: expected keys, set, get, delete or exists"
        )),
    }
}

fn text_response(status: u16, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body)
        .build()
}
