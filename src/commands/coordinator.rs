//! `nexus coordinator`: the coordinator on its own, as it runs in a cluster (its API only; the
//! edge nodes that run functions join it in the cluster issue).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Args;
use nexus_coordinator::server::{CoordinatorConfig, serve};
use tokio::net::TcpListener;

use super::up::wait_for_signal;

/// Where the coordinator listens unless told otherwise.
const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

#[derive(Debug, Args)]
pub struct CoordinatorCommand {
    /// Address to listen on.
    #[arg(long, env = "NEXUS_COORDINATOR_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// The database: `sqlite://PATH`, a file path, or `postgres://…` (CockroachDB too).
    #[arg(long, env = "DATABASE_URL", default_value = nexus_store::DEFAULT_DATABASE_URL)]
    database_url: String,

    /// The directory for the coordinator's files (uploaded components).
    #[arg(long, env = "NEXUS_STATE_DIR", default_value = ".nexus")]
    state_dir: PathBuf,

    /// The access-token signing secret (hex); created when missing. Replicas share it.
    #[arg(
        long,
        env = "NEXUS_SIGNING_KEY_FILE",
        default_value = ".nexus/signing-key"
    )]
    signing_key_file: PathBuf,
}

impl CoordinatorCommand {
    /// Serves the API until SIGINT or SIGTERM, then lets in-flight requests finish.
    pub async fn run(self) -> anyhow::Result<()> {
        let listener = TcpListener::bind(self.listen)
            .await
            .with_context(|| format!("cannot listen on {}", self.listen))?;
        let address = listener.local_addr()?;
        let config = CoordinatorConfig {
            database_url: self.database_url,
            signing_key_file: self.signing_key_file,
            state_dir: self.state_dir,
            limits: nexus_http::ServerLimits::default(),
        };
        println!("Coordinator listening on http://{address}");
        let shutdown = async {
            if let Err(error) = wait_for_signal().await {
                tracing::error!(%error, "cannot wait for signals; shutting down");
            }
        };
        serve(listener, config, shutdown).await?;
        eprintln!("Coordinator stopped");
        Ok(())
    }
}
