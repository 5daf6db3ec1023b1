//! `sqlite-probe-p3`: runs one SQL statement on a Spin SQLite database and answers its result
//! as JSON (test fixture, spin-sdk 7.0, `spin:sqlite/sqlite@3.1.0`).
//!
//! Same request and answer as the WASIp2 `sqlite-probe` with `api=v3`: the body is the SQL,
//! `db=<label>` picks the database (default `default`), the `x-sqlite-params` header holds the
//! parameters as a JSON array, and the answer has `columns`, `rows`, `last_insert_rowid` and
//! `changes`. Rows are read from the stream one at a time, then the outcome future is awaited;
//! an error from either is a `500` with its `Debug` text.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_service]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_7 as spin_sdk;

use serde_json::{Value as Json, json};
use spin_sdk::http::body::IncomingBodyExt as _;
use spin_sdk::http::{HeaderMap, HeaderName, HeaderValue, IntoResponse, Request, StatusCode};
use spin_sdk::http_service;
use spin_sdk::sqlite::{Connection, Value};

const DEFAULT_DATABASE: &str = "default";
const PARAMS_HEADER: &str = "x-sqlite-params";

/// Runs the probe described in the crate docs.
#[http_service]
async fn handle_sqlite_probe(request: Request) -> impl IntoResponse {
    let mut headers = HeaderMap::new();
    match probe(request).await {
        Ok(answer) => {
            headers.insert(
                HeaderName::from_static("content-type"),
                HeaderValue::from_static("application/json"),
            );
            (StatusCode::OK, headers, answer.to_string())
        }
        Err(reason) => {
            headers.insert(
                HeaderName::from_static("content-type"),
                HeaderValue::from_static("text/plain"),
            );
            (StatusCode::INTERNAL_SERVER_ERROR, headers, reason)
        }
    }
}

async fn probe(request: Request) -> Result<Json, String> {
    let query: Vec<(String, String)> =
        form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let database = query
        .iter()
        .find(|(name, _)| name == "db")
        .map_or(DEFAULT_DATABASE, |(_, value)| value.as_str())
        .to_owned();
    let params: Vec<Json> = match request.headers().get(PARAMS_HEADER) {
        Some(header) => {
            // Not `to_str`, which refuses anything but visible ASCII: text values are UTF-8.
            let text = std::str::from_utf8(header.as_bytes())
                .map_err(|error| format!("{PARAMS_HEADER}: {error}"))?;
            serde_json::from_str(text).map_err(|error| format!("{PARAMS_HEADER}: {error}"))?
        }
        None => Vec::new(),
    };
    let parameters = params
        .iter()
        .map(parameter)
        .collect::<Result<Vec<_>, String>>()?;
    let body = request
        .into_body()
        .bytes()
        .await
        .map_err(|error| format!("body: {error:?}"))?;
    let sql = String::from_utf8(body.to_vec()).map_err(|error| format!("body: {error}"))?;

    let connection = Connection::open(&database)
        .await
        .map_err(|error| format!("{error:?}"))?;
    let mut result = connection
        .execute(&sql, parameters)
        .await
        .map_err(|error| format!("{error:?}"))?;
    let columns = result.columns().to_vec();
    let mut rows = Vec::new();
    while let Some(row) = result.next().await {
        rows.push(row.values.iter().map(value).collect::<Json>());
    }
    result
        .result()
        .await
        .map_err(|error| format!("{error:?}"))?;
    Ok(json!({
        "columns": columns,
        "rows": rows,
        "last_insert_rowid": connection.last_insert_rowid().await,
        "changes": connection.changes().await,
    }))
}

/// A parameter as the `x-sqlite-params` header writes it: an integer number is an integer, any
/// other number a real, a string text, `null` null, `{"blob": [bytes]}` a blob.
fn parameter(json: &Json) -> Result<Value, String> {
    match json {
        Json::Null => Ok(Value::Null),
        Json::Number(number) => match number.as_i64() {
            Some(integer) => Ok(Value::Integer(integer)),
            None => number
                .as_f64()
                .map(Value::Real)
                .ok_or_else(|| format!("unsupported number {number}")),
        },
        Json::String(text) => Ok(Value::Text(text.clone())),
        Json::Object(object) => match object.get("blob") {
            Some(Json::Array(bytes)) => bytes
                .iter()
                .map(|byte| {
                    byte.as_u64()
                        .and_then(|byte| u8::try_from(byte).ok())
                        .ok_or_else(|| format!("not a byte: {byte}"))
                })
                .collect::<Result<_, _>>()
                .map(Value::Blob),
            _ => Err(format!("unsupported parameter {json}")),
        },
        other => Err(format!("unsupported parameter {other}")),
    }
}

/// A value tagged with its type.
fn value(value: &Value) -> Json {
    match value {
        Value::Integer(integer) => json!({ "integer": integer }),
        Value::Real(real) => json!({ "real": real }),
        Value::Text(text) => json!({ "text": text }),
        Value::Blob(blob) => json!({ "blob": blob }),
        Value::Null => Json::Null,
    }
}
