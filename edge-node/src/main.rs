//! `nexus-edge`: an edge node of a SirsiNexus cluster.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;
use nexus_edge::kv::KvBackend;
use nexus_edge::node::{EdgeNode, NodeConfig};
use nexus_runtime::Limits;
use tracing_subscriber::EnvFilter;

/// Runs WebAssembly functions for a SirsiNexus coordinator.
#[derive(Debug, Parser)]
#[command(name = "nexus-edge", version, about)]
struct Args {
    /// The coordinator's URL.
    #[arg(
        long,
        env = "NEXUS_COORDINATOR",
        default_value = "http://127.0.0.1:8080"
    )]
    coordinator: String,
    /// The cluster's join token (the coordinator's `<state dir>/node-token`).
    #[arg(long, env = "NEXUS_NODE_TOKEN", hide_env_values = true)]
    token: String,
    /// The node's name.
    #[arg(long, env = "NEXUS_NODE_NAME")]
    name: Option<String>,
    /// The node's region.
    #[arg(long, default_value = "default")]
    region: String,
    /// A label, `key=value`; repeatable.
    #[arg(long = "label", value_parser = parse_label)]
    labels: Vec<(String, String)>,
    /// Where to listen.
    #[arg(long, default_value = "0.0.0.0:7070")]
    listen: SocketAddr,
    /// Where the coordinator reaches this node (`http://host:port`); the listen address by default.
    #[arg(long)]
    advertise: Option<String>,
    /// Components, compiled code and SQLite databases.
    #[arg(long, default_value = ".nexus-edge")]
    state_dir: PathBuf,
    /// Spin key-value data: `postgres://…` or `redis://…` (shared by the cluster), `sqlite` or
    /// `memory`.
    #[arg(long, env = "NEXUS_KV", default_value = "memory")]
    kv: String,
    /// A `redis://…` cache in front of a `postgres://…` `--kv`: reads from Redis, every write
    /// recorded in Postgres before it returns.
    #[arg(long, env = "NEXUS_KV_CACHE")]
    kv_cache: Option<String>,
    /// Invocations run at once.
    #[arg(long)]
    instance_slots: Option<u32>,
}

fn parse_label(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("`{text}` is not key=value"))?;
    if key.is_empty() {
        return Err(format!("`{text}` has an empty key"));
    }
    Ok((key.to_owned(), value.to_owned()))
}

fn main() -> anyhow::Result<()> {
    nexus_http::runtime()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let kv = KvBackend::from_flags(&args.kv, args.kv_cache.as_deref(), &args.state_dir)?;
    let mut limits = Limits::default();
    if let Some(slots) = args.instance_slots {
        limits.max_instances = slots;
    }
    let name = args
        .name
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "edge".to_owned());
    let mut node = EdgeNode::start(NodeConfig {
        coordinator: args.coordinator,
        token: args.token,
        name,
        region: args.region,
        labels: args.labels.into_iter().collect::<BTreeMap<_, _>>(),
        listen: args.listen,
        advertise: args.advertise,
        state_dir: args.state_dir,
        kv,
        limits,
        environment: std::env::vars().collect(),
        server: nexus_http::ServerLimits::default(),
    })
    .await?;
    println!("Listening on http://{}", node.local_addr());
    tokio::select! {
        id = node.registered() => println!("Registered as node {}", id?),
        () = terminated() => return node.shutdown().await,
    }
    terminated().await;
    node.shutdown()
        .await
        .context("the node did not stop cleanly")
}

/// Resolves on SIGTERM or Ctrl-C.
async fn terminated() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = async {
            match term.as_mut() {
                Some(term) => { term.recv().await; }
                None => std::future::pending().await,
            }
        } => {}
    }
}
