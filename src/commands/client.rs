//! The coordinator's REST API as the commands call it: JSON in and out over HTTP, a bearer
//! token on every call, a time limit on each, and the coordinator's error message when it
//! refuses.

use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// The largest answer read: listings are paged well below this.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Where the coordinator is, as every command that calls it takes it.
#[derive(Debug, clap::Args)]
pub struct Coordinator {
    /// The coordinator's URL.
    #[arg(
        id = "coordinator",
        long = "coordinator",
        value_name = "URL",
        env = "NEXUS_COORDINATOR",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
}

/// A client of one coordinator, calling as the holder of one token.
pub struct ApiClient {
    base: String,
    token: String,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl ApiClient {
    /// Calls the coordinator at `base` (`http://host:port`) with `token`.
    pub fn new(base: &str, token: String) -> Self {
        Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// `method path` with `body` as JSON; the answer's JSON (`null` when it has none). A
    /// status other than 2xx is an error carrying the coordinator's message.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        timeout: Duration,
    ) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        let mut request = Request::builder()
            .method(method.clone())
            .uri(&url)
            .header("authorization", format!("Bearer {}", self.token));
        let body = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Full::from(serde_json::to_vec(body)?)
            }
            None => Full::default(),
        };
        let answered = tokio::time::timeout(timeout, async {
            let response = self.http.request(request.body(body)?).await?;
            let status = response.status();
            let body = http_body_util::Limited::new(response.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|error| anyhow::anyhow!("reading the answer: {error}"))?
                .to_bytes();
            anyhow::Ok((status, body))
        })
        .await
        .with_context(|| format!("{method} {url} did not answer in {timeout:?}"))?
        .with_context(|| format!("cannot reach {url}"))?;
        let (status, body) = answered;
        let json = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or(Value::Null)
        };
        if !status.is_success() {
            let message = json["error"]["message"].as_str().unwrap_or("no details");
            bail!("the coordinator answered {status}: {message}");
        }
        Ok(json)
    }
}
