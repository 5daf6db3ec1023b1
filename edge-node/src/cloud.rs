//! The runtime in a cloud function: one bundle's app (see [`nexus_proto::cloud`]) served as
//! an AWS Lambda custom runtime ([`lambda`]), an Azure Functions custom handler ([`azure`]) or a
//! Cloud Run service, the last two through one HTTP front ([`front`]).
//!
//! A cloud host loads its app once, while the platform initialises the function, and then
//! serves every request exactly as an edge node does ([`ServedApp::route_and_run`]): the same
//! routing, `spin-*` headers, limits, and key-value stores named by the bundle's tenant (and
//! the agent, for the coordinator's agent invocations), so that an agent's context is the
//! same wherever it runs. Responses are collected whole, since a cloud returns them in one
//! payload, up to [`MAX_RESPONSE_BYTES`].

pub mod azure;
mod bundle;
pub mod front;
pub mod lambda;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt as _, Full, Limited};
use nexus_proto::cloud::{self, CloudInvoke, CloudResponse, PROTOCOL};
use nexus_runtime::{AgentContext, GuestResponse, Limits, RuntimeConfig};

use crate::errors::EdgeError;
use crate::hosting::{AppHost, Deployment};
use crate::ingress::ServedApp;
use crate::kv::{KvBackend, start_runtime};

pub use self::bundle::{BundleDir, BundleError};

/// The largest response body a cloud host returns: Lambda's 6 MB payload limit, less the
/// growth of base64 and the envelope.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Where a cloud host finds its app and keeps its state.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// The bundle directory.
    pub bundle: PathBuf,
    /// Where the key-value stores live: a shared `redis://` or `postgres://` for agents whose
    /// context must follow them between targets.
    pub kv: KvBackend,
    /// Compiled code (a cloud's writable scratch directory, `/tmp` on Lambda).
    pub state_dir: PathBuf,
    /// The instance limits.
    pub limits: Limits,
    /// The process environment (`SPIN_VARIABLE_*` become application variables).
    pub environment: Vec<(String, String)>,
    /// Vault, for variables marked `secret = true` the environment does not have.
    pub vault: Option<Arc<nexus_secrets::SecretStore>>,
}

/// One bundle's app, loaded and ready.
pub struct CloudHost {
    deployment: Deployment,
    app: Arc<ServedApp>,
    /// Keeps the runtime the app was loaded on.
    host: AppHost,
    /// Whether no invocation has been served yet: the first one is this sandbox's cold start.
    fresh: AtomicBool,
}

impl CloudHost {
    /// Opens the bundle, starts the runtime and loads the app (compiling its components).
    pub async fn start(config: CloudConfig) -> anyhow::Result<Self> {
        let (manifest, blobs) = BundleDir::open(&config.bundle)
            .with_context(|| format!("failed to open the bundle {}", config.bundle.display()))?;
        let runtime = start_runtime(
            RuntimeConfig {
                limits: config.limits,
                compile_cache: Some(config.state_dir.join("compiled")),
                state_dir: Some(config.state_dir.clone()),
                baseline_tier: false,
            },
            &config.kv,
        )
        .await?;
        let variables = crate::variables::source(config.environment, config.vault);
        let host = AppHost::new(runtime, Arc::new(blobs), variables);
        let deployment = Deployment {
            id: manifest.deployment.into(),
            namespace: manifest.namespace.into(),
            app: Arc::new(manifest.app),
        };
        let app = host
            .app(&deployment)
            .await
            .map_err(|error| anyhow::anyhow!("{}", error.message()))
            .context("failed to load the bundle's app")?;
        Ok(Self {
            deployment,
            app,
            host,
            fresh: AtomicBool::new(true),
        })
    }

    /// The deployment the bundle holds.
    pub fn deployment(&self) -> &str {
        &self.deployment.id
    }

    /// The tenant whose stores the app opens.
    pub fn namespace(&self) -> &str {
        &self.deployment.namespace
    }

    /// Runs one of the coordinator's invocations; a failure is answered in the same shape.
    pub async fn invoke(&self, invoke: CloudInvoke) -> CloudResponse {
        let response = match self.direct(invoke).await {
            Ok(response) => response,
            Err(error) => error.logged_response(),
        };
        let (parts, body) = response.into_parts();
        CloudResponse {
            status: parts.status.as_u16(),
            // Guest header values that are not text are dropped with a warning: the payload
            // carries text, and the response is otherwise whole.
            headers: parts
                .headers
                .iter()
                .filter_map(|(name, value)| match value.to_str() {
                    Ok(value) => Some((name.to_string(), value.to_owned())),
                    Err(_) => {
                        tracing::warn!(header = %name, "dropped a response header that is not text");
                        None
                    }
                })
                .collect(),
            body: cloud::encode_body(&body),
        }
    }

    async fn direct(&self, invoke: CloudInvoke) -> Result<http::Response<Bytes>, EdgeError> {
        if invoke.protocol != PROTOCOL {
            return Err(EdgeError::bad_request(format!(
                "protocol {} is not {PROTOCOL}, the one this host speaks",
                invoke.protocol
            )));
        }
        if invoke.deployment != *self.deployment.id {
            return Err(EdgeError::wrong_deployment(
                &invoke.deployment,
                &self.deployment.id,
            ));
        }
        if invoke.namespace != *self.deployment.namespace {
            return Err(EdgeError::wrong_deployment(
                &format!("{} of tenant {}", invoke.deployment, invoke.namespace),
                &format!(
                    "{} of tenant {}",
                    self.deployment.id, self.deployment.namespace
                ),
            ));
        }
        let bad = |error: cloud::CloudWireError| EdgeError::bad_request(error.to_string());
        let body = cloud::decode_body(&invoke.body).map_err(bad)?;
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = invoke
            .method
            .parse()
            .map_err(|_| EdgeError::bad_request("invalid method"))?;
        *request.uri_mut() = invoke
            .uri
            .parse()
            .map_err(|_| EdgeError::bad_request("invalid request target"))?;
        *request.headers_mut() = cloud::pairs_to_headers(&invoke.headers).map_err(bad)?;
        if let Some(agent) = invoke.agent {
            request.extensions_mut().insert(AgentContext(agent.into()));
        }
        let client = invoke.client.parse().unwrap_or(UNKNOWN_CLIENT);
        self.run(request, client, &invoke.prefix).await
    }

    /// Routes and runs `request` for the app mounted at `prefix`, as an invocation (traced and
    /// counted; the first one is the cold start).
    pub async fn serve<B>(
        &self,
        request: Request<B>,
        client: SocketAddr,
        prefix: &str,
    ) -> Result<GuestResponse, EdgeError>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        self.host
            .observe(
                &self.deployment,
                request,
                |request, cold_start| async move {
                    if self.fresh.swap(false, Ordering::Relaxed) {
                        self.host.cold_started(&self.deployment, &cold_start);
                    }
                    self.app.route_and_run(request, client, prefix).await
                },
            )
            .await
    }

    /// What this host counts, for `/metrics`.
    pub fn metrics(&self) -> &crate::metrics::EdgeMetrics {
        self.host.metrics()
    }

    /// Routes and runs `request` for the app mounted at `prefix`, and collects the response.
    pub async fn run<B>(
        &self,
        request: Request<B>,
        client: SocketAddr,
        prefix: &str,
    ) -> Result<http::Response<Bytes>, EdgeError>
    where
        B: http_body::Body<Data = Bytes> + Send + Unpin + 'static,
        B::Error: std::error::Error + Send + Sync + 'static,
    {
        let response = self.serve(request, client, prefix).await?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|error| {
                if error.is::<http_body_util::LengthLimitError>() {
                    EdgeError::response_too_large(MAX_RESPONSE_BYTES)
                } else {
                    EdgeError::internal(&error)
                }
            })?
            .to_bytes();
        Ok(http::Response::from_parts(parts, body))
    }
}

/// The client address shown when a platform does not say.
const UNKNOWN_CLIENT: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0);
