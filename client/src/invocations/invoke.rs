//! Running a function: through the HTTP trigger (`/{project}/{function}[@alias]/{path}`), as
//! anyone on the network can, or through `POST /v1/projects/{p}/invocations` as a member of the
//! project; now, or asynchronously (`Prefer: respond-async`, or `"mode":"async"`).

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};
use serde::{Deserialize, Serialize};

use super::{IDEMPOTENCY_KEY, InvocationStatus, PREFER, RESPOND_ASYNC};
use crate::error::ClientError;
use crate::transport::{Answer, Call, encode_segment};
use crate::{Client, Result};

/// The header naming the version that served a request.
const VERSION_HEADER: &str = "nexus-version";
/// The header marking an asynchronous accept as the replay of an earlier one.
const REPLAY_HEADER: &str = "nexus-idempotent-replay";

/// The request a function sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRequest {
    /// Its method.
    pub method: Method,
    /// Its path and query, from `/`, as sent (not escaped again).
    pub path: String,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body (at most 1 MiB when asynchronous).
    pub body: Bytes,
    /// For the asynchronous calls: the same key in the project within 24 hours names the
    /// first invocation instead of queueing another.
    pub idempotency_key: Option<String>,
}

impl FunctionRequest {
    /// `method path`, without headers or body.
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            idempotency_key: None,
        }
    }

    /// `GET path`.
    pub fn get(path: impl Into<String>) -> Self {
        Self::new(Method::GET, path)
    }

    /// `POST path` with `body`.
    pub fn post(path: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Self {
            body: body.into(),
            ..Self::new(Method::POST, path)
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// The path, checked: a path and query starting with `/`.
    fn checked_path(&self) -> Result<&str> {
        let path = if self.path.is_empty() {
            "/"
        } else {
            &self.path
        };
        match path.parse::<PathAndQuery>() {
            Ok(_) if path.starts_with('/') => Ok(path),
            _ => Err(ClientError::InvalidRequest(format!(
                "a function's path is a path and query starting with '/': {path:?}"
            ))),
        }
    }
}

/// A function's answer, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionResponse {
    /// Its status.
    pub status: StatusCode,
    /// Its headers.
    pub headers: HeaderMap,
    /// Its body.
    pub body: Bytes,
    /// The version that answered (`nexus-version`).
    pub version: Option<i64>,
}

impl FunctionResponse {
    /// The function's answer: any answer carrying `nexus-version`, which only the function's
    /// answers do; any other answer that is not 2xx is the coordinator's refusal.
    pub(crate) fn from_answer(answer: Answer) -> Result<Self> {
        let version = version_of(&answer.headers);
        if version.is_none() && !answer.status.is_success() {
            return Err(ClientError::from_answer(
                answer.status,
                &answer.headers,
                &answer.body,
            ));
        }
        Ok(Self {
            status: answer.status,
            headers: answer.headers,
            body: answer.body,
            version,
        })
    }

    /// The body as text, if it is UTF-8.
    pub fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.body).ok()
    }
}

fn version_of(headers: &HeaderMap) -> Option<i64> {
    headers
        .get(VERSION_HEADER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// An asynchronous invocation, recorded: it runs later, with retries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accepted {
    /// The invocation id, for [`Client::get_invocation`].
    pub id: String,
    /// `queued`, or where the first invocation with the same idempotency key stands.
    pub status: InvocationStatus,
    /// Where to follow it (`/v1/invocations/{id}`).
    pub url: String,
    /// The version it runs.
    #[serde(skip)]
    pub version: Option<i64>,
    /// Whether an earlier invocation with the same idempotency key was found instead.
    #[serde(skip)]
    pub replay: bool,
}

impl Accepted {
    /// The `202 Accepted` of an asynchronous call.
    pub(crate) fn from_answer(answer: Answer) -> Result<Self> {
        let answer = answer.success()?;
        if answer.status != StatusCode::ACCEPTED {
            return Err(ClientError::bad_response(
                &answer.url,
                format!(
                    "expected 202 Accepted for an asynchronous call, got {}",
                    answer.status
                ),
            ));
        }
        let version = version_of(&answer.headers);
        let replay = answer
            .headers
            .get(REPLAY_HEADER)
            .is_some_and(|value| value.as_bytes() == b"true");
        Ok(Self {
            version,
            replay,
            ..answer.json::<Self>()?
        })
    }
}

/// The JSON of `POST /v1/projects/{p}/invocations`.
#[derive(Serialize)]
struct InvokeBody<'a> {
    function: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    alias: Option<&'a str>,
    mode: &'static str,
    method: &'a str,
    path: &'a str,
    headers: BTreeMap<&'a str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_base64: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    idempotency_key: Option<&'a str>,
}

/// `request`'s headers as the JSON of an invocation takes them: one text value per name
/// (repeated headers are joined with `, `, as RFC 9110 allows for list-valued fields).
fn text_headers(headers: &HeaderMap) -> Result<BTreeMap<&str, String>> {
    let mut joined: BTreeMap<&str, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = value.to_str().map_err(|_| {
            ClientError::InvalidRequest(format!(
                "the {name} header is not text; the invocation API takes text headers only"
            ))
        })?;
        joined
            .entry(name.as_str())
            .and_modify(|existing| {
                existing.push_str(", ");
                existing.push_str(value);
            })
            .or_insert_with(|| value.to_owned());
    }
    Ok(joined)
}

impl Client {
    /// Runs `function` (its `alias`, `live` when `None`) now through the HTTP trigger, and
    /// answers with the function's response, whatever its status. Sends no token: the trigger
    /// needs none, and the function would see it. An error is the coordinator's refusal (no
    /// such function, overloaded, the function trapped…), never the function's answer.
    pub async fn invoke(
        &self,
        project: &str,
        function: &str,
        alias: Option<&str>,
        request: FunctionRequest,
    ) -> Result<FunctionResponse> {
        let call = self.trigger_call(project, function, alias, request);
        FunctionResponse::from_answer(self.send(call).await?)
    }

    /// [`Client::invoke`] with `Prefer: respond-async`: the request is recorded and run later,
    /// with the function's retries; the answer says where to follow it.
    pub async fn invoke_async(
        &self,
        project: &str,
        function: &str,
        alias: Option<&str>,
        request: FunctionRequest,
    ) -> Result<Accepted> {
        let call = self
            .trigger_call(project, function, alias, request)
            .header(HeaderName::from_static(PREFER), RESPOND_ASYNC);
        Accepted::from_answer(self.send(call).await?)
    }

    /// `POST /v1/projects/{project}/invocations` (`"mode":"sync"`): runs the function now as
    /// the client's token (developer and up), and answers with its response, whatever its
    /// status. The API carries the request in JSON: one text value per header.
    pub async fn invoke_via_api(
        &self,
        project: &str,
        function: &str,
        alias: Option<&str>,
        request: &FunctionRequest,
    ) -> Result<FunctionResponse> {
        let call = self.api_invoke_call(project, function, alias, request, "sync");
        FunctionResponse::from_answer(self.send(call).await?)
    }

    /// `POST /v1/projects/{project}/invocations` (`"mode":"async"`): records the invocation
    /// (developer and up) to run later, with retries.
    pub async fn invoke_via_api_async(
        &self,
        project: &str,
        function: &str,
        alias: Option<&str>,
        request: &FunctionRequest,
    ) -> Result<Accepted> {
        let call = self.api_invoke_call(project, function, alias, request, "async");
        Accepted::from_answer(self.send(call).await?)
    }

    /// The trigger's URL for `request`: names escaped, the function's path as given.
    pub(crate) fn trigger_url(
        &self,
        project: &str,
        function: &str,
        alias: Option<&str>,
        path: &str,
    ) -> String {
        let mut url = format!(
            "{}/{}/{}",
            self.base,
            encode_segment(project),
            encode_segment(function)
        );
        if let Some(alias) = alias {
            url.push('@');
            url.push_str(&encode_segment(alias));
        }
        url.push_str(path);
        url
    }

    fn trigger_call(
        &self,
        project: &str,
        function: &str,
        alias: Option<&str>,
        request: FunctionRequest,
    ) -> Call {
        let path = match request.checked_path() {
            Ok(path) => path.to_owned(),
            Err(error) => return self.failed_call(error),
        };
        let url = self.trigger_url(project, function, alias, &path);
        let call = self
            .call_url(request.method, url)
            .anonymous()
            .headers(&request.headers)
            .bytes(request.body);
        match &request.idempotency_key {
            Some(key) => call.header(HeaderName::from_static(IDEMPOTENCY_KEY), key),
            None => call,
        }
    }

    fn api_invoke_call(
        &self,
        project: &str,
        function: &str,
        alias: Option<&str>,
        request: &FunctionRequest,
        mode: &'static str,
    ) -> Call {
        let built = request.checked_path().and_then(|path| {
            let (body, body_base64) = match std::str::from_utf8(&request.body) {
                Ok(text) => (Some(text), None),
                Err(_) => (
                    None,
                    Some(base64::engine::general_purpose::STANDARD.encode(&request.body)),
                ),
            };
            Ok(InvokeBody {
                function,
                alias,
                mode,
                method: request.method.as_str(),
                path,
                headers: text_headers(&request.headers)?,
                body: body.filter(|text| !text.is_empty()),
                body_base64,
                idempotency_key: request.idempotency_key.as_deref(),
            })
        });
        match built {
            Ok(body) => self
                .call(Method::POST, &["v1", "projects", project, "invocations"])
                .json(&body),
            Err(error) => self.failed_call(error),
        }
    }

    /// A call that fails with `error` when sent.
    fn failed_call(&self, error: ClientError) -> Call {
        self.call_url(Method::GET, self.base.clone()).fail(error)
    }
}

#[cfg(test)]
mod tests;
