//! `nexus-edge`: an edge node of a SirsiNexus cluster.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use nexus_edge::cloud::azure::ROUTE_PREFIX;
use nexus_edge::cloud::front::{HttpHandler, INVOKE_TOKEN_VARIABLE};
use nexus_edge::cloud::{CloudConfig, CloudHost};
use nexus_edge::kv::KvBackend;
use nexus_edge::node::{EdgeNode, NodeConfig};
use nexus_identity::SvidPaths;
use nexus_runtime::Limits;
use nexus_secrets::{SecretStore, VaultArgs};
use tokio::net::TcpListener;

/// Runs WebAssembly functions for a SirsiNexus coordinator; or, with `lambda` or `azure`, one
/// bundle's app as a cloud function.
#[derive(Debug, Parser)]
#[command(name = "nexus-edge", version, about, subcommand_negates_reqs = true)]
struct Args {
    #[command(subcommand)]
    cloud: Option<Host>,
    #[command(flatten)]
    node: NodeArgs,
}

/// The cloud function hosts.
#[derive(Debug, Subcommand)]
enum Host {
    /// An AWS Lambda custom runtime (what the `bootstrap` of a `provided.al2023` function runs;
    /// a binary named `bootstrap` runs this without arguments).
    Lambda(CloudArgs),
    /// An Azure Functions custom handler (started by the Functions host as `host.json` says).
    Azure(AzureArgs),
    /// A Cloud Run service: the app at the root of `$PORT`.
    CloudRun(CloudRunArgs),
}

#[derive(Debug, clap::Args)]
struct NodeArgs {
    /// The coordinator's URL; with several replicas, each one's (repeated, or comma-separated):
    /// the node holds a lease with every one, and any of them may send it work.
    #[arg(
        long,
        env = "NEXUS_COORDINATOR",
        default_value = "http://127.0.0.1:8080",
        value_delimiter = ','
    )]
    coordinator: Vec<String>,
    /// The cluster's join token (the coordinator's `<state dir>/node-token`).
    #[arg(
        long,
        env = "NEXUS_NODE_TOKEN",
        hide_env_values = true,
        required = true
    )]
    token: Option<String>,
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
    /// Where the coordinator reaches this node (`http://host:port`, `https://` with an
    /// identity); the listen address by default.
    #[arg(long)]
    advertise: Option<String>,
    /// The directory where SPIRE's helper keeps this node's X.509 SVID (`svid.pem`,
    /// `svid_key.pem`, `svid_bundle.pem`; `nexus dev-certs` makes them): mutual TLS with the
    /// coordinator, reloaded when the files change. `--coordinator` is then the cluster
    /// listener's `https://` URL, and the name defaults to the one in the SVID.
    #[arg(long, env = "NEXUS_IDENTITY_DIR")]
    identity_dir: Option<PathBuf>,
    /// Components, compiled code and SQLite databases.
    #[arg(long, default_value = ".nexus-edge")]
    state_dir: PathBuf,
    #[command(flatten)]
    kv: KvArgs,
    /// Invocations run at once.
    #[arg(long)]
    instance_slots: Option<u32>,
    /// Seconds an app may idle before it is unloaded and its compiled code dropped (scale to
    /// zero; the coordinator keeps a function's `min_warm` versions loaded); 0 never unloads.
    #[arg(long, env = "NEXUS_UNLOAD_IDLE_AFTER", default_value_t = nexus_edge::DEFAULT_UNLOAD_IDLE_AFTER_SECONDS)]
    unload_idle_after: u64,
    /// Where clients may call the node directly (`/{project}/{function}[@alias]/…`, as on the
    /// coordinator's trigger): served from the routing table the coordinator sends, also while
    /// no coordinator answers; asynchronous invocations wait in the outbox until one does.
    #[arg(long, env = "NEXUS_INGRESS")]
    ingress: Option<SocketAddr>,
    /// The most the outbox keeps on disk while no coordinator answers, in MiB: beyond it the
    /// ingress refuses asynchronous invocations with 503.
    #[arg(long, default_value_t = nexus_edge::node::DEFAULT_OUTBOX_MAX_BYTES / (1024 * 1024))]
    outbox_max_mb: u64,
    #[command(flatten)]
    vault: VaultArgs,
}

#[derive(Debug, clap::Args)]
struct KvArgs {
    /// Spin key-value data: `postgres://…` or `redis://…` (shared by the cluster), `sqlite` or
    /// `memory`.
    #[arg(long, env = "NEXUS_KV", default_value = "memory")]
    kv: String,
    /// A `redis://…` cache in front of a `postgres://…` `--kv`: reads from Redis, every write
    /// recorded in Postgres before it returns.
    #[arg(long, env = "NEXUS_KV_CACHE")]
    kv_cache: Option<String>,
}

#[derive(Debug, clap::Args)]
struct CloudArgs {
    /// The bundle directory (`nexus bundle`); the function's own directory by default
    /// (`LAMBDA_TASK_ROOT` on Lambda, the working directory on Azure).
    #[arg(long, env = "NEXUS_BUNDLE")]
    bundle: Option<PathBuf>,
    /// Compiled code and SQLite databases: the function's scratch space by default.
    #[arg(long, env = "NEXUS_STATE_DIR")]
    state_dir: Option<PathBuf>,
    #[command(flatten)]
    kv: KvArgs,
    #[command(flatten)]
    vault: VaultArgs,
}

#[derive(Debug, clap::Args)]
struct AzureArgs {
    #[command(flatten)]
    cloud: CloudArgs,
    /// The port the Functions host forwards requests to.
    #[arg(long, env = nexus_edge::cloud::azure::PORT_VARIABLE)]
    port: u16,
    /// The coordinator's token for direct invocations (none: the handler takes none).
    #[arg(long, env = INVOKE_TOKEN_VARIABLE, hide_env_values = true)]
    invoke_token: Option<String>,
}

#[derive(Debug, clap::Args)]
struct CloudRunArgs {
    #[command(flatten)]
    cloud: CloudArgs,
    /// The port Cloud Run sends requests to.
    #[arg(long, env = "PORT", default_value_t = 8080)]
    port: u16,
    /// The coordinator's token for direct invocations (none: the service takes none).
    #[arg(long, env = INVOKE_TOKEN_VARIABLE, hide_env_values = true)]
    invoke_token: Option<String>,
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
    let tracing = nexus_telemetry::trace::init("nexus-edge", "info");
    // Boxed: the hosts' futures are deep, and this one holds them all.
    let ran = Box::pin(run_host()).await;
    tracing.shutdown().await;
    ran
}

async fn run_host() -> anyhow::Result<()> {
    let args = if invoked_as_bootstrap() {
        Args::parse_from(["bootstrap", "lambda"])
    } else {
        Args::parse()
    };
    match args.cloud {
        Some(Host::Lambda(cloud)) => {
            let root = std::env::var_os("LAMBDA_TASK_ROOT").map(PathBuf::from);
            let host = start_cloud_host(cloud, root).await?;
            Box::pin(nexus_edge::cloud::lambda::run(host)).await
        }
        Some(Host::Azure(azure)) => {
            let host = start_cloud_host(azure.cloud, None).await?;
            // The Functions host forwards from the same machine.
            let address = SocketAddr::from((Ipv4Addr::LOCALHOST, azure.port));
            let handler = HttpHandler::new(host, ROUTE_PREFIX, azure.invoke_token);
            Box::pin(serve_http(handler, address)).await
        }
        Some(Host::CloudRun(run)) => {
            let host = start_cloud_host(run.cloud, None).await?;
            let address = SocketAddr::from((Ipv4Addr::UNSPECIFIED, run.port));
            Box::pin(serve_http(
                HttpHandler::new(host, "", run.invoke_token),
                address,
            ))
            .await
        }
        None => Box::pin(run_node(args.node)).await,
    }
}

/// Serves `handler` on `address` until SIGTERM or Ctrl-C.
async fn serve_http(handler: HttpHandler, address: SocketAddr) -> anyhow::Result<()> {
    let listener = TcpListener::bind(address)
        .await
        .with_context(|| format!("failed to listen on {address}"))?;
    println!("Listening on http://{}", listener.local_addr()?);
    handler
        .serve(listener, nexus_http::ServerLimits::default(), terminated())
        .await
        .context("the handler stopped")
}

/// Whether this binary was started, without arguments, as a Lambda custom runtime's
/// `bootstrap`.
fn invoked_as_bootstrap() -> bool {
    let mut args = std::env::args_os();
    let named_bootstrap = args
        .next()
        .map(PathBuf::from)
        .is_some_and(|path| path.file_name().is_some_and(|name| name == "bootstrap"));
    named_bootstrap && args.next().is_none()
}

async fn start_cloud_host(
    args: CloudArgs,
    default_root: Option<PathBuf>,
) -> anyhow::Result<CloudHost> {
    let bundle = match args.bundle.or(default_root) {
        Some(bundle) => bundle,
        None => std::env::current_dir().context("failed to read the working directory")?,
    };
    let state_dir = args
        .state_dir
        .unwrap_or_else(|| std::env::temp_dir().join("nexus-edge"));
    let kv = KvBackend::from_flags(&args.kv.kv, args.kv.kv_cache.as_deref(), &state_dir)?;
    CloudHost::start(CloudConfig {
        bundle,
        kv,
        state_dir,
        limits: Limits::default(),
        environment: std::env::vars().collect(),
        vault: vault_store(&args.vault)?,
    })
    .await
}

async fn run_node(args: NodeArgs) -> anyhow::Result<()> {
    let kv = KvBackend::from_flags(&args.kv.kv, args.kv.kv_cache.as_deref(), &args.state_dir)?;
    let mut limits = Limits::default();
    if let Some(slots) = args.instance_slots {
        limits.max_instances = slots;
    }
    let identity = args.identity_dir.as_deref().map(SvidPaths::in_dir);
    let name_in_svid = match &identity {
        Some(paths) => Some(
            nexus_identity::Identity::load(paths.clone(), nexus_identity::DEFAULT_RELOAD_INTERVAL)
                .context("failed to load the node's identity")?
                .id()
                .edge_node()
                .map(str::to_owned)
                .context("the SVID is not an edge node's (spiffe://<trust domain>/edge/<name>)")?,
        ),
        None => None,
    };
    let name = args
        .name
        .or(name_in_svid)
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "edge".to_owned());
    let token = args
        .token
        .context("the cluster's join token is missing (--token or NEXUS_NODE_TOKEN)")?;
    let mut node = EdgeNode::start(NodeConfig {
        coordinators: args.coordinator,
        identity,
        token,
        name,
        region: args.region,
        labels: args.labels.into_iter().collect::<BTreeMap<_, _>>(),
        listen: args.listen,
        advertise: args.advertise,
        state_dir: args.state_dir,
        kv,
        limits,
        environment: std::env::vars().collect(),
        vault: vault_store(&args.vault)?,
        server: nexus_http::ServerLimits::default(),
        unload_idle_after: (args.unload_idle_after > 0)
            .then(|| std::time::Duration::from_secs(args.unload_idle_after)),
        ingress: args.ingress,
        outbox_max_bytes: args.outbox_max_mb.saturating_mul(1024 * 1024),
    })
    .await?;
    let scheme = if args.identity_dir.is_some() {
        "https"
    } else {
        "http"
    };
    println!("Listening on {scheme}://{}", node.local_addr());
    if let Some(ingress) = node.ingress_addr() {
        println!("Ingress on http://{ingress}");
    }
    tokio::select! {
        id = node.registered() => println!("Registered as node {}", id?),
        () = terminated() => return node.shutdown().await,
    }
    terminated().await;
    node.shutdown()
        .await
        .context("the node did not stop cleanly")
}

/// The Vault the flags name, if any; a bad combination of flags stops the start.
fn vault_store(args: &VaultArgs) -> anyhow::Result<Option<Arc<SecretStore>>> {
    let config = args.config()?;
    Ok(config.map(SecretStore::new).transpose()?.map(Arc::new))
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
