//! `nexus up`: serve a Spin app the way `spin up` does, on the SirsiNexus runtime.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use clap::Args;
use nexus::units::{parse_bytes, parse_duration};
use nexus::{KvBackend, Platform, PlatformConfig};
use nexus_edge::IngressConfig;
use nexus_runtime::Limits;
use nexus_runtime::config::{
    DEFAULT_MAX_INSTANCES, DEFAULT_MAX_QUEUED, DEFAULT_MAX_REQUEST_BODY_BYTES,
    DEFAULT_MEMORY_LIMIT_BYTES,
};

/// Where `nexus up` listens unless told otherwise (the same default as `spin up`).
const DEFAULT_LISTEN: &str = "127.0.0.1:3000";
/// Manifests `nexus up` looks for, in order, when `-f` is not given: a Spin app in the current
/// directory, else this project's example functions.
const DEFAULT_MANIFESTS: &[&str] = &["spin.toml", "functions/spin.toml"];
/// The directory for local state (key-value database, SQLite databases, compile cache).
const DEFAULT_STATE_DIR: &str = ".nexus";

#[derive(Debug, Args)]
pub struct UpCommand {
    /// The Spin manifest (spin.toml) to run. Default: ./spin.toml, else ./functions/spin.toml.
    #[arg(short = 'f', long = "from", env = "NEXUS_MANIFEST")]
    manifest: Option<PathBuf>,

    /// Address to listen on.
    #[arg(long, env = "NEXUS_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// Key-value backend: `sqlite` (a file in the state directory), `memory`, or a
    /// `redis://` URL.
    #[arg(long, env = "NEXUS_KV", default_value = "sqlite")]
    kv: String,

    /// Directory for local state.
    #[arg(long, env = "NEXUS_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,

    /// Wall-clock deadline of one invocation (e.g. 30s, 500ms).
    #[arg(long, env = "NEXUS_DEADLINE", default_value = "30s", value_parser = parse_duration)]
    deadline: Duration,

    /// Memory cap of one guest (e.g. 128MiB).
    #[arg(long, env = "NEXUS_MEMORY_LIMIT", value_parser = parse_bytes)]
    memory_limit: Option<u64>,

    /// Instances that may run at once.
    #[arg(long, env = "NEXUS_MAX_INSTANCES", default_value_t = DEFAULT_MAX_INSTANCES)]
    max_instances: u32,

    /// Requests that may wait for an instance before callers get 503.
    #[arg(long, env = "NEXUS_MAX_QUEUED", default_value_t = DEFAULT_MAX_QUEUED)]
    max_queued: u32,

    /// Largest request body accepted (e.g. 16MiB).
    #[arg(long, env = "NEXUS_MAX_BODY", value_parser = parse_bytes)]
    max_body: Option<u64>,
}

impl UpCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let manifest = match self.manifest {
            Some(manifest) => manifest,
            None => find_default_manifest()?,
        };
        let kv = match self.kv.as_str() {
            "sqlite" => KvBackend::Sqlite(self.state_dir.join("key-value.db")),
            "memory" => KvBackend::Memory,
            url if url.starts_with("redis://") || url.starts_with("rediss://") => {
                KvBackend::Redis(url.to_owned())
            }
            other => anyhow::bail!("unknown --kv `{other}`: use sqlite, memory or a redis:// URL"),
        };
        let limits = Limits {
            deadline: self.deadline,
            memory_limit_bytes: self.memory_limit.unwrap_or(DEFAULT_MEMORY_LIMIT_BYTES),
            max_instances: self.max_instances,
            max_queued: self.max_queued,
            max_request_body_bytes: self.max_body.unwrap_or(DEFAULT_MAX_REQUEST_BODY_BYTES),
            ..Limits::default()
        };
        let config = PlatformConfig {
            manifest,
            listen: self.listen,
            kv,
            limits,
            compile_cache: Some(self.state_dir.join("compile-cache")),
            ingress: IngressConfig::default(),
            environment: std::env::vars().collect(),
            state_dir: Some(self.state_dir),
        };
        let platform = Platform::start(config).await?;
        print_routes(&platform);
        wait_for_signal().await?;
        eprintln!("Shutting down: waiting for in-flight requests");
        platform.shutdown().await
    }
}

fn find_default_manifest() -> anyhow::Result<PathBuf> {
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
