//! `headers`: echoes the request as JSON and answers with the status and headers the request
//! asks for (test fixture, spin-sdk 5.2, WASIp2).
//!
//! The body is `{"method", "uri", "headers", "header_list", "body_len"}`: `headers` maps each
//! lowercased name to its values joined with `", "` in arrival order, and `header_list` is every
//! `[name, value]` pair in the order the guest received them, Spin's `spin-*` headers included.
//!
//! The response carries `content-type: application/json`, then one header per query parameter
//! `respond-header=<name>:<value>`, in query order, with the status in `respond-status`
//! (default 200). It reads the raw `IncomingRequest` and writes a raw `OutgoingResponse` because
//! the SDK's `Request` and `Response` keep only one value per header name.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use serde_json::{Map, Value, json};
use spin_sdk::http::{Fields, IncomingRequest, OutgoingResponse, ResponseOutparam};
use spin_sdk::http_component;

/// What to answer: a status, headers in order, and a body.
struct Reply {
    status: u16,
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
}

/// Answers with the JSON echo, or `500` with the reason when the request body cannot be read
/// or the requested status or headers are invalid.
#[http_component]
async fn handle_headers(request: IncomingRequest, response_out: ResponseOutparam) {
    let reply = echo(request).await.unwrap_or_else(|reason| Reply {
        status: 500,
        headers: Vec::new(),
        body: reason.into_bytes(),
    });
    let (response, body) = match outgoing(reply.status, &reply.headers) {
        Ok(response) => (response, reply.body),
        Err(reason) => match outgoing(500, &[]) {
            Ok(response) => (response, reason.into_bytes()),
            // Nothing can be sent; dropping the outparam makes the host answer with an error.
            Err(_) => return,
        },
    };
    if let Err(error) = response_out.set_with_body(response, body).await {
        eprintln!("failed to send the response body: {error:?}");
    }
}

async fn echo(request: IncomingRequest) -> Result<Reply, String> {
    let method = request.method().to_string();
    let uri = request.uri();
    let query = request
        .path_with_query()
        .and_then(|target| target.split_once('?').map(|(_, query)| query.to_owned()))
        .unwrap_or_default();
    let (status, requested_headers) = requested_response(&query)?;
    let entries: Vec<(String, String)> = request
        .headers()
        .entries()
        .into_iter()
        .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
        .collect();
    let body = request
        .into_body()
        .await
        .map_err(|error| format!("failed to read request body: {error:?}"))?;
    let echo = json!({
        "method": method,
        "uri": uri,
        "headers": joined_headers(&entries),
        "header_list": entries,
        "body_len": body.len(),
    });
    let mut headers = vec![("content-type".to_owned(), b"application/json".to_vec())];
    headers.extend(
        requested_headers
            .into_iter()
            .map(|(name, value)| (name, value.into_bytes())),
    );
    Ok(Reply {
        status,
        headers,
        body: echo.to_string().into_bytes(),
    })
}

fn outgoing(status: u16, headers: &[(String, Vec<u8>)]) -> Result<OutgoingResponse, String> {
    let fields = Fields::from_list(headers)
        .map_err(|error| format!("invalid response header: {error:?}"))?;
    let response = OutgoingResponse::new(fields);
    response
        .set_status_code(status)
        .map_err(|()| format!("invalid response status {status}"))?;
    Ok(response)
}

/// The status and headers asked for by `respond-status` and `respond-header` in `query`.
fn requested_response(query: &str) -> Result<(u16, Vec<(String, String)>), String> {
    let mut status = 200;
    let mut headers = Vec::new();
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match &*key {
            "respond-status" => {
                status = value
                    .parse()
                    .map_err(|_| format!("invalid respond-status `{value}`"))?;
            }
            "respond-header" => {
                let (name, value) = value
                    .split_once(':')
                    .ok_or_else(|| format!("respond-header `{value}` is not `name:value`"))?;
                headers.push((name.to_owned(), value.to_owned()));
            }
            _ => {}
        }
    }
    Ok((status, headers))
}

/// Lowercases names and joins the values of a repeated name with `", "`, in arrival order.
fn joined_headers(entries: &[(String, String)]) -> Map<String, Value> {
    let mut headers = Map::new();
    for (name, value) in entries {
        let name = name.to_ascii_lowercase();
        match headers.get_mut(&name) {
            Some(Value::String(joined)) => {
                joined.push_str(", ");
                joined.push_str(value);
            }
            _ => {
                headers.insert(name, Value::String(value.clone()));
            }
        }
    }
    headers
}
