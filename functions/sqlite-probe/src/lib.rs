//! `sqlite-probe`: runs one SQL statement on a Spin SQLite database and answers its result as
//! JSON (test fixture, spin-sdk 5.2).
//!
//! The request body is the SQL. Query parameters: `db=<label>` (default `default`) and `api`:
//! `v2` (default) runs it through `spin_sdk::sqlite` (`fermyon:spin/sqlite@2.0.0`), `v3`
//! through `spin_sdk::sqlite3` (`spin:sqlite/sqlite@3.0.0`). The `x-sqlite-params` header
//! holds the parameters as a JSON array: an integer number is an integer, any other number a
//! real, a string text, `null` null, and `{"blob": [bytes]}` a blob.
//!
//! The answer is `200` with
//! `{"columns": [...], "rows": [[value, ...], ...]}`, each value tagged with its type
//! (`{"integer": 1}`, `{"real": 1.5}`, `{"text": "a"}`, `{"blob": [1, 2]}`, `null`); `v3` adds
//! `"last_insert_rowid"` and `"changes"`. Any SQLite error, including failing to open
//! (`AccessDenied`, `NoSuchDatabase`), is a `500` with the error's `Debug` text; a bad request
//! is a `500` that says what is wrong.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use serde_json::{Value as Json, json};
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::{sqlite, sqlite3};

const DEFAULT_DATABASE: &str = "default";
const PARAMS_HEADER: &str = "x-sqlite-params";

/// Runs the probe described in the crate docs.
#[http_component]
fn handle_sqlite_probe(request: Request) -> Response {
    match probe(&request) {
        Ok(answer) => Response::builder()
            .status(200)
            .header("content-type", "application/json")
            .body(answer.to_string())
            .build(),
        Err(reason) => Response::builder()
            .status(500)
            .header("content-type", "text/plain")
            .body(reason)
            .build(),
    }
}

fn probe(request: &Request) -> Result<Json, String> {
    let query: Vec<(String, String)> = form_urlencoded::parse(request.query().as_bytes())
        .into_owned()
        .collect();
    let get = |wanted: &str| {
        query
            .iter()
            .find(|(name, _)| name == wanted)
            .map(|(_, value)| value.as_str())
    };
    let database = get("db").unwrap_or(DEFAULT_DATABASE);
    let sql = std::str::from_utf8(request.body()).map_err(|error| format!("body: {error}"))?;
    let params = match request.header(PARAMS_HEADER) {
        Some(header) => {
            let text = header
                .as_str()
                .ok_or_else(|| format!("{PARAMS_HEADER} is not UTF-8"))?;
            serde_json::from_str(text).map_err(|error| format!("{PARAMS_HEADER}: {error}"))?
        }
        None => Vec::new(),
    };
    match get("api").unwrap_or("v2") {
        "v2" => run_v2(database, sql, &params),
        "v3" => run_v3(database, sql, &params),
        other => Err(format!("unknown api {other:?}: expected v2 or v3")),
    }
}

fn run_v2(database: &str, sql: &str, params: &[Json]) -> Result<Json, String> {
    let parameters = params
        .iter()
        .map(|param| {
            Ok(match Param::parse(param)? {
                Param::Integer(integer) => sqlite::Value::Integer(integer),
                Param::Real(real) => sqlite::Value::Real(real),
                Param::Text(text) => sqlite::Value::Text(text),
                Param::Blob(blob) => sqlite::Value::Blob(blob),
                Param::Null => sqlite::Value::Null,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let connection = sqlite::Connection::open(database).map_err(|error| format!("{error:?}"))?;
    let result = connection
        .execute(sql, &parameters)
        .map_err(|error| format!("{error:?}"))?;
    let rows: Vec<Json> = result
        .rows
        .iter()
        .map(|row| {
            row.values
                .iter()
                .map(|value| match value {
                    sqlite::Value::Integer(integer) => json!({ "integer": integer }),
                    sqlite::Value::Real(real) => json!({ "real": real }),
                    sqlite::Value::Text(text) => json!({ "text": text }),
                    sqlite::Value::Blob(blob) => json!({ "blob": blob }),
                    sqlite::Value::Null => Json::Null,
                })
                .collect()
        })
        .collect();
    Ok(json!({ "columns": result.columns, "rows": rows }))
}

fn run_v3(database: &str, sql: &str, params: &[Json]) -> Result<Json, String> {
    let parameters = params
        .iter()
        .map(|param| {
            Ok(match Param::parse(param)? {
                Param::Integer(integer) => sqlite3::Value::Integer(integer),
                Param::Real(real) => sqlite3::Value::Real(real),
                Param::Text(text) => sqlite3::Value::Text(text),
                Param::Blob(blob) => sqlite3::Value::Blob(blob),
                Param::Null => sqlite3::Value::Null,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let connection = sqlite3::Connection::open(database).map_err(|error| format!("{error:?}"))?;
    let result = connection
        .execute(sql, &parameters)
        .map_err(|error| format!("{error:?}"))?;
    let rows: Vec<Json> = result
        .rows
        .iter()
        .map(|row| {
            row.values
                .iter()
                .map(|value| match value {
                    sqlite3::Value::Integer(integer) => json!({ "integer": integer }),
                    sqlite3::Value::Real(real) => json!({ "real": real }),
                    sqlite3::Value::Text(text) => json!({ "text": text }),
                    sqlite3::Value::Blob(blob) => json!({ "blob": blob }),
                    sqlite3::Value::Null => Json::Null,
                })
                .collect()
        })
        .collect();
    Ok(json!({
        "columns": result.columns,
        "rows": rows,
        "last_insert_rowid": connection.last_insert_rowid(),
        "changes": connection.changes(),
    }))
}

/// A parameter as the `x-sqlite-params` header writes it.
enum Param {
    Integer(i64),
    Real(f64),
    Text(String),
    Blob(Vec<u8>),
    Null,
}

impl Param {
    fn parse(json: &Json) -> Result<Self, String> {
        match json {
            Json::Null => Ok(Self::Null),
            Json::Number(number) => match number.as_i64() {
                Some(integer) => Ok(Self::Integer(integer)),
                None => number
                    .as_f64()
                    .map(Self::Real)
                    .ok_or_else(|| format!("unsupported number {number}")),
            },
            Json::String(text) => Ok(Self::Text(text.clone())),
            Json::Object(object) => match object.get("blob") {
                Some(Json::Array(bytes)) => bytes
                    .iter()
                    .map(|byte| {
                        byte.as_u64()
                            .and_then(|byte| u8::try_from(byte).ok())
                            .ok_or_else(|| format!("not a byte: {byte}"))
                    })
                    .collect::<Result<_, _>>()
                    .map(Self::Blob),
                _ => Err(format!("unsupported parameter {json}")),
            },
            other => Err(format!("unsupported parameter {other}")),
        }
    }
}
