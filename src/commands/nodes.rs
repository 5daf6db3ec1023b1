//! `nexus nodes`: the cluster's edge nodes, listed or drained through the coordinator's API
//! with the cluster's join token.

use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use nexus_client::Node;

use super::output::{self, cell};
use super::session::{CoordinatorUrl, explain};

#[derive(Debug, Args)]
pub struct NodesCommand {
    #[command(flatten)]
    coordinator: CoordinatorUrl,

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
        let client = nexus_client::Client::new(&self.coordinator.url)
            .map_err(explain)?
            .with_token(token);
        match self.action {
            None => {
                let nodes = client.list_nodes().await.map_err(explain)?;
                if self.json {
                    return output::json(&nodes);
                }
                print_table(&nodes);
            }
            Some(NodesAction::Drain { id }) => {
                let drained = client.drain_node(&id).await.map_err(explain)?;
                if self.json {
                    return output::json(&drained);
                }
                println!(
                    "Node {id} drained ({} invocations finished while draining)",
                    drained.finished
                );
            }
        }
        Ok(())
    }
}

fn print_table(nodes: &[Node]) {
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|node| {
            vec![
                node.id.clone(),
                node.name.clone(),
                node.region.clone(),
                node.state.to_string(),
                node.in_flight.to_string(),
                node.instance_slots.to_string(),
                node.warm_digests.len().to_string(),
                cell(Some(&node.last_heartbeat_at)),
            ]
        })
        .collect();
    output::table(
        &[
            "ID",
            "NAME",
            "REGION",
            "STATE",
            "IN FLIGHT",
            "SLOTS",
            "WARM",
            "LAST HEARTBEAT",
        ],
        &rows,
        Some("STATE"),
    );
}
