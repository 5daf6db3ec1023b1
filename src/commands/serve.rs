//! `nexus serve`: one Spin app served straight by the edge ingress, the way `spin up` serves
//! it (routes at the root, no coordinator, no accounts): the runtime on its own.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use nexus::{Platform, PlatformConfig};
use nexus_edge::IngressConfig;

use super::runtime_args::RuntimeArgs;

/// Where `nexus serve` and `nexus up` listen unless told otherwise (the same default as
/// `spin up`).
pub(super) const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
/// Manifests `nexus serve` and `nexus up` look for, in order, when `-f` is not given: a Spin app in the current
/// directory, else this project's example functions.
const DEFAULT_MANIFESTS: &[&str] = &["spin.toml", "functions/spin.toml"];
/// The directory for local state (key-value database, SQLite databases, compile cache).
pub(super) const DEFAULT_STATE_DIR: &str = ".nexus";

#[derive(Debug, Args)]
pub struct ServeCommand {
    /// The Spin manifest (spin.toml) to run. Default: ./spin.toml, else ./functions/spin.toml.
    #[arg(short = 'f', long = "from", env = "NEXUS_MANIFEST")]
    manifest: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, env = "NEXUS_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// Directory for local state.
    #[arg(long, env = "NEXUS_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,

    #[command(flatten)]
    runtime: RuntimeArgs,
}

impl ServeCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let manifest = match self.manifest {
            Some(manifest) => manifest,
            None => find_default_manifest()?,
        };
        let config = PlatformConfig {
            manifest,
            listen: self.listen,
            kv: self.runtime.kv(&self.state_dir)?,
            limits: self.runtime.limits(),
            compile_cache: Some(self.state_dir.join("compile-cache")),
            ingress: IngressConfig::default(),
            environment: std::env::vars().collect(),
            vault: self.runtime.vault()?,
            state_dir: Some(self.state_dir),
        };
        let platform = Platform::start(config).await?;
        print_routes(&platform);
        wait_for_signal().await?;
        eprintln!("Shutting down: waiting for in-flight requests");
        platform.shutdown().await
    }
}

pub(super) fn find_default_manifest() -> anyhow::Result<PathBuf> {
    DEFAULT_MANIFESTS
        .iter()
        .map(Path::new)
        .find(|path| path.is_file())
        .map(Path::to_path_buf)
        .with_context(|| {
            format!(
                "no spin.toml found (looked for {}); pass one with -f",
                DEFAULT_MANIFESTS.join(", ")
            )
        })
}

fn print_routes(platform: &Platform) {
    let base = format!("http://{}", platform.local_addr());
    println!("Serving {base}");
    println!("Available Routes:");
    for (route, component) in platform.routes() {
        let shown = route
            .strip_suffix("/...")
            .map_or(route.clone(), |prefix| format!("{prefix} (and subpaths)"));
        println!("  {component}: {base}{shown}");
    }
}

/// Resolves at SIGINT (Ctrl-C) or SIGTERM.
pub(super) async fn wait_for_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("failed to install the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result.context("failed to wait for Ctrl-C"),
        _ = terminate.recv() => Ok(()),
    }
}
