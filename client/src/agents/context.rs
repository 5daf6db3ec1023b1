//! An agent's key-value stores over HTTP: `/v1/projects/{p}/agents/{a}/context[/{key}]`.
//! Values are bytes; an etag names a value, so writes can be compare-and-swap.

use std::time::Duration;

use bytes::Bytes;
use http::header::{ETAG, IF_MATCH, IF_NONE_MATCH};
use http::{HeaderMap, HeaderValue, Method, StatusCode};
use serde::{Deserialize, Serialize};

use crate::error::ClientError;
use crate::transport::Answer;
use crate::{Client, Result};

/// The header giving how long a key has left to live, in milliseconds.
const TTL_HEADER: &str = "nexus-ttl-ms";

/// One value of an agent's store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextValue {
    /// The bytes.
    pub value: Bytes,
    /// Names this value: pass it in [`PutCondition::IfMatch`] to write only over it.
    pub etag: String,
    /// How long the key has left to live; `None` for a persistent key.
    pub expires_in: Option<Duration>,
}

/// When a write happens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum PutCondition {
    /// Always.
    #[default]
    Always,
    /// Only over the value with this etag (`If-Match`).
    IfMatch(String),
    /// Only if the key has no value (`If-None-Match: *`).
    IfAbsent,
}

/// How [`Client::put_context`] writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    /// The store's label (`default` when `None`).
    pub store: Option<String>,
    /// Makes an unconditional write expire after this long (whole milliseconds).
    pub ttl: Option<Duration>,
    /// When the write happens; a condition that does not hold fails the write with 412
    /// (`precondition_failed`).
    pub condition: PutCondition,
}

#[derive(Serialize, Deserialize)]
struct Keys {
    keys: Vec<String>,
}

/// The etag of a write or read, its quotes removed.
fn etag(headers: &HeaderMap) -> Option<String> {
    let quoted = headers.get(ETAG)?.to_str().ok()?;
    Some(quoted.trim().trim_matches('"').to_owned())
}

/// Whether a 404 is the key's (rather than the project's or the agent's).
fn is_missing_key(answer: &Answer) -> bool {
    answer.status == StatusCode::NOT_FOUND
        && matches!(
            ClientError::from_answer(answer.status, &answer.headers, &answer.body),
            ClientError::Api { ref message, .. } if message == "key not found"
        )
}

impl Client {
    /// `GET …/agents/{agent}/context`: the keys of one of the agent's stores, sorted.
    pub async fn list_context_keys(
        &self,
        project: &str,
        agent_id: &str,
        store: Option<&str>,
    ) -> Result<Vec<String>> {
        let segments = ["v1", "projects", project, "agents", agent_id, "context"];
        let call = self.call(Method::GET, &segments).query_opt("store", store);
        Ok(self.send(call).await?.json::<Keys>()?.keys)
    }

    /// `GET …/agents/{agent}/context/{key}`: one value, or `None` when the key has none.
    pub async fn get_context(
        &self,
        project: &str,
        agent_id: &str,
        key: &str,
        store: Option<&str>,
    ) -> Result<Option<ContextValue>> {
        let segments = [
            "v1", "projects", project, "agents", agent_id, "context", key,
        ];
        let call = self.call(Method::GET, &segments).query_opt("store", store);
        let answer = self.send(call).await?;
        if is_missing_key(&answer) {
            return Ok(None);
        }
        let answer = answer.success()?;
        let etag = etag(&answer.headers)
            .ok_or_else(|| ClientError::bad_response(&answer.url, "the value has no ETag"))?;
        let expires_in = answer
            .headers
            .get(TTL_HEADER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok())
            .map(Duration::from_millis);
        Ok(Some(ContextValue {
            value: answer.body,
            etag,
            expires_in,
        }))
    }

    /// `PUT …/agents/{agent}/context/{key}`: writes `value` (up to 1 MiB) (developer and up);
    /// the new value's etag.
    pub async fn put_context(
        &self,
        project: &str,
        agent_id: &str,
        key: &str,
        value: impl Into<Bytes>,
        options: &PutOptions,
    ) -> Result<String> {
        let segments = [
            "v1", "projects", project, "agents", agent_id, "context", key,
        ];
        let ttl_ms = options
            .ttl
            .map(|ttl| u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX));
        let mut call = self
            .call(Method::PUT, &segments)
            .query_opt("store", options.store.as_deref())
            .query_opt("ttl_ms", ttl_ms)
            .body(
                HeaderValue::from_static("application/octet-stream"),
                value.into(),
            );
        call = match &options.condition {
            PutCondition::Always => call,
            PutCondition::IfMatch(etag) => call.header(IF_MATCH, &format!("\"{etag}\"")),
            PutCondition::IfAbsent => call.header(IF_NONE_MATCH, "*"),
        };
        let answer = self.send(call).await?.success()?;
        etag(&answer.headers)
            .ok_or_else(|| ClientError::bad_response(&answer.url, "the write has no ETag"))
    }

    /// `DELETE …/agents/{agent}/context/{key}` (developer and up): whether the key had a
    /// value.
    pub async fn delete_context(
        &self,
        project: &str,
        agent_id: &str,
        key: &str,
        store: Option<&str>,
    ) -> Result<bool> {
        let segments = [
            "v1", "projects", project, "agents", agent_id, "context", key,
        ];
        let call = self
            .call(Method::DELETE, &segments)
            .query_opt("store", store);
        let answer = self.send(call).await?;
        if is_missing_key(&answer) {
            return Ok(false);
        }
        answer.done().map(|()| true)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_server::{self, answer};

    #[tokio::test]
    async fn a_missing_key_is_none_and_a_value_comes_with_its_etag_and_ttl() {
        let (base, mut seen) = test_server::serve(|seen| {
            if seen.uri.contains("/context/missing") {
                test_server::json(
                    404,
                    json!({"error": {"code": "not_found", "message": "key not found", "request_id": "r"}}),
                )
            } else if seen.uri.contains("/agents/gone/") {
                test_server::json(
                    404,
                    json!({"error": {"code": "not_found", "message": "agent not found", "request_id": "r"}}),
                )
            } else {
                answer(200, &[("etag", "\"abc\""), ("nexus-ttl-ms", "1500")], "value")
            }
        })
        .await;
        let client = Client::new(&base).unwrap();
        assert_eq!(
            client
                .get_context("shop", "a1", "missing", None)
                .await
                .unwrap(),
            None
        );
        let error = client
            .get_context("shop", "gone", "k", None)
            .await
            .unwrap_err();
        assert!(error.is_not_found());
        let found = client
            .get_context("shop", "a1", "cart/items", Some("carts"))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            found,
            ContextValue {
                value: Bytes::from_static(b"value"),
                etag: "abc".to_owned(),
                expires_in: Some(Duration::from_millis(1500)),
            }
        );
        let _ = seen.recv().await;
        let _ = seen.recv().await;
        let request = seen.recv().await.unwrap();
        assert_eq!(
            request.uri,
            "/v1/projects/shop/agents/a1/context/cart%2Fitems?store=carts"
        );
    }

    #[tokio::test]
    async fn a_conditional_write_sends_its_condition_and_returns_the_new_etag() {
        let (base, mut seen) =
            test_server::serve(|_| answer(204, &[("etag", "\"def\"")], "")).await;
        let client = Client::new(&base).unwrap();
        let options = PutOptions {
            store: None,
            ttl: Some(Duration::from_secs(2)),
            condition: PutCondition::IfMatch("abc".to_owned()),
        };
        let etag = client
            .put_context("shop", "a1", "k", "v", &options)
            .await
            .unwrap();
        assert_eq!(etag, "def");
        let request = seen.recv().await.unwrap();
        assert_eq!(request.method, Method::PUT);
        assert_eq!(
            request.uri,
            "/v1/projects/shop/agents/a1/context/k?ttl_ms=2000"
        );
        assert_eq!(request.headers["if-match"], "\"abc\"");
        assert_eq!(request.body, Bytes::from_static(b"v"));
    }
}
