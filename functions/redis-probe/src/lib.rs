//! `redis-probe`: opens a Redis connection and runs one operation on it (test fixture,
//! spin-sdk 5.2, `fermyon:spin/redis@2.0.0`).
//!
//! Query parameters: `address=<redis URL>` (required), then an optional `op`:
//!
//! | query | answer |
//! |---|---|
//! | (no `op`) | `200 opened` |
//! | `op=publish&channel=c&payload=p` | `200 ok` |
//! | `op=get&key=k` | `200 nil` or `200 binary:<hex>` |
//! | `op=set&key=k&value=v` | `200 ok` |
//! | `op=incr&key=k` | `200 <new value>` |
//! | `op=del&key=k1&key=k2…` | `200 <keys deleted>` |
//! | `op=sadd&key=k&value=v1&value=v2…` | `200 <values added>` |
//! | `op=srem&key=k&value=v1…` | `200 <values removed>` |
//! | `op=smembers&key=k` | `200` with the members, sorted, one per line |
//! | `op=execute&command=C&arg=…` | `200` with one result per line: `nil`, `status:<text>`, `int64:<n>` or `binary:<hex>` |
//!
//! An `execute` argument is `int:<n>` (`int64`), `text:<s>` or `hex:<bytes>` (`binary`). Any
//! Redis error, including failing to open (`InvalidAddress`), is a `500` with the error's
//! `Debug` text; a bad query is a `500` that says what is wrong.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use probe_support::Query;
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::redis::{Connection, RedisParameter, RedisResult};

/// Runs the probe described in the crate docs.
#[http_component]
fn handle_redis_probe(request: Request) -> Response {
    let query = Query::parse(request.query());
    match probe(&query) {
        Ok(body) => text_response(200, body),
        Err(reason) => text_response(500, reason),
    }
}

fn probe(query: &Query) -> Result<String, String> {
    let connection = Connection::open(query.require("address")?).map_err(debug)?;
    let Some(op) = query.get("op") else {
        return Ok("opened".to_owned());
    };
    match op {
        "publish" => {
            let payload = query.require("payload")?.as_bytes().to_vec();
            connection
                .publish(query.require("channel")?, &payload)
                .map_err(debug)?;
            Ok("ok".to_owned())
        }
        "get" => Ok(
            match connection.get(query.require("key")?).map_err(debug)? {
                Some(value) => format!("binary:{}", hex(&value)),
                None => "nil".to_owned(),
            },
        ),
        "set" => {
            let value = query.require("value")?.as_bytes().to_vec();
            connection
                .set(query.require("key")?, &value)
                .map_err(debug)?;
            Ok("ok".to_owned())
        }
        "incr" => Ok(connection
            .incr(query.require("key")?)
            .map_err(debug)?
            .to_string()),
        "del" => Ok(connection
            .del(&query.all("key"))
            .map_err(debug)?
            .to_string()),
        "sadd" => Ok(connection
            .sadd(query.require("key")?, &query.all("value"))
            .map_err(debug)?
            .to_string()),
        "srem" => Ok(connection
            .srem(query.require("key")?, &query.all("value"))
            .map_err(debug)?
            .to_string()),
        "smembers" => {
            let mut members = connection.smembers(query.require("key")?).map_err(debug)?;
            members.sort();
            Ok(members.join("\n"))
        }
        "execute" => {
            let arguments = query
                .all("arg")
                .iter()
                .map(|argument| parameter(argument))
                .collect::<Result<Vec<_>, _>>()?;
            let results = connection
                .execute(query.require("command")?, &arguments)
                .map_err(debug)?;
            Ok(results
                .iter()
                .map(result_line)
                .collect::<Vec<_>>()
                .join("\n"))
        }
        unknown_op => Err(format!(
            "unknown op {unknown_op:?}: expected publish, get, set, incr, del, sadd, srem, smembers or execute"
        )),
    }
}

fn parameter(argument: &str) -> Result<RedisParameter, String> {
    match argument.split_once(':') {
        Some(("int", number)) => number
            .parse()
            .map(RedisParameter::Int64)
            .map_err(|_| format!("bad int argument {argument:?}")),
        Some(("text", text)) => Ok(RedisParameter::Binary(text.as_bytes().to_vec())),
        Some(("hex", bytes)) => unhex(bytes)
            .map(RedisParameter::Binary)
            .ok_or_else(|| format!("bad hex argument {argument:?}")),
        _ => Err(format!(
            "bad argument {argument:?}: expected int:<n>, text:<s> or hex:<bytes>"
        )),
    }
}

fn result_line(result: &RedisResult) -> String {
    match result {
        RedisResult::Nil => "nil".to_owned(),
        RedisResult::Status(status) => format!("status:{status}"),
        RedisResult::Int64(number) => format!("int64:{number}"),
        RedisResult::Binary(bytes) => format!("binary:{}", hex(bytes)),
    }
}

fn debug(error: impl std::fmt::Debug) -> String {
    format!("{error:?}")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(text.get(index..index + 2)?, 16).ok())
        .collect()
}

fn text_response(status: u16, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body)
        .build()
}
