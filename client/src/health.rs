//! The coordinator itself: `/healthz`, `/readyz`, `/metrics` and `/openapi.json`. None takes a
//! token.

use http::Method;

use crate::{Client, Result};

impl Client {
    /// `GET /healthz`: succeeds when the process answers.
    pub async fn health(&self) -> Result<()> {
        let call = self.call(Method::GET, &["healthz"]).anonymous();
        self.send(call).await?.done()
    }

    /// `GET /readyz`: succeeds when the coordinator's database answers; a 503 refusal when it
    /// does not.
    pub async fn ready(&self) -> Result<()> {
        let call = self.call(Method::GET, &["readyz"]).anonymous();
        self.send(call).await?.done()
    }

    /// `GET /metrics`: the coordinator's metrics in the Prometheus text format.
    pub async fn metrics(&self) -> Result<String> {
        let call = self.call(Method::GET, &["metrics"]).anonymous();
        self.send(call).await?.text()
    }

    /// `GET /openapi.json`: the OpenAPI document of every REST route (not the WebSockets).
    pub async fn openapi(&self) -> Result<serde_json::Value> {
        let call = self.call(Method::GET, &["openapi.json"]).anonymous();
        self.send(call).await?.json()
    }
}
