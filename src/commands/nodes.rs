//! `nexus nodes`: the cluster's edge nodes, listed or drained through the coordinator's API
//! with the cluster's join token.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use http::Method;
use serde_json::Value;

use super::client::{ApiClient, Coordinator};

/// How long a listing may take; a drain waits for the node's invocations instead.
const LIST_TIMEOUT: Duration = Duration::from_secs(30);
const DRAIN_TIMEOUT: Duration = Duration::from_secs(660);

#[derive(Debug, Args)]
pub struct NodesCommand {
    #[command(flatten)]
    coordinator: Coordinator,

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
        let client = ApiClient::new(&self.coordinator.url, token);
        let body = match &self.action {
            None => {
                client
                    .call(Method::GET, "/v1/nodes", None, LIST_TIMEOUT)
                    .await?
            }
            Some(NodesAction::Drain { id }) => {
                let path = format!("/v1/nodes/{id}/drain");
                client
                    .call(Method::POST, &path, None, DRAIN_TIMEOUT)
                    .await?
            }
        };
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
