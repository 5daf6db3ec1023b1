//! `mqtt-probe-p3`: opens an MQTT connection and publishes one message (test fixture,
//! spin-sdk 7.0, `spin:mqtt/mqtt@3.0.0`).
//!
//! Same query and answers as the WASIp2 `mqtt-probe`: `address` (required), `username`,
//! `password`, `keep_alive`, then `topic`, `payload` and `qos` (`0`, `1`, `2`); `200 opened`
//! or `200 published`, or a `500` with the error's `Debug` text.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_service]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_7 as spin_sdk;

use probe_support::Query;
use spin_sdk::http::{HeaderMap, HeaderName, HeaderValue, IntoResponse, Request, StatusCode};
use spin_sdk::http_service;
use spin_sdk::mqtt::{Connection, Qos};

const DEFAULT_KEEP_ALIVE_SECS: u64 = 30;

/// Runs the probe described in the crate docs.
#[http_service]
async fn handle_mqtt_probe(request: Request) -> impl IntoResponse {
    let query = Query::parse(request.uri().query().unwrap_or_default());
    match probe(&query).await {
        Ok(body) => text_response(StatusCode::OK, body),
        Err(reason) => text_response(StatusCode::INTERNAL_SERVER_ERROR, reason),
    }
}

async fn probe(query: &Query) -> Result<String, String> {
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
    .await
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
        .publish(topic, payload, qos)
        .await
        .map_err(|error| format!("{error:?}"))?;
    Ok("published".to_owned())
}

fn text_response(status: StatusCode, body: String) -> (StatusCode, HeaderMap, String) {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("content-type"),
        HeaderValue::from_static("text/plain"),
    );
    (status, headers, body)
}
