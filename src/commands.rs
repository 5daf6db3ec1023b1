//! The subcommands, one file each.

use clap::{Parser, Subcommand};

mod agents;
mod audit;
mod bundle;
mod client;
mod coordinator;
mod nodes;
mod runtime_args;
mod serve;
mod up;

/// SirsiNexus: run Spin apps on the edge and in the cloud.
#[derive(Debug, Parser)]
#[command(name = "nexus", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole platform in this process, with a dev account and a Spin app deployed.
    Up(up::UpCommand),
    /// Serve one Spin app straight from the runtime, like `spin up` (no coordinator).
    Serve(serve::ServeCommand),
    /// Inspect the coordinator's audit log.
    Audit(audit::AuditCommand),
    /// Write a Spin app as the code of an AWS Lambda function or an Azure function app, served
    /// there by `nexus-edge lambda` or `nexus-edge azure`.
    Bundle(bundle::BundleCommand),
    /// Run the coordinator: its API and the HTTP trigger, with the runtime in process or
    /// edge nodes (`--cluster`).
    Coordinator(coordinator::CoordinatorCommand),
    /// List the cluster's edge nodes, or drain one.
    Nodes(nodes::NodesCommand),
    /// List, create, show, suspend, resume or delete a project's agents.
    Agents(agents::AgentsCommand),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Up(command) => command.run().await,
            Command::Serve(command) => command.run().await,
            Command::Audit(command) => command.run().await,
            Command::Bundle(command) => command.run().await,
            Command::Coordinator(command) => command.run().await,
            Command::Nodes(command) => command.run().await,
            Command::Agents(command) => command.run().await,
        }
    }
}
