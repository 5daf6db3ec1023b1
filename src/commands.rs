//! The subcommands, one file each.

use clap::{Parser, Subcommand};

mod audit;
mod coordinator;
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
    /// Run a Spin app (and, later, the whole platform) in this process.
    Up(up::UpCommand),
    /// Inspect the coordinator's audit log.
    Audit(audit::AuditCommand),
    /// Run the coordinator's API on its own.
    Coordinator(coordinator::CoordinatorCommand),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub async fn run(self) -> anyhow::Result<()> {
        match self.command {
            Command::Up(command) => command.run().await,
            Command::Audit(command) => command.run().await,
            Command::Coordinator(command) => command.run().await,
        }
    }
}
