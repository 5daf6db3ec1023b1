//! `nexus-edge lambda`: an AWS Lambda custom runtime (the `bootstrap` of a `provided.al2023`
//! function) serving its bundle's app.
//!
//! It answers the HTTP events of function URLs, API Gateway (REST and HTTP APIs) and ALB
//! target groups, and the coordinator's direct invocations (`{"nexus": …}`, synchronous or
//! `Event`). Every response body travels base64-encoded, so the bytes arrive exactly as the
//! guest wrote them whatever their content type.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue};
use http_body_util::Full;
use lambda_http::aws_lambda_events::alb::AlbTargetGroupResponse;
use lambda_http::aws_lambda_events::apigw::{ApiGatewayProxyResponse, ApiGatewayV2httpResponse};
use lambda_http::request::{LambdaRequest, RequestContext, RequestOrigin};
use lambda_http::{Body, LambdaEvent, RequestExt as _};
use nexus_proto::cloud::CloudEnvelope;
use serde_json::Value;

use super::{CloudHost, UNKNOWN_CLIENT};

/// The variable the Lambda service sets to the runtime API's address.
pub const RUNTIME_API: &str = "AWS_LAMBDA_RUNTIME_API";

/// Serves `host` to the Lambda runtime API until the function is shut down.
pub async fn run(host: CloudHost) -> anyhow::Result<()> {
    // The runtime client panics when the function's variables are missing; say why instead.
    for variable in [
        RUNTIME_API,
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    ] {
        if std::env::var_os(variable).is_none() {
            anyhow::bail!(
                "{variable} is not set: `nexus-edge lambda` runs inside AWS Lambda (or its emulator)"
            );
        }
    }
    let host = Arc::new(host);
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: LambdaEvent<Value>| {
            let host = Arc::clone(&host);
            async move { handle(&host, event).await }
        },
    ))
    .await
    .map_err(|error| anyhow::anyhow!("the Lambda runtime stopped: {error}"))
}

/// One event: the coordinator's invocation, or an HTTP event of the platform.
pub async fn handle(
    host: &CloudHost,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let LambdaEvent { payload, context } = event;
    if payload.get("nexus").is_some() {
        let envelope: CloudEnvelope = serde_json::from_value(payload)
            .map_err(|error| format!("not a SirsiNexus invocation: {error}"))?;
        return Ok(serde_json::to_value(host.invoke(envelope.nexus).await)?);
    }
    let event: LambdaRequest = serde_json::from_value(payload).map_err(|error| {
        format!("not an HTTP event of a function URL, API Gateway or ALB: {error}")
    })?;
    let origin = event.request_origin();
    let request: lambda_http::Request = event.into();
    let request = request.with_lambda_context(context);
    let client = client_address(&request);
    let (parts, body) = request.into_parts();
    let body = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => return Err("an HTTP event body of an unknown kind".into()),
    };
    let request = http::Request::from_parts(parts, Full::new(body));
    let response = match host.run(request, client, "").await {
        Ok(response) => response,
        Err(error) => error.logged_response(),
    };
    Ok(http_response(&origin, response)?)
}

/// The caller's address as the platform saw it.
fn client_address(request: &lambda_http::Request) -> SocketAddr {
    let ip = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV2(context)) => context.http.source_ip.clone(),
        Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.clone(),
        _ => request
            .headers()
            .get("x-forwarded-for")
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(',').next())
            .map(|first| first.trim().to_owned()),
    };
    ip.and_then(|ip| ip.parse().ok())
        .map_or(UNKNOWN_CLIENT, |ip| SocketAddr::new(ip, 0))
}

/// The response in the shape the event's origin expects.
fn http_response(
    origin: &RequestOrigin,
    response: http::Response<Bytes>,
) -> Result<Value, serde_json::Error> {
    let (parts, body) = response.into_parts();
    let status = i64::from(parts.status.as_u16());
    let body = (!body.is_empty()).then(|| Body::Binary(body.to_vec()));
    match origin {
        RequestOrigin::ApiGatewayV2 => {
            let mut response = ApiGatewayV2httpResponse::default();
            response.status_code = status;
            response.cookies = parts
                .headers
                .get_all(SET_COOKIE)
                .iter()
                .filter_map(|cookie| cookie.to_str().ok().map(str::to_owned))
                .collect();
            let mut headers = parts.headers;
            headers.remove(SET_COOKIE);
            response.headers = joined(&headers);
            response.is_base64_encoded = body.is_some();
            response.body = body;
            serde_json::to_value(response)
        }
        RequestOrigin::Alb => {
            let mut response = AlbTargetGroupResponse::default();
            response.status_code = status;
            response.status_description = Some(parts.status.to_string());
            response.headers = joined(&parts.headers);
            response.multi_value_headers = parts.headers;
            response.is_base64_encoded = body.is_some();
            response.body = body;
            serde_json::to_value(response)
        }
        _ => {
            let mut response = ApiGatewayProxyResponse::default();
            response.status_code = status;
            response.multi_value_headers = parts.headers;
            response.is_base64_encoded = body.is_some();
            response.body = body;
            serde_json::to_value(response)
        }
    }
}

/// One value per name: repeated values joined with `, `, as HTTP allows for all but cookies.
fn joined(headers: &HeaderMap) -> HeaderMap {
    let mut joined = HeaderMap::with_capacity(headers.keys_len());
    for name in headers.keys() {
        let mut values = headers.get_all(name).iter();
        let Some(first) = values.next() else { continue };
        let mut value = first.as_bytes().to_vec();
        for next in values {
            value.extend_from_slice(b", ");
            value.extend_from_slice(next.as_bytes());
        }
        if let Ok(value) = HeaderValue::from_bytes(&value) {
            joined.insert(name.clone(), value);
        }
    }
    joined
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn function_url_responses_keep_cookies_apart_and_bodies_exact() {
        let response = http::Response::builder()
            .status(201)
            .header("set-cookie", "a=1")
            .header("set-cookie", "b=2")
            .header("x-many", "1")
            .header("x-many", "2")
            .body(Bytes::from_static(&[0xff, 0x00, b'a']))
            .unwrap();
        let value = http_response(&RequestOrigin::ApiGatewayV2, response).unwrap();
        assert_eq!(value["statusCode"], 201);
        assert_eq!(value["cookies"], serde_json::json!(["a=1", "b=2"]));
        assert_eq!(value["headers"]["x-many"], "1, 2");
        assert!(value["headers"].get("set-cookie").is_none());
        assert_eq!(value["isBase64Encoded"], true);
        assert_eq!(value["body"], "/wBh");
    }

    #[test]
    fn rest_api_responses_keep_every_header_value() {
        let response = http::Response::builder()
            .status(200)
            .header("x-many", "1")
            .header("x-many", "2")
            .body(Bytes::new())
            .unwrap();
        let value = http_response(&RequestOrigin::ApiGatewayV1, response).unwrap();
        assert_eq!(
            value["multiValueHeaders"]["x-many"],
            serde_json::json!(["1", "2"])
        );
        assert_eq!(value["isBase64Encoded"], false);
    }
}
