//! `redis-probe-p3`: opens a Redis connection and runs one operation on it (test fixture,
//! spin-sdk 7.0, `spin:redis/redis@3.0.0`).
//!
//! Same query and answers as the WASIp2 `redis-probe`: `address=<redis URL>`, then an
//! optional `op` of `publish` (`channel`, `payload`), `get` (`key`), `set` (`key`, `value`),
//! `incr` (`key`), `del` (`key`…), `sadd`/`srem` (`key`, `value`…), `smembers` (`key`) or
//! `execute` (`command`, `arg`… as `int:<n>`, `text:<s>` or `hex:<bytes>`). Results are
//! `nil`, `status:<text>`, `int64:<n>` or `binary:<hex>`, one per line; Redis errors are a
//! `500` with the error's `Debug` text.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_service]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_7 as spin_sdk;

use probe_support::Query;
use spin_sdk::http::{HeaderMap, HeaderName, HeaderValue, IntoResponse, Request, StatusCode};
use spin_sdk::http_service;
use spin_sdk::redis::{Connection, RedisParameter, RedisResult};

/// Runs the probe described in the crate docs.
#[http_service]
async fn handle_redis_probe(request: Request) -> impl IntoResponse {
    let query = Query::parse(request.uri().query().unwrap_or_default());
    match probe(&query).await {
        Ok(body) => text_response(StatusCode::OK, body),
        Err(reason) => text_response(StatusCode::INTERNAL_SERVER_ERROR, reason),
    }
}

async fn probe(query: &Query) -> Result<String, String> {
    let connection = Connection::open(query.require("address")?)
        .await
        .map_err(debug)?;
    let Some(op) = query.get("op") else {
        return Ok("opened".to_owned());
    };
    match op {
        "publish" => {
            connection
                .publish(query.require("channel")?, query.require("payload")?)
                .await
                .map_err(debug)?;
            Ok("ok".to_owned())
        }
        "get" => Ok(
            match connection.get(query.require("key")?).await.map_err(debug)? {
                Some(value) => format!("binary:{}", hex(&value)),
                None => "nil".to_owned(),
            },
        ),
        "set" => {
            connection
                .set(query.require("key")?, query.require("value")?)
                .await
                .map_err(debug)?;
            Ok("ok".to_owned())
        }
        "incr" => Ok(connection
            .incr(query.require("key")?)
            .await
            .map_err(debug)?
            .to_string()),
        "del" => Ok(connection
            .del(query.all("key"))
            .await
            .map_err(debug)?
            .to_string()),
        "sadd" => Ok(connection
            .sadd(query.require("key")?, query.all("value"))
            .await
            .map_err(debug)?
            .to_string()),
        "srem" => Ok(connection
            .srem(query.require("key")?, query.all("value"))
            .await
            .map_err(debug)?
            .to_string()),
        "smembers" => {
            let mut members = connection
                .smembers(query.require("key")?)
                .await
                .map_err(debug)?;
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
                .execute(query.require("command")?, arguments)
                .await
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

fn text_response(status: StatusCode, body: String) -> (StatusCode, HeaderMap, String) {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("content-type"),
        HeaderValue::from_static("text/plain"),
    );
    (status, headers, body)
}
