//! Cloud targets reached over HTTPS: an Azure function app's HTTP trigger (`nexus-edge azure`,
//! every path under `/api`), called with its function key, and a Cloud Run service
//! (`nexus-edge cloud-run`, the app at the root), called with an ID token for its URL
//! ([`super::gcp`]); both with the handler's invoke token. Keys come from the secrets store
//! at each call.
//!
//! The request goes as the client sent it, with the mount prefix taken off; the coordinator's
//! own `nexus-*` headers say which agent, deployment and tenant it is for, and whatever
//! `nexus-*` headers the client sent are dropped first, so that only the coordinator names an
//! agent.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Response, header};
use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use tokio::sync::OnceCell;

use http_body_util::BodyExt as _;

use super::gcp::IdTokens;
use super::placement::{AzurePlacement, GcpPlacement};
use super::{CloudError, CloudRequest};
use crate::secrets::{Secret, Secrets};

/// How long a call may take; a coordinator waits no longer than its callers do.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
/// The route prefix of the Azure handler's `host.json`.
const AZURE_ROUTE_PREFIX: &str = "/api";
/// The header the Functions host takes a function key in.
const FUNCTION_KEY: HeaderName = HeaderName::from_static("x-functions-key");
/// The header Cloud Run takes an ID token in, leaving `authorization` to the app.
const SERVERLESS_AUTHORIZATION: HeaderName = HeaderName::from_static("x-serverless-authorization");
/// The largest answer of a token endpoint.
const MAX_TOKEN_RESPONSE_BYTES: usize = 64 * 1024;
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

/// The coordinator's HTTPS client for cloud targets, made on first use, and the ID tokens it
/// holds.
#[derive(Default)]
pub struct HttpTargets {
    client: OnceCell<HttpsClient>,
    id_tokens: IdTokens,
    secrets: Secrets,
}

type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

impl HttpTargets {
    /// Targets whose keys come from `secrets`.
    pub fn new(secrets: Secrets) -> Self {
        Self {
            secrets,
            ..Self::default()
        }
    }

    /// Secret `name`, for a call.
    pub(crate) async fn secret(&self, name: &str) -> Result<Secret, CloudError> {
        self.secrets
            .get(name)
            .await
            .map_err(|error| CloudError::NotReached(error.to_string()))
    }

    async fn client(&self) -> Result<&HttpsClient, CloudError> {
        self.client
            .get_or_try_init(|| async { https_client() })
            .await
    }

    /// Sends the client's request to the function app `target`.
    pub(crate) async fn azure(
        &self,
        target: &AzurePlacement,
        call: &CloudRequest,
    ) -> Result<Response<Body>, CloudError> {
        let key = self.secret(&target.key_secret).await?;
        let token = self.secret(&target.invoke_token_secret).await?;
        let mut credential = HeaderMap::new();
        credential.insert(FUNCTION_KEY, sensitive(key.expose())?);
        let request = forwarded_request(&target.url, AZURE_ROUTE_PREFIX, call, &token, credential)?;
        self.send(request).await
    }

    /// Sends the client's request to the Cloud Run service `target`.
    pub(crate) async fn gcp(
        &self,
        target: &GcpPlacement,
        call: &CloudRequest,
    ) -> Result<Response<Body>, CloudError> {
        let token = self.secret(&target.invoke_token_secret).await?;
        let audience = target.audience.as_deref().unwrap_or(&target.url);
        let id_token = self
            .id_tokens
            .get(self, &target.service_account_secret, audience)
            .await?;
        let mut credential = HeaderMap::new();
        credential.insert(
            SERVERLESS_AUTHORIZATION,
            sensitive(&format!("Bearer {}", id_token.expose()))?,
        );
        let request = forwarded_request(&target.url, "", call, &token, credential)?;
        self.send(request).await
    }

    /// Posts `form` to `url` and reads the JSON answer (a token endpoint's).
    pub(crate) async fn post_form(
        &self,
        url: &str,
        form: String,
    ) -> Result<serde_json::Value, CloudError> {
        let mut request = Request::new(Full::new(Bytes::from(form)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = url
            .parse()
            .map_err(|_| CloudError::NotReached(format!("`{url}` is not a URL")))?;
        request.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        let response = self.send(request).await?;
        let status = response.status();
        let body = http_body_util::Limited::new(response.into_body(), MAX_TOKEN_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|error| CloudError::NotReached(format!("reading {url}: {error}")))?
            .to_bytes();
        if !status.is_success() {
            return Err(CloudError::NotReached(format!(
                "{url} answered {status}: {}",
                String::from_utf8_lossy(&body)
            )));
        }
        serde_json::from_slice(&body)
            .map_err(|error| CloudError::NotReached(format!("{url} answered: {error}")))
    }

    async fn send(&self, request: Request<Full<Bytes>>) -> Result<Response<Body>, CloudError> {
        let client = self.client().await?;
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

fn sensitive(text: &str) -> Result<HeaderValue, CloudError> {
    let mut value = HeaderValue::from_str(text)
        .map_err(|_| CloudError::NotReached("a credential that cannot be a header".to_owned()))?;
    value.set_sensitive(true);
    Ok(value)
}

fn https_client() -> Result<HttpsClient, CloudError> {
    nexus_secrets::https_client().map_err(|error| CloudError::NotReached(error.to_string()))
}

/// The request to the app at `base_url`, mounted at `route_prefix` there, for the client's
/// request, with the platform's `credential` headers and the handler's invoke `token`.
fn forwarded_request(
    base_url: &str,
    route_prefix: &str,
    call: &CloudRequest,
    token: &Secret,
    credential: HeaderMap,
) -> Result<Request<Full<Bytes>>, CloudError> {
    let bad = |what: &str| CloudError::NotReached(what.to_owned());
    let path = call.uri.path();
    let rest = path
        .strip_prefix(call.prefix.as_str())
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
        .ok_or_else(|| bad("the request is not under its mount"))?;
    let rest = if rest.is_empty() && route_prefix.is_empty() {
        "/"
    } else {
        rest
    };
    let base = base_url.trim_end_matches('/');
    let url = match call.uri.query() {
        Some(query) => format!("{base}{route_prefix}{rest}?{query}"),
        None => format!("{base}{route_prefix}{rest}"),
    };
    let mut headers = HeaderMap::with_capacity(call.headers.len() + 7);
    for (name, value) in &call.headers {
        let forwarded = !HOP_BY_HOP.contains(name)
            && name != FUNCTION_KEY
            && name != SERVERLESS_AUTHORIZATION
            && !name.as_str().starts_with("nexus-");
        if forwarded {
            headers.append(name.clone(), value.clone());
        }
    }
    let value = |text: &str| {
        HeaderValue::from_str(text).map_err(|_| bad("a value that cannot be a header"))
    };
    headers.extend(credential);
    headers.insert(
        HeaderName::from_static("nexus-invoke-token"),
        sensitive(token.expose())?,
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
        let token = Secret::new("the-token".to_owned());
        let azure = |call: &CloudRequest| {
            let mut key = HeaderMap::new();
            key.insert(FUNCTION_KEY, sensitive("the-key").unwrap());
            forwarded_request(&placement.url, AZURE_ROUTE_PREFIX, call, &token, key)
        };
        let request = azure(&call).unwrap();
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

        // At the root (Cloud Run), the rest of the path is the whole path.
        let at_root =
            forwarded_request("http://127.0.0.1:9/", "", &call, &token, HeaderMap::new()).unwrap();
        assert_eq!(at_root.uri(), "http://127.0.0.1:9/x/y?z=1");
        let outside = CloudRequest {
            uri: "/other/x".parse().unwrap(),
            ..call
        };
        assert!(azure(&outside).is_err());
    }
}
