//! `nexus nodes`: the cluster's edge nodes, listed or drained through the coordinator's API
//! with the cluster's join token.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use clap::{Args, Subcommand};
use http::{Request, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// How long a listing may take; a drain waits for the node's invocations instead.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(660);

#[derive(Debug, Args)]
pub struct NodesCommand {
    /// The coordinator's URL.
    #[arg(
        long,
        env = "NEXUS_COORDINATOR",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    coordinator: String,

    /// The cluster's join token; read from `--token-file` when not given.
    #[arg(long, env = "NEXUS_NODE_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,

    /// The file holding the join token.
    #[arg(
        long,
        env = "NEXUS_NODE_TOKEN_FILE",
        default_value = ".nexus/node-token",
        global = true
    )]
    token_file: PathBuf,

    /// Print the coordinator's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    action: Option<NodesAction>,
}

#[derive(Debug, Subcommand)]
enum NodesAction {
    /// Stop scheduling to a node and wait until its invocations in flight have finished.
    Drain {
        /// The node's id (see `nexus nodes`).
        id: String,
    },
}

impl NodesCommand {
    /// Lists or drains.
    pub async fn run(self) -> anyhow::Result<()> {
        let token = match &self.token {
            Some(token) => token.clone(),
            None => std::fs::read_to_string(&self.token_file)
                .with_context(|| {
                    format!(
                        "no --token given and {} is unreadable (it is in the coordinator's state directory)",
                        self.token_file.display()
                    )
                })?
                .trim()
                .to_owned(),
        };
        let base = self.coordinator.trim_end_matches('/');
        let (request, timeout) = match &self.action {
            None => (Request::get(format!("{base}/v1/nodes")), LIST_TIMEOUT),
            Some(NodesAction::Drain { id }) => (
                Request::post(format!("{base}/v1/nodes/{id}/drain")),
                DRAIN_TIMEOUT,
            ),
        };
        let request = request
            .header("authorization", format!("Bearer {token}"))
            .body(Full::<Bytes>::default())?;
        let (status, body) = send(request, timeout).await?;
        if status != StatusCode::OK {
            let message = body["error"]["message"].as_str().unwrap_or("no details");
            bail!("the coordinator answered {status}: {message}");
        }
        if self.json {
            println!("{}", serde_json::to_string_pretty(&body)?);
            return Ok(());
        }
        match self.action {
            None => print_table(body["nodes"].as_array().map_or(&[][..], Vec::as_slice)),
            Some(NodesAction::Drain { id }) => println!(
                "Node {id} drained ({} invocations finished while draining)",
                body["finished"]
            ),
        }
        Ok(())
    }
}

async fn send(
    request: Request<Full<Bytes>>,
    timeout: Duration,
) -> anyhow::Result<(StatusCode, Value)> {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let uri = request.uri().clone();
    let response = tokio::time::timeout(timeout, client.request(request))
        .await
        .with_context(|| format!("{uri} did not answer in {timeout:?}"))?
        .with_context(|| format!("cannot reach {uri}"))?;
    let status = response.status();
    let body = response.into_body().collect().await?.to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
    Ok((status, json))
}

fn print_table(nodes: &[Value]) {
    let text = |node: &Value, field: &str| node[field].as_str().unwrap_or("-").to_owned();
    println!(
        "{:<36}  {:<16}  {:<10}  {:<8}  {:>9}  {:>5}  {:>4}  LAST HEARTBEAT",
        "ID", "NAME", "REGION", "STATE", "IN FLIGHT", "SLOTS", "WARM"
    );
    for node in nodes {
        println!(
            "{:<36}  {:<16}  {:<10}  {:<8}  {:>9}  {:>5}  {:>4}  {}",
            text(node, "id"),
            text(node, "name"),
            text(node, "region"),
            text(node, "state"),
            node["in_flight"],
            node["instance_slots"],
            node["warm_digests"].as_array().map_or(0, Vec::len),
            text(node, "last_heartbeat_at"),
        );
    }
}
