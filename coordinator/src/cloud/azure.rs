//! Azure Functions as a cloud target: the function app's HTTP trigger (`nexus-edge azure`,
//! forwarding every path under `/api`), called with its function key and the handler's invoke
//! token, both read from the secrets store at each call.
//!
//! The request goes as the client sent it, with the mount prefix taken off; the coordinator's
//! own `nexus-*` headers say which agent, deployment and tenant it is for, and whatever
//! `nexus-*` headers the client sent are dropped first, so that only the coordinator names an
//! agent.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Request, Response, header};
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::OnceCell;

use super::placement::AzurePlacement;
use super::{CloudError, CloudRequest};
use crate::secrets::{self, Secret};

/// How long a call may take; a coordinator waits no longer than its callers do.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
/// The route prefix of the handler's `host.json`.
const ROUTE_PREFIX: &str = "/api";
/// The header the Functions host takes a function key in.
const FUNCTION_KEY: HeaderName = HeaderName::from_static("x-functions-key");
/// Headers that belong to one connection, not to the request.
const HOP_BY_HOP: &[HeaderName] = &[
    header::CONNECTION,
    header::HOST,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The coordinator's HTTPS client for function apps, made on first use.
#[derive(Default)]
pub struct AzureClient {
    client: OnceCell<Client<HttpsConnector<HttpConnector>, Full<Bytes>>>,
}

impl AzureClient {
    /// Sends the client's request to `target`.
    pub(crate) async fn invoke(
        &self,
        target: &AzurePlacement,
        call: &CloudRequest,
    ) -> Result<Response<Body>, CloudError> {
        let key = secrets::secret(&target.key_secret)
            .map_err(|error| CloudError::NotReached(error.to_string()))?;
        let token = secrets::secret(&target.invoke_token_secret)
            .map_err(|error| CloudError::NotReached(error.to_string()))?;
        let request = azure_request(target, call, &key, &token)?;
        let client = self
            .client
            .get_or_try_init(|| async { https_client() })
            .await?;
        let response = tokio::time::timeout(INVOKE_TIMEOUT, client.request(request))
            .await
            .map_err(|_| {
                CloudError::Function(format!("no answer within {}s", INVOKE_TIMEOUT.as_secs()))
            })?
            .map_err(|error| {
                if error.is_connect() {
                    CloudError::NotReached(error.to_string())
                } else {
                    CloudError::Function(error.to_string())
                }
            })?;
        let (mut parts, body) = response.into_parts();
        for name in HOP_BY_HOP {
            parts.headers.remove(name);
        }
        Ok(Response::from_parts(parts, Body::new(body)))
    }
}

fn https_client() -> Result<Client<HttpsConnector<HttpConnector>, Full<Bytes>>, CloudError> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(rustls::crypto::ring::default_provider())
        .map_err(|error| CloudError::NotReached(format!("no TLS roots: {error}")))?
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// The request to the function app for the client's request.
fn azure_request(
    target: &AzurePlacement,
    call: &CloudRequest,
    key: &Secret,
    token: &Secret,
) -> Result<Request<Full<Bytes>>, CloudError> {
    let bad = |what: &str| CloudError::NotReached(what.to_owned());
    let path = call.uri.path();
    let rest = path
        .strip_prefix(call.prefix.as_str())
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .ok_or_else(|| bad("the request is not under its mount"))?;
    let base = target.url.trim_end_matches('/');
    let url = match call.uri.query() {
        Some(query) => format!("{base}{ROUTE_PREFIX}{rest}?{query}"),
        None => format!("{base}{ROUTE_PREFIX}{rest}"),
    };
    let mut headers = HeaderMap::with_capacity(call.headers.len() + 7);
    for (name, value) in &call.headers {
        let forwarded = !HOP_BY_HOP.contains(name)
            && name != FUNCTION_KEY
            && !name.as_str().starts_with("nexus-");
        if forwarded {
            headers.append(name.clone(), value.clone());
        }
    }
    let value = |text: &str| {
        HeaderValue::from_str(text).map_err(|_| bad("a value that cannot be a header"))
    };
    let secret = |text: &str| {
        let mut value = value(text)?;
        value.set_sensitive(true);
        Ok::<_, CloudError>(value)
    };
    headers.insert(FUNCTION_KEY, secret(key.expose())?);
    headers.insert(
        HeaderName::from_static("nexus-invoke-token"),
        secret(token.expose())?,
    );
    headers.insert(
        HeaderName::from_static("nexus-deployment"),
        value(&call.target.app_digest.to_string())?,
    );
    headers.insert(
        HeaderName::from_static("nexus-namespace"),
        value(&call.target.project_id.to_string())?,
    );
    if !call.prefix.is_empty() {
        headers.insert(
            HeaderName::from_static("nexus-prefix"),
            value(&call.prefix)?,
        );
    }
    if let Some(agent) = &call.agent {
        headers.insert(
            HeaderName::from_static("nexus-agent"),
            value(&agent.to_string())?,
        );
    }
    headers.append(
        HeaderName::from_static("x-forwarded-for"),
        value(&call.client.ip().to_string())?,
    );
    let mut request = Request::new(Full::new(call.body.clone()));
    *request.method_mut() = call.method.clone();
    *request.uri_mut() = url.parse().map_err(|_| bad("the function app URL"))?;
    *request.headers_mut() = headers;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_carries_the_coordinators_headers_and_none_of_the_clients() {
        let placement = AzurePlacement {
            url: "https://shop.azurewebsites.net/".to_owned(),
            key_secret: "k".to_owned(),
            invoke_token_secret: "t".to_owned(),
        };
        let client_request = Request::post("/shop/hello/x/y?z=1")
            .header("host", "coordinator.example")
            .header("nexus-agent", "forged")
            .header("nexus-invoke-token", "forged")
            .header("x-functions-key", "forged")
            .header("accept", "text/plain")
            .body(())
            .unwrap();
        let (parts, ()) = client_request.into_parts();
        let agent = nexus_store::AgentId::new();
        let target = crate::dispatch::tests::target();
        let call = CloudRequest {
            target: std::sync::Arc::clone(&target),
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body: Bytes::from_static(b"hi"),
            prefix: "/shop/hello".to_owned(),
            client: "203.0.113.9:4000".parse().unwrap(),
            agent: Some(agent),
        };
        let key = Secret::for_tests("the-key");
        let token = Secret::for_tests("the-token");
        let request = azure_request(&placement, &call, &key, &token).unwrap();
        assert_eq!(request.uri(), "https://shop.azurewebsites.net/api/x/y?z=1");
        let headers = request.headers();
        assert_eq!(headers["x-functions-key"], "the-key");
        assert!(headers["x-functions-key"].is_sensitive());
        assert_eq!(headers["nexus-invoke-token"], "the-token");
        assert_eq!(headers["nexus-agent"], agent.to_string().as_str());
        assert_eq!(headers.get_all("nexus-agent").iter().count(), 1);
        assert_eq!(
            headers["nexus-deployment"],
            target.app_digest.to_string().as_str()
        );
        assert_eq!(
            headers["nexus-namespace"],
            target.project_id.to_string().as_str()
        );
        assert_eq!(headers["nexus-prefix"], "/shop/hello");
        assert_eq!(headers["x-forwarded-for"], "203.0.113.9");
        assert_eq!(headers["accept"], "text/plain");
        assert!(headers.get("host").is_none());

        let outside = CloudRequest {
            uri: "/other/x".parse().unwrap(),
            ..call
        };
        assert!(azure_request(&placement, &outside, &key, &token).is_err());
    }
}
