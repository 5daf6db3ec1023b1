//! `nexus up`: the whole platform in this process — the coordinator on SQLite with the runtime
//! in process — with a dev account and project, and a Spin app deployed as a function, so every
//! step a user takes goes through the coordinator's API exactly as in a cluster.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use clap::Args;
use nexus::dev::{DEV_CREDENTIALS, LocalDeploy, deploy_manifest, dev_access, function_name_of};
use nexus::{Embedded, EmbeddedConfig};
use nexus_coordinator::events::{Event, EventBus, EventKind};
use nexus_coordinator::functions::DeployLimits;
use nexus_coordinator::server::CoordinatorConfig;

use super::runtime_args::RuntimeArgs;
use super::serve::{DEFAULT_LISTEN, DEFAULT_STATE_DIR, find_default_manifest, wait_for_signal};

#[derive(Debug, Args)]
pub struct UpCommand {
    /// The Spin manifest (spin.toml) to deploy. Default: ./spin.toml, else
    /// ./functions/spin.toml (the example functions).
    #[arg(short = 'f', long = "from", env = "NEXUS_MANIFEST")]
    manifest: Option<PathBuf>,

    /// The function name to deploy it as. Default: the app's name.
    #[arg(long)]
    name: Option<String>,

    /// Address of the API and the HTTP trigger.
    #[arg(long, env = "NEXUS_LISTEN", default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,

    /// Directory for local state: database, signing key, components, key-value data.
    #[arg(long, env = "NEXUS_STATE_DIR", default_value = DEFAULT_STATE_DIR)]
    state_dir: PathBuf,

    /// The database. Default: `sqlite://<state dir>/nexus.db`.
    #[arg(long)]
    database_url: Option<String>,

    /// Serve a newly deployed component at once on baseline (Winch) code and switch to
    /// optimized (Cranelift) code when it is ready; `false` waits for the optimized code.
    #[arg(long, env = "NEXUS_BASELINE_TIER", default_value_t = true, action = clap::ArgAction::Set)]
    baseline_tier: bool,

    #[command(flatten)]
    runtime: RuntimeArgs,
}

impl UpCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let manifest = match &self.manifest {
            Some(manifest) => manifest.clone(),
            None => find_default_manifest()?,
        };
        let state_dir = self.state_dir.clone();
        let config = EmbeddedConfig {
            coordinator: CoordinatorConfig {
                database_url: self.database_url.clone().unwrap_or_else(|| {
                    format!("sqlite://{}", state_dir.join("nexus.db").display())
                }),
                signing_key_file: state_dir.join("signing-key"),
                state_dir: state_dir.clone(),
                limits: nexus_http::ServerLimits::default(),
                deploy: DeployLimits::default(),
                event_bus: None,
                invocation_queue: None,
                invocation_stream: None,
                invocations: nexus_coordinator::invocations::AsyncConfig::default(),
                rate_limits: nexus_coordinator::limits::RateLimitConfig::default(),
                https: None,
                vault: self.runtime.vault()?,
            },
            listen: self.listen,
            kv: self.runtime.kv(&state_dir)?,
            limits: self.runtime.limits(),
            compile_cache: Some(state_dir.join("compile-cache")),
            baseline_tier: self.baseline_tier,
            environment: std::env::vars().collect(),
            unload_idle_after: self.runtime.unload_idle_after(),
        };
        let platform = Embedded::start(config).await?;
        let access = dev_access(platform.state(), &state_dir).await?;
        let (_, app) = nexus::dev::upload_of(&manifest)?;
        let function = self
            .name
            .clone()
            .unwrap_or_else(|| function_name_of(&app.name));
        let deployed = deploy_manifest(
            platform.state(),
            access.caller,
            &access.project,
            &function,
            &manifest,
        )
        .await?;
        print_welcome(&platform, &state_dir, &access, &deployed, &manifest);
        let printing = tokio::spawn(print_guest_output(Arc::clone(&platform.state().events)));
        wait_for_signal().await?;
        printing.abort();
        eprintln!("Shutting down: waiting for in-flight requests");
        platform.shutdown().await
    }
}

/// Shows what the guests print on this terminal, as `spin up` does: each line on stderr,
/// after its function's name.
async fn print_guest_output(events: Arc<dyn EventBus>) {
    use futures::StreamExt as _;
    let mut events = events.subscribe(None).await;
    while let Some(event) = events.next().await {
        let Ok(Event {
            kind: EventKind::GuestLog { function, text, .. },
            ..
        }) = event
        else {
            continue;
        };
        for line in text.lines() {
            eprintln!("[{function}] {line}");
        }
    }
}

fn print_welcome(
    platform: &Embedded,
    state_dir: &Path,
    access: &nexus::dev::DevAccess,
    deployed: &LocalDeploy,
    manifest: &Path,
) {
    let base = platform.base_url();
    let project = &access.project;
    let function = &deployed.function;
    println!("Serving {base}");
    println!(
        "SirsiNexus is up: coordinator and runtime in this process, state in {}",
        state_dir.display()
    );
    println!(
        "Dev user: {} (password in {})",
        access.credentials.email,
        state_dir.join(DEV_CREDENTIALS).display()
    );
    println!(
        "Access token (valid {} min): export NEXUS_TOKEN={}",
        access.tokens.expires_in / 60,
        access.tokens.access_token
    );
    let state = if deployed.deployed {
        "deployed"
    } else {
        "unchanged"
    };
    println!(
        "Function {project}/{function} version {} is live ({state}, from {}):",
        deployed.version,
        manifest.display()
    );
    for (route, component) in &deployed.routes {
        let shown = route
            .strip_suffix("/...")
            .map_or(route.clone(), |prefix| format!("{prefix} (and subpaths)"));
        println!("  {component}: {base}/{project}/{function}{shown}");
    }
    println!("Dashboard: {base}/dashboard (sign in as the dev user)");
    println!("Metrics: {base}/metrics");
    println!("API: {base}/v1 (described at {base}/openapi.json)");
    println!(
        "  curl -H \"authorization: Bearer $NEXUS_TOKEN\" {base}/v1/projects/{project}/functions"
    );
}
