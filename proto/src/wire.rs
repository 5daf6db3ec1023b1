//! What both ends of the cluster protocol share: HTTP heads to and from their messages, and the
//! join token every call carries.

use http::header::{HeaderName, HeaderValue};
use http::{HeaderMap, Method, StatusCode, Uri};

use crate::node::v1::Header;

/// How long [`finish`] waits for the peer to end a stream whose last message has arrived.
const FINISH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);

/// Reads `stream` to its end once its last message has arrived. Dropped earlier, it would be
/// reset, and a late frame from the peer makes h2 reset it again on its own account; after
/// 1,024 such resets in a connection's life h2 closes the connection (`ENHANCE_YOUR_CALM`),
/// failing every invocation on it.
pub async fn finish<T>(stream: &mut tonic::Streaming<T>) {
    finish_with(stream, |_| {}).await;
}

/// [`finish`], handing each message read to `each`.
pub async fn finish_with<T>(stream: &mut tonic::Streaming<T>, mut each: impl FnMut(T)) {
    let _ = tokio::time::timeout(FINISH_TIMEOUT, async {
        while let Ok(Some(message)) = stream.message().await {
            each(message);
        }
    })
    .await;
}

/// A head the other end sent that is not valid HTTP.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} in an invocation: {detail}")]
pub struct InvalidHead {
    what: &'static str,
    detail: String,
}

impl InvalidHead {
    fn new(what: &'static str, detail: impl ToString) -> Self {
        Self {
            what,
            detail: detail.to_string(),
        }
    }
}

/// `headers` as messages, in order (repeated names stay repeated).
pub fn headers_to_wire(headers: &HeaderMap) -> Vec<Header> {
    headers
        .iter()
        .map(|(name, value)| Header {
            name: name.as_str().to_owned(),
            value: bytes::Bytes::copy_from_slice(value.as_bytes()),
        })
        .collect()
}

/// The header map `headers` describe.
pub fn headers_from_wire(headers: Vec<Header>) -> Result<HeaderMap, InvalidHead> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for header in headers {
        let name = HeaderName::from_bytes(header.name.as_bytes())
            .map_err(|error| InvalidHead::new("header name", error))?;
        let value = HeaderValue::from_maybe_shared(header.value)
            .map_err(|error| InvalidHead::new("header value", error))?;
        map.append(name, value);
    }
    Ok(map)
}

/// A request line as sent: the method and the path with its query.
pub fn request_line(method: &str, uri: &str) -> Result<(Method, Uri), InvalidHead> {
    let method =
        Method::from_bytes(method.as_bytes()).map_err(|error| InvalidHead::new("method", error))?;
    let uri = uri
        .parse::<Uri>()
        .map_err(|error| InvalidHead::new("uri", error))?;
    Ok((method, uri))
}

/// A response status as sent.
pub fn status(code: u32) -> Result<StatusCode, InvalidHead> {
    u16::try_from(code)
        .ok()
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| InvalidHead::new("status", code))
}

/// The metadata key of the join token: `authorization: Bearer <token>`.
pub const AUTHORIZATION: &str = "authorization";

/// Whether `metadata` carries `token` as its bearer token (compared in constant time).
pub fn carries_token(metadata: &tonic::metadata::MetadataMap, token: &str) -> bool {
    let presented = metadata
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    constant_time_eq(presented.as_bytes(), token.as_bytes())
}

/// Whether `a` and `b` are equal, in time that depends on their length only.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The `authorization` value that carries `token`.
pub fn bearer(
    token: &str,
) -> Result<tonic::metadata::MetadataValue<tonic::metadata::Ascii>, InvalidHead> {
    format!("Bearer {token}")
        .parse()
        .map_err(|error| InvalidHead::new("token", error))
}

/// Adds the join token to every call a client makes.
#[derive(Clone)]
pub struct AddToken(tonic::metadata::MetadataValue<tonic::metadata::Ascii>);

impl AddToken {
    /// Adds `token`.
    pub fn new(token: &str) -> Result<Self, InvalidHead> {
        bearer(token).map(Self)
    }
}

impl tonic::service::Interceptor for AddToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert(AUTHORIZATION, self.0.clone());
        Ok(request)
    }
}

/// Refuses calls that do not carry the join token.
#[derive(Clone)]
pub struct RequireToken(std::sync::Arc<str>);

impl RequireToken {
    /// Requires `token`.
    pub fn new(token: &str) -> Self {
        Self(token.into())
    }
}

impl tonic::service::Interceptor for RequireToken {
    fn call(&mut self, request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if carries_token(request.metadata(), &self.0) {
            Ok(request)
        } else {
            Err(tonic::Status::unauthenticated(
                "the cluster's join token is missing or wrong",
            ))
        }
    }
}

/// Whether the client asked for an asynchronous answer (`Prefer: respond-async`, RFC 7240):
/// the coordinator's trigger and an edge node's own ingress then answer `202` once the
/// invocation is recorded.
pub fn prefers_respond_async(headers: &HeaderMap) -> bool {
    headers
        .get_all(HeaderName::from_static("prefer"))
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|preference| {
            preference
                .split(';')
                .next()
                .is_some_and(|token| token.trim().eq_ignore_ascii_case("respond-async"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_with_repeats_and_binary_values() -> Result<(), InvalidHead> {
        let mut headers = HeaderMap::new();
        headers.append("set-cookie", HeaderValue::from_static("a=1"));
        headers.append("set-cookie", HeaderValue::from_static("b=2"));
        headers.append(
            "x-raw",
            HeaderValue::from_bytes(&[0xe2, 0x82, 0xac]).map_err(|e| InvalidHead::new("t", e))?,
        );
        assert_eq!(headers_from_wire(headers_to_wire(&headers))?, headers);
        Ok(())
    }

    #[test]
    fn invalid_heads_are_refused() {
        let bad = vec![Header {
            name: "bad name".to_owned(),
            value: bytes::Bytes::from_static(b"x"),
        }];
        assert!(headers_from_wire(bad).is_err());
        assert!(request_line("GE T", "/").is_err());
        assert!(status(99).is_err());
        assert!(status(70_000).is_err());
    }

    #[test]
    fn tokens_must_match_exactly() -> Result<(), InvalidHead> {
        let mut metadata = tonic::metadata::MetadataMap::new();
        assert!(!carries_token(&metadata, "secret"));
        metadata.insert(AUTHORIZATION, bearer("secre")?);
        assert!(!carries_token(&metadata, "secret"));
        metadata.insert(AUTHORIZATION, bearer("secret")?);
        assert!(carries_token(&metadata, "secret"));
        Ok(())
    }
}
