//! One HTTP call: its URL (path segments escaped), token, body, time limit and size limit, and
//! the answer read whole. Every method of [`Client`] goes through [`Client::send`].

use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, USER_AGENT};
use http::{HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::BodyExt as _;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

pub(crate) use self::body::{Progress, RequestBody};
use crate::error::ClientError;
use crate::{Client, Result};

mod body;

/// What the client says it is.
pub(crate) const USER_AGENT_VALUE: &str = concat!("nexus-client/", env!("CARGO_PKG_VERSION"));

/// The connection pool every clone of a [`Client`] shares.
#[derive(Clone)]
pub(crate) struct Transport(hyper_util::client::legacy::Client<HttpConnector, RequestBody>);

impl Transport {
    pub(crate) fn new() -> Self {
        let mut connector = HttpConnector::new();
        // Calls are small request/answer exchanges; Nagle's delay would only add latency.
        connector.set_nodelay(true);
        Self(hyper_util::client::legacy::Client::builder(TokioExecutor::new()).build(connector))
    }
}

/// `base_url` as the client keeps it: `http://host[:port][/prefix]`, no trailing slash.
pub(crate) fn normalize_base(base_url: &str) -> Result<String> {
    let invalid = |reason: &str| ClientError::InvalidUrl {
        url: base_url.to_owned(),
        reason: reason.to_owned(),
    };
    let parsed = url::Url::parse(base_url).map_err(|error| invalid(&error.to_string()))?;
    match parsed.scheme() {
        "http" => {}
        "https" => return Err(invalid("https is not supported yet: use http://")),
        _ => return Err(invalid("use an http:// URL")),
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(invalid("it names no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(invalid("credentials go in the token, not in the URL"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(invalid("it has a query or fragment"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// `segment` percent-encoded for a URL path: everything but RFC 3986's unreserved characters
/// is escaped, so a name can never add a segment, a query or a fragment.
pub(crate) fn encode_segment(segment: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut encoded = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(char::from(byte));
        } else {
            encoded.push('%');
            encoded.push(char::from(HEX[usize::from(byte >> 4)]));
            encoded.push(char::from(HEX[usize::from(byte & 0x0f)]));
        }
    }
    encoded
}

/// `base` followed by `segments`, each escaped.
pub(crate) fn join(base: &str, segments: &[&str]) -> String {
    let mut url = base.to_owned();
    for segment in segments {
        url.push('/');
        url.push_str(&encode_segment(segment));
    }
    url
}

/// A request being built. Errors found while building it are kept and reported by
/// [`Client::send`], so building reads as one chain.
pub(crate) struct Call {
    method: Method,
    url: String,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: RequestBody,
    timeout: Duration,
    authenticated: bool,
    error: Option<ClientError>,
}

impl Call {
    /// `?name=value`, form-encoded.
    pub(crate) fn query(mut self, name: &str, value: impl ToString) -> Self {
        self.query.push((name.to_owned(), value.to_string()));
        self
    }

    /// `?name=value` when there is a value.
    pub(crate) fn query_opt(self, name: &str, value: Option<impl ToString>) -> Self {
        match value {
            Some(value) => self.query(name, value),
            None => self,
        }
    }

    /// `value` as the JSON body.
    pub(crate) fn json(mut self, value: &impl Serialize) -> Self {
        match serde_json::to_vec(value) {
            Ok(json) => self.body(HeaderValue::from_static("application/json"), json.into()),
            Err(error) => {
                self.error = Some(ClientError::InvalidRequest(format!(
                    "the body is not JSON: {error}"
                )));
                self
            }
        }
    }

    /// `bytes` as the body, of `content_type`.
    pub(crate) fn body(mut self, content_type: HeaderValue, bytes: Bytes) -> Self {
        self.headers.insert(CONTENT_TYPE, content_type);
        self.bytes(bytes)
    }

    /// `bytes` as the body, its content type set (or not) by the caller.
    pub(crate) fn bytes(mut self, bytes: Bytes) -> Self {
        self.body = RequestBody::new(bytes, None);
        self
    }

    /// Reports the body's progress to `progress` as it is sent.
    pub(crate) fn progress(mut self, progress: Progress) -> Self {
        self.body.report_to(progress);
        self
    }

    /// Adds a header; a value that is not a header value fails the call.
    pub(crate) fn header(mut self, name: HeaderName, value: &str) -> Self {
        match HeaderValue::from_str(value) {
            Ok(value) => {
                self.headers.append(name, value);
            }
            Err(_) => {
                self.error = Some(ClientError::InvalidRequest(format!(
                    "the {name} header's value is not a header value"
                )));
            }
        }
        self
    }

    /// Every header of `headers`, after those set so far.
    pub(crate) fn headers(mut self, headers: &HeaderMap) -> Self {
        for (name, value) in headers {
            self.headers.append(name, value.clone());
        }
        self
    }

    /// Gives this call its own time limit.
    pub(crate) fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Fails when sent, with `error`.
    pub(crate) fn fail(mut self, error: ClientError) -> Self {
        self.error = Some(error);
        self
    }

    /// Sends no token: the route needs none, or must not see it.
    pub(crate) fn anonymous(mut self) -> Self {
        self.authenticated = false;
        self
    }
}

/// An answer, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    /// What was called, for errors.
    pub(crate) url: String,
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    /// The answer if it is 2xx, else the coordinator's refusal.
    pub(crate) fn success(self) -> Result<Self> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(ClientError::from_answer(
                self.status,
                &self.headers,
                &self.body,
            ))
        }
    }

    /// The 2xx answer's JSON as `T`.
    pub(crate) fn json<T: DeserializeOwned>(self) -> Result<T> {
        let answer = self.success()?;
        serde_json::from_slice(&answer.body)
            .map_err(|error| ClientError::bad_response(&answer.url, error.to_string()))
    }

    /// Checks that the answer is 2xx; its body is not needed.
    pub(crate) fn done(self) -> Result<()> {
        self.success().map(drop)
    }

    /// The 2xx answer's body as text.
    pub(crate) fn text(self) -> Result<String> {
        let answer = self.success()?;
        String::from_utf8(answer.body.to_vec())
            .map_err(|_| ClientError::bad_response(&answer.url, "the body is not UTF-8"))
    }
}

impl Client {
    /// `method` on the route made of `segments` (each escaped), with the client's token and
    /// time limit.
    pub(crate) fn call(&self, method: Method, segments: &[&str]) -> Call {
        self.call_url(method, join(&self.base, segments))
    }

    /// `method` on `url` as given.
    pub(crate) fn call_url(&self, method: Method, url: String) -> Call {
        Call {
            method,
            url,
            query: Vec::new(),
            headers: HeaderMap::new(),
            body: RequestBody::new(Bytes::new(), None),
            timeout: self.timeout,
            authenticated: true,
            error: None,
        }
    }

    /// Sends `call` and reads its answer, whatever its status, within its time limit and the
    /// client's size limit.
    pub(crate) async fn send(&self, call: Call) -> Result<Answer> {
        if let Some(error) = call.error {
            return Err(error);
        }
        let mut url = call.url;
        if !call.query.is_empty() {
            let query = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&call.query)
                .finish();
            url.push('?');
            url.push_str(&query);
        }
        let uri: Uri = url.parse().map_err(|error| {
            ClientError::InvalidRequest(format!("{url:?} is not a URL: {error}"))
        })?;
        let mut request = Request::builder()
            .method(call.method)
            .uri(uri)
            .body(call.body)
            .map_err(|error| ClientError::InvalidRequest(error.to_string()))?;
        let headers = request.headers_mut();
        *headers = call.headers;
        headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
        if call.authenticated
            && let Some(token) = &self.token
        {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|_| {
                ClientError::InvalidRequest("the token is not a header value".to_owned())
            })?;
            value.set_sensitive(true);
            headers.insert(AUTHORIZATION, value);
        }
        let limit = self.max_response_bytes;
        let exchange = async {
            let response = self.transport.0.request(request).await.map_err(|error| {
                if error.is_connect() {
                    ClientError::Connect {
                        url: url.clone(),
                        source: error.into(),
                    }
                } else {
                    ClientError::Transport {
                        url: url.clone(),
                        source: error.into(),
                    }
                }
            })?;
            let (parts, body) = response.into_parts();
            let too_large = || ClientError::TooLarge {
                url: url.clone(),
                limit,
            };
            let announced = parts
                .headers
                .get(CONTENT_LENGTH)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.parse::<u64>().ok());
            if announced.is_some_and(|length| length > limit as u64) {
                return Err(too_large());
            }
            let body = http_body_util::Limited::new(body, limit)
                .collect()
                .await
                .map_err(|error| {
                    if error.is::<http_body_util::LengthLimitError>() {
                        too_large()
                    } else {
                        ClientError::Transport {
                            url: url.clone(),
                            source: error,
                        }
                    }
                })?
                .to_bytes();
            Ok((parts.status, parts.headers, body))
        };
        let (status, headers, body) = tokio::time::timeout(call.timeout, exchange)
            .await
            .map_err(|_| ClientError::Timeout {
                url: url.clone(),
                limit: call.timeout,
            })??;
        Ok(Answer {
            url,
            status,
            headers,
            body,
        })
    }
}

#[cfg(test)]
mod tests;
