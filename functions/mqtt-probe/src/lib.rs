//! `mqtt-probe`: opens an MQTT connection and publishes one message (test fixture,
//! spin-sdk 5.2, `fermyon:spin/mqtt@2.0.0`).
//!
//! Query parameters: `address=<mqtt URL with client_id>` (required), `username`, `password`
//! (default empty), `keep_alive` (seconds, default 30), then `topic`, `payload` (text) and
//! `qos` (`0`, `1` or `2`, default `0`). Without `topic` the probe only opens the connection
//! and answers `200 opened`; with it, `200 published`. Any MQTT error, including failing to
//! open (`ConnectionFailed("address … is not permitted")`, `InvalidAddress`), is a `500` with
//! the error's `Debug` text; a bad query is a `500` that says what is wrong.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use probe_support::Query;
use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::mqtt::{Connection, Qos};

const DEFAULT_KEEP_ALIVE_SECS: u64 = 30;

/// Runs the probe described in the crate docs.
#[http_component]
fn handle_mqtt_probe(request: Request) -> Response {
    let query = Query::parse(request.query());
    match probe(&query) {
        Ok(body) => text_response(200, body),
        Err(reason) => text_response(500, reason),
    }
}

fn probe(query: &Query) -> Result<String, String> {
    let keep_alive = match query.get("keep_alive") {
        Some(seconds) => seconds
            .parse()
            .map_err(|_| format!("bad keep_alive {seconds:?}"))?,
        None => DEFAULT_KEEP_ALIVE_SECS,
    };
    let connection = Connection::open(
        query.require("address")?,
        query.get("username").unwrap_or_default(),
        query.get("password").unwrap_or_default(),
        keep_alive,
    )
    .map_err(|error| format!("{error:?}"))?;
    let Some(topic) = query.get("topic") else {
        return Ok("opened".to_owned());
    };
    let qos = match query.get("qos").unwrap_or("0") {
        "0" => Qos::AtMostOnce,
        "1" => Qos::AtLeastOnce,
        "2" => Qos::ExactlyOnce,
        other => return Err(format!("bad qos {other:?}: expected 0, 1 or 2")),
    };
    let payload = query.get("payload").unwrap_or_default().as_bytes().to_vec();
    connection
        .publish(topic, &payload, qos)
        .map_err(|error| format!("{error:?}"))?;
    Ok("published".to_owned())
}

fn text_response(status: u16, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "text/plain")
        .body(body)
        .build()
}
