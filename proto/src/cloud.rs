//! What the coordinator and a cloud host (`nexus-edge lambda`, `nexus-edge azure`) exchange.
//!
//! A cloud host runs one **bundle**: a directory (the Lambda task root, the Azure app root)
//! holding [`BUNDLE_MANIFEST`] (a [`BundleManifest`]: the deployment id, the tenant and the
//! resolved app) and each component's bytes at `blobs/sha256/<hex>`, the coordinator's own
//! blob layout. The coordinator invokes a Lambda host directly with a [`CloudInvoke`] as the
//! payload (`{"nexus": …}`, so that it can never be taken for a platform event), and gets a
//! [`CloudResponse`] back.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};

use crate::Digest;
use crate::app::ResolvedApp;

/// The bundle's manifest file, at its root.
pub const BUNDLE_MANIFEST: &str = "nexus-bundle.json";
/// The version of the payloads below; a host refuses any other.
pub const PROTOCOL: u32 = 1;

/// The path of the component with `digest` inside a bundle.
pub fn blob_path(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

/// What a bundle holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleManifest {
    /// The deployment (a function version id): an invocation naming another is refused.
    pub deployment: String,
    /// The tenant whose key-value stores the app opens (a project id, as on edge nodes), so
    /// that an agent's context is the same wherever it runs.
    pub namespace: String,
    /// The resolved app.
    pub app: ResolvedApp,
}

/// The payload of a direct invocation: `{"nexus": CloudInvoke}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudEnvelope {
    /// The invocation.
    pub nexus: CloudInvoke,
}

/// One HTTP request for the bundle's app, sent by the coordinator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudInvoke {
    /// [`PROTOCOL`].
    pub protocol: u32,
    /// The deployment the coordinator means (the digest of the app record); must be the
    /// bundle's.
    pub deployment: String,
    /// The tenant the coordinator means (the project id); must be the bundle's, or the agent's
    /// context would be another tenant's.
    pub namespace: String,
    /// The request method.
    pub method: String,
    /// The request target as the client sent it (path and query).
    pub uri: String,
    /// The path prefix the app is mounted under (`""` for the root).
    pub prefix: String,
    /// The request headers in order, values as text.
    pub headers: Vec<(String, String)>,
    /// The request body, base64.
    pub body: String,
    /// The client's address, as `spin-client-addr` shows it.
    pub client: String,
    /// The agent whose key-value stores the invocation opens, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
}

/// The app's answer to a [`CloudInvoke`], or the host's error document in the same shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudResponse {
    /// The status code.
    pub status: u16,
    /// The response headers in order, values as text.
    pub headers: Vec<(String, String)>,
    /// The response body, base64.
    pub body: String,
}

/// A payload field that does not hold what it must.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CloudWireError {
    /// A header value that is not visible ASCII text cannot travel in these payloads.
    #[error("the value of header `{0}` is not text")]
    HeaderNotText(String),
    /// A header name or value that HTTP does not allow.
    #[error("header `{0}` is not a valid HTTP header")]
    InvalidHeader(String),
    /// A body that is not base64.
    #[error("the body is not base64")]
    BodyNotBase64,
}

/// Headers as payload pairs; refuses a value that is not text rather than change it.
pub fn headers_to_pairs(
    headers: &http::HeaderMap,
) -> Result<Vec<(String, String)>, CloudWireError> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = value
                .to_str()
                .map_err(|_| CloudWireError::HeaderNotText(name.to_string()))?;
            Ok((name.to_string(), value.to_owned()))
        })
        .collect()
}

/// The headers of payload pairs, in order.
pub fn pairs_to_headers(pairs: &[(String, String)]) -> Result<http::HeaderMap, CloudWireError> {
    let mut headers = http::HeaderMap::with_capacity(pairs.len());
    for (name, value) in pairs {
        let invalid = || CloudWireError::InvalidHeader(name.clone());
        headers.append(
            http::HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?,
            http::HeaderValue::from_str(value).map_err(|_| invalid())?,
        );
    }
    Ok(headers)
}

/// `bytes` as a payload body.
pub fn encode_body(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

/// The bytes of a payload body.
pub fn decode_body(body: &str) -> Result<Vec<u8>, CloudWireError> {
    STANDARD
        .decode(body)
        .map_err(|_| CloudWireError::BodyNotBase64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_keep_their_order_and_repeats_and_refuse_binary_values() {
        let mut headers = http::HeaderMap::new();
        headers.append("b", http::HeaderValue::from_static("1"));
        headers.append("a", http::HeaderValue::from_static("2"));
        headers.append("b", http::HeaderValue::from_static("3"));
        let pairs = headers_to_pairs(&headers).unwrap();
        assert_eq!(pairs_to_headers(&pairs).unwrap(), headers);

        let mut binary = http::HeaderMap::new();
        binary.insert("x", http::HeaderValue::from_bytes(b"\xff").unwrap());
        assert_eq!(
            headers_to_pairs(&binary),
            Err(CloudWireError::HeaderNotText("x".to_owned()))
        );
        assert_eq!(
            pairs_to_headers(&[("bad name".to_owned(), "v".to_owned())]),
            Err(CloudWireError::InvalidHeader("bad name".to_owned()))
        );
    }

    #[test]
    fn bodies_round_trip_and_garbage_is_refused() {
        let bytes = [0_u8, 159, 146, 150, b'a'];
        assert_eq!(decode_body(&encode_body(&bytes)).unwrap(), bytes);
        assert_eq!(
            decode_body("not base64!"),
            Err(CloudWireError::BodyNotBase64)
        );
    }

    #[test]
    fn a_direct_invocation_is_wrapped_so_no_platform_event_looks_like_one() {
        let invoke = CloudInvoke {
            protocol: PROTOCOL,
            deployment: "v1".to_owned(),
            namespace: "tenant".to_owned(),
            method: "GET".to_owned(),
            uri: "/hello?x=1".to_owned(),
            prefix: String::new(),
            headers: vec![("accept".to_owned(), "*/*".to_owned())],
            body: String::new(),
            client: "10.0.0.1:1234".to_owned(),
            agent: None,
        };
        let json = serde_json::to_value(CloudEnvelope {
            nexus: invoke.clone(),
        })
        .unwrap();
        assert!(json["nexus"]["agent"].is_null());
        let back: CloudEnvelope = serde_json::from_value(json).unwrap();
        assert_eq!(back.nexus, invoke);
    }
}
