//! `nexus coordinator`: the coordinator as a service (any database, no dev account): its API
//! and the HTTP trigger, with the runtime in process, or with `--cluster` dispatching to the
//! edge nodes that join it.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;
use nexus::cluster::{ClusterConfig, ClusterCoordinator};
use nexus::{Embedded, EmbeddedConfig, KvBackend};
use nexus_coordinator::cluster::SchedulerConfig;
use nexus_coordinator::functions::DeployLimits;
use nexus_coordinator::server::CoordinatorConfig;
use nexus_identity::{CertificateFiles, SvidPaths};

use super::runtime_args::RuntimeArgs;
use super::serve::wait_for_signal;

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

    /// Serve a newly deployed component at once on baseline (Winch) code and switch to
    /// optimized (Cranelift) code when it is ready; `false` waits for the optimized code.
    #[arg(long, env = "NEXUS_BASELINE_TIER", default_value_t = true, action = clap::ArgAction::Set)]
    baseline_tier: bool,

    /// Run functions on edge nodes (`nexus-edge --coordinator URL --token …`) instead of in
    /// this process.
    #[arg(long, env = "NEXUS_CLUSTER")]
    cluster: bool,

    /// The file holding the cluster's join token (created when missing); `--cluster` only.
    #[arg(
        long,
        env = "NEXUS_NODE_TOKEN_FILE",
        default_value = ".nexus/node-token"
    )]
    node_token_file: PathBuf,

    /// The directory where SPIRE's helper keeps the coordinator's X.509 SVID (`svid.pem`,
    /// `svid_key.pem`, `svid_bundle.pem`, for `spiffe://<trust domain>/coordinator`; `nexus
    /// dev-certs` makes them), reloaded when the files change: nodes then join on
    /// `--cluster-listen` over mutual TLS only, and are called the same way; `--cluster` only.
    #[arg(long, env = "NEXUS_IDENTITY_DIR")]
    identity_dir: Option<PathBuf>,

    /// Where nodes join over mutual TLS, with `--identity-dir`.
    #[arg(long, env = "NEXUS_CLUSTER_LISTEN", default_value = "0.0.0.0:7443")]
    cluster_listen: SocketAddr,

    /// A PEM certificate chain: the API and the trigger are served over TLS (reloaded when
    /// the file changes); with `--tls-key`.
    #[arg(long, env = "NEXUS_TLS_CERTIFICATE")]
    tls_certificate: Option<PathBuf>,

    /// The PEM private key of `--tls-certificate`.
    #[arg(long, env = "NEXUS_TLS_KEY")]
    tls_key: Option<PathBuf>,

    /// Prefer edge nodes in this region; `--cluster` only.
    #[arg(long, env = "NEXUS_REGION")]
    region: Option<String>,

    /// A `redis://…` whose stream carries every replica's events (`/ws/events` on any
    /// replica sees them all); without it events stay in this process.
    #[arg(long, env = "NEXUS_EVENT_BUS")]
    event_bus: Option<String>,

    /// A `redis://…` whose stream announces asynchronous invocations to the workers of every
    /// replica (a consumer group); without it they are announced in this process. The
    /// invocations themselves are always in the database.
    #[arg(long, env = "NEXUS_INVOCATION_QUEUE")]
    invocation_queue: Option<String>,

    /// The key of that stream; replicas of one coordinator share it.
    #[arg(long, env = "NEXUS_INVOCATION_STREAM", default_value = nexus_coordinator::server::INVOCATION_STREAM)]
    invocation_stream: String,

    /// The share of the edge nodes' instance slots in use at which `nexus_edge_nodes_desired`
    /// (the autoscaling signal on `/metrics`) equals the node count; `--cluster` only.
    #[arg(long, env = "NEXUS_AUTOSCALE_TARGET_UTILIZATION", default_value_t = nexus_coordinator::cluster::autoscale::DEFAULT_TARGET_UTILIZATION, value_parser = utilization)]
    autoscale_target_utilization: f64,

    /// Hours a succeeded or failed asynchronous invocation stays readable before it is
    /// deleted; dead ones stay until redriven or purged.
    #[arg(long, env = "NEXUS_INVOCATION_RETENTION_HOURS", default_value_t = 168)]
    invocation_retention_hours: u64,

    #[command(flatten)]
    runtime: RuntimeArgs,

    #[command(flatten)]
    rate_limits: RateLimitArgs,
}

/// A share above 0 and at most 1.
fn utilization(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(share) if share > 0.0 && share <= 1.0 => Ok(share),
        _ => Err(format!("{text} is not a share above 0 and at most 1")),
    }
}

/// Abuse limits; 0 turns one off.
#[derive(Debug, clap::Args)]
struct RateLimitArgs {
    /// Calls of /v1/auth/* per minute from one address.
    #[arg(long, env = "NEXUS_AUTH_RATE_PER_IP", default_value_t = 60)]
    auth_rate_per_ip: u32,
    /// Logins per minute for one account.
    #[arg(long, env = "NEXUS_LOGIN_RATE_PER_ACCOUNT", default_value_t = 10)]
    login_rate_per_account: u32,
    /// Failed logins in a row before an account waits (1 s, doubling up to 15 min).
    #[arg(long, env = "NEXUS_FAILED_LOGINS_BEFORE_BACKOFF", default_value_t = 5)]
    failed_logins_before_backoff: u32,
    /// Trigger requests per second for one project (bursts of twice that).
    #[arg(long, env = "NEXUS_PROJECT_RATE", default_value_t = 0)]
    project_rate: u32,
}

impl RateLimitArgs {
    fn config(&self) -> nexus_coordinator::limits::RateLimitConfig {
        nexus_coordinator::limits::RateLimitConfig {
            auth_per_ip_per_minute: self.auth_rate_per_ip,
            logins_per_account_per_minute: self.login_rate_per_account,
            failed_logins_before_backoff: self.failed_logins_before_backoff,
            project_requests_per_second: self.project_rate,
            ..nexus_coordinator::limits::RateLimitConfig::default()
        }
    }
}

impl CoordinatorCommand {
    /// Serves until SIGINT or SIGTERM, then lets in-flight requests finish.
    pub async fn run(self) -> anyhow::Result<()> {
        let coordinator = CoordinatorConfig {
            database_url: self.database_url.clone(),
            signing_key_file: self.signing_key_file.clone(),
            state_dir: self.state_dir.clone(),
            limits: nexus_http::ServerLimits::default(),
            deploy: DeployLimits::default(),
            event_bus: self.event_bus.clone(),
            invocation_queue: self.invocation_queue.clone(),
            invocation_stream: Some(self.invocation_stream.clone()),
            invocations: nexus_coordinator::invocations::AsyncConfig {
                retention: std::time::Duration::from_secs(
                    self.invocation_retention_hours.saturating_mul(60 * 60),
                ),
                ..nexus_coordinator::invocations::AsyncConfig::default()
            },
            rate_limits: self.rate_limits.config(),
            vault: self.runtime.vault()?,
            https: match (&self.tls_certificate, &self.tls_key) {
                (Some(certificate), Some(key)) => Some(CertificateFiles {
                    certificate: certificate.clone(),
                    key: key.clone(),
                }),
                (None, None) => None,
                _ => anyhow::bail!("--tls-certificate and --tls-key go together"),
            },
        };
        let scheme = if coordinator.https.is_some() {
            "https"
        } else {
            "http"
        };
        if self.cluster {
            let coordinator = ClusterCoordinator::start(ClusterConfig {
                coordinator,
                listen: self.listen,
                token_file: self.node_token_file.clone(),
                region: self.region.clone(),
                scheduler: SchedulerConfig::default(),
                kv: Some(self.runtime.kv(&self.state_dir)?).filter(KvBackend::is_shared),
                identity: self.identity_dir.as_deref().map(SvidPaths::in_dir),
                cluster_listen: self.cluster_listen,
                target_utilization: self.autoscale_target_utilization,
            })
            .await?;
            println!(
                "Coordinator listening on {scheme}://{}",
                coordinator.local_addr()
            );
            match coordinator.cluster_url() {
                Some(url) => println!(
                    "Nodes join with: nexus-edge --coordinator {url} --identity-dir <the node's SVID> --token \"$(cat {})\"",
                    self.node_token_file.display()
                ),
                None => println!(
                    "Nodes join with: nexus-edge --coordinator {} --token \"$(cat {})\"",
                    coordinator.base_url(),
                    self.node_token_file.display()
                ),
            }
            wait_for_signal().await?;
            coordinator.shutdown().await?;
            eprintln!("Coordinator stopped");
            return Ok(());
        }
        let config = EmbeddedConfig {
            listen: self.listen,
            kv: self.runtime.kv(&self.state_dir)?,
            limits: self.runtime.limits(),
            compile_cache: Some(self.state_dir.join("compile-cache")),
            baseline_tier: self.baseline_tier,
            environment: std::env::vars().collect(),
            unload_idle_after: self.runtime.unload_idle_after(),
            coordinator,
        };
        let platform = Embedded::start(config).await?;
        println!(
            "Coordinator listening on {scheme}://{}",
            platform.local_addr()
        );
        wait_for_signal().await?;
        platform.shutdown().await?;
        eprintln!("Coordinator stopped");
        Ok(())
    }
}
