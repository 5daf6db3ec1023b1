//! `wasi-kv-probe`: opens a `wasi:keyvalue` bucket and runs one operation on it (test fixture,
//! spin-sdk 5.2, `wasi:keyvalue/{store,atomics,batch}@0.2.0-draft2`, called the way a Spin
//! user calls them: through `spin_sdk::wit::wasi::keyvalue`).
//!
//! Query parameters: `store=<identifier>` (default `default`), then an optional `op`. Batch
//! operations take repeated `key=` (and, for `set-many`, as many `value=`) parameters.
//!
//! | query | answer |
//! |---|---|
//! | (no `op`) | `200 opened` |
//! | `op=get&key=k` | `200 <value>`, or `404 not found` |
//! | `op=set&key=k&value=v` | `200 ok` |
//! | `op=delete&key=k` | `200 ok` |
//! | `op=exists&key=k` | `200 true` or `200 false` |
//! | `op=list-keys[&cursor=c]` | `200 {"keys": [sorted], "cursor": null}` |
//! | `op=get-many&key=a&key=b` | `200 [["a", "v"], ["b", null]]`, in the order answered |
//! | `op=set-many&key=a&value=1&key=b&value=2` | `200 ok` |
//! | `op=delete-many&key=a&key=b` | `200 ok` |
//! | `op=increment&key=k[&delta=n]` | `200 <new value>` (delta 1 by default) |
//! | `op=cas&key=k&value=v` | `cas.new`, `current`, `swap`: `200 {"observed": "old" or null}` |
//! | `op=cas-conflict&key=k&value=v&interloper=x[&current=false]` | see [`cas_conflict`] |
//! | `op=cas-increment&key=k` | adds 1 with a CAS retry loop: `200 {"value": n, "retries": r}` |
//!
//! Any store error, including failing to open (`AccessDenied`), is a `500` with the error's
//! `Debug` text; a bad query is a `500` that says what is wrong.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use probe_support::Query;
use serde_json::{Value, json};
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::wit::wasi::keyvalue::atomics::{self, Cas, CasError};
use spin_sdk::wit::wasi::keyvalue::batch;
use spin_sdk::wit::wasi::keyvalue::store::{self, Bucket};

const DEFAULT_STORE: &str = "default";
/// A CAS loop that retries this often is not losing to other writers but to a bug.
const MAX_CAS_RETRIES: u32 = 10_000;

/// Runs the probe described in the crate docs.
#[http_component]
fn handle_wasi_kv_probe(request: Request) -> Response {
    let query = Query::parse(request.query());
    match probe(&query) {
        Ok((status, body)) => text_response(status, body),
        Err(reason) => text_response(500, reason),
    }
}

fn debug(error: impl std::fmt::Debug) -> String {
    format!("{error:?}")
}

fn text(bytes: Option<Vec<u8>>) -> Value {
    match bytes {
        Some(bytes) => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
        None => Value::Null,
    }
}

fn probe(query: &Query) -> Result<(u16, String), String> {
    let label = query.get("store").unwrap_or(DEFAULT_STORE);
    let bucket = store::open(label).map_err(debug)?;
    let Some(op) = query.get("op") else {
        return Ok((200, "opened".to_owned()));
    };
    let ok = || Ok((200, "ok".to_owned()));
    match op {
        "get" => match bucket.get(query.require("key")?).map_err(debug)? {
            Some(value) => Ok((200, String::from_utf8_lossy(&value).into_owned())),
            None => Ok((404, "not found".to_owned())),
        },
        "set" => {
            let value = query.require("value")?;
            bucket
                .set(query.require("key")?, value.as_bytes())
                .map_err(debug)?;
            ok()
        }
        "delete" => {
            bucket.delete(query.require("key")?).map_err(debug)?;
            ok()
        }
        "exists" => {
            let exists = bucket.exists(query.require("key")?).map_err(debug)?;
            Ok((200, exists.to_string()))
        }
        "list-keys" => {
            let response = bucket.list_keys(query.get("cursor")).map_err(debug)?;
            let mut keys = response.keys;
            keys.sort();
            let body = json!({ "keys": keys, "cursor": response.cursor });
            Ok((200, body.to_string()))
        }
        "get-many" => {
            let found = batch::get_many(&bucket, &query.all("key")).map_err(debug)?;
            let pairs: Vec<Value> = found
                .into_iter()
                .map(|(key, value)| json!([key, text(value)]))
                .collect();
            Ok((200, Value::Array(pairs).to_string()))
        }
        "set-many" => {
            let keys = query.all("key");
            let values = query.all("value");
            if keys.len() != values.len() {
                return Err(format!("{} keys but {} values", keys.len(), values.len()));
            }
            let entries: Vec<(String, Vec<u8>)> = keys
                .into_iter()
                .zip(values.into_iter().map(String::into_bytes))
                .collect();
            batch::set_many(&bucket, &entries).map_err(debug)?;
            ok()
        }
        "delete-many" => {
            batch::delete_many(&bucket, &query.all("key")).map_err(debug)?;
            ok()
        }
        "increment" => {
            let delta = match query.get("delta") {
                Some(delta) => delta
                    .parse()
                    .map_err(|_| format!("delta {delta:?} is not an i64"))?,
                None => 1,
            };
            let value = atomics::increment(&bucket, query.require("key")?, delta).map_err(debug)?;
            Ok((200, value.to_string()))
        }
        "cas" => {
            let cas = Cas::new(&bucket, query.require("key")?).map_err(debug)?;
            let observed = cas.current().map_err(debug)?;
            atomics::swap(cas, query.require("value")?.as_bytes()).map_err(debug)?;
            Ok((200, json!({ "observed": text(observed) }).to_string()))
        }
        "cas-conflict" => cas_conflict(&bucket, query),
        "cas-increment" => cas_increment(&bucket, query.require("key")?),
        unknown_op => Err(format!("unknown op {unknown_op:?}")),
    }
}

/// A swap that loses to another writer, then succeeds on the handle it gets back:
/// `cas.new`, `current` (unless `current=false`), a plain `set` of `interloper` through the
/// same bucket, `swap` of `value` (expected to fail with `cas-failed`), `current` on the
/// returned handle, and `swap` of `value` on it. Answers
/// `200 {"first_swap": "cas-failed" | "ok", "fresh_current": "...", "second_swap": "ok"}`.
fn cas_conflict(bucket: &Bucket, query: &Query) -> Result<(u16, String), String> {
    let key = query.require("key")?;
    let value = query.require("value")?.as_bytes();
    let cas = Cas::new(bucket, key).map_err(debug)?;
    if query.get("current") != Some("false") {
        cas.current().map_err(debug)?;
    }
    bucket
        .set(key, query.require("interloper")?.as_bytes())
        .map_err(debug)?;
    let fresh = match atomics::swap(cas, value) {
        Ok(()) => return Ok((200, json!({ "first_swap": "ok" }).to_string())),
        Err(CasError::CasFailed(fresh)) => fresh,
        Err(CasError::StoreError(error)) => return Err(debug(error)),
    };
    let fresh_current = fresh.current().map_err(debug)?;
    let second_swap = match atomics::swap(fresh, value) {
        Ok(()) => "ok".to_owned(),
        Err(error) => debug(error),
    };
    let body = json!({
        "first_swap": "cas-failed",
        "fresh_current": text(fresh_current),
        "second_swap": second_swap,
    });
    Ok((200, body.to_string()))
}

/// Adds 1 to the decimal integer at `key` (missing: 0) with CAS, retrying on `cas-failed`
/// with the handle the failure returns.
fn cas_increment(bucket: &Bucket, key: &str) -> Result<(u16, String), String> {
    let mut cas = Cas::new(bucket, key).map_err(debug)?;
    let mut retries = 0;
    loop {
        let current = match cas.current().map_err(debug)? {
            Some(bytes) => String::from_utf8_lossy(&bytes)
                .parse::<i64>()
                .map_err(|error| format!("value is not an integer: {error}"))?,
            None => 0,
        };
        let next = current
            .checked_add(1)
            .ok_or_else(|| "increment overflows an i64".to_owned())?;
        match atomics::swap(cas, next.to_string().as_bytes()) {
            Ok(()) => {
                let body = json!({ "value": next, "retries": retries });
                return Ok((200, body.to_string()));
            }
            Err(CasError::CasFailed(fresh)) => cas = fresh,
            Err(CasError::StoreError(error)) => return Err(debug(error)),
        }
        retries += 1;
        if retries > MAX_CAS_RETRIES {
            return Err(format!("gave up after {MAX_CAS_RETRIES} retries"));
        }
    }
}

fn text_response(status: u16, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body)
        .build()
}
