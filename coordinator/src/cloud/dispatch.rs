//! The dispatch that honours a function's placement: edge nodes through the coordinator's own
//! [`Dispatch`], its Lambda target through the AWS SDK, its Azure function app over HTTPS, or
//! `auto`: edge nodes first and the cloud when none can take the call, with no error the
//! client could see in between.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, Method, Request, Response, StatusCode};
use nexus_proto::cloud::{self, CloudInvoke, CloudResponse, PROTOCOL};
use tokio::sync::OnceCell;

use super::http::HttpTargets;
use super::placement::{CloudTarget, LambdaPlacement, PlacementMode};
use super::{CloudError, CloudRequest, LambdaConfig, LambdaTarget};
use crate::api::invocations::IDEMPOTENCY_KEY;
use crate::cluster::dispatch::NODE_HEADER;
use crate::dispatch::{Dispatch, DispatchFuture, Invocation, Replayable, Target};
use crate::error::ApiError;

/// The largest request body a cloud target takes: Lambda's 6 MB payload, less the growth of
/// base64 and the envelope.
pub const MAX_CLOUD_REQUEST_BYTES: usize = 4 * 1024 * 1024;

/// Edge codes that mean no function code ran on any node, so the call may go to the cloud.
const EDGE_RAN_NOTHING: &[&str] = &["no_node_available", "no_matching_node", "overloaded"];

/// Lambda clients by target, each made once by the first invocation that needs it.
type LambdaClients = Mutex<HashMap<LambdaPlacement, Arc<OnceCell<Arc<LambdaTarget>>>>>;

/// A [`Dispatch`] that sends each invocation where its function's placement says.
#[derive(Clone)]
pub struct PlacedDispatch {
    edge: Arc<dyn Dispatch>,
    lambdas: Arc<LambdaClients>,
    http: Arc<HttpTargets>,
}

impl PlacedDispatch {
    /// Edge invocations go to `edge`.
    pub fn new(edge: Arc<dyn Dispatch>) -> Self {
        Self {
            edge,
            lambdas: Arc::default(),
            http: Arc::default(),
        }
    }

    /// Cloud keys and tokens come from `secrets` (the environment only, by default).
    pub fn with_secrets(mut self, secrets: crate::secrets::Secrets) -> Self {
        self.http = Arc::new(HttpTargets::new(secrets));
        self
    }

    /// The client of a Lambda target, made once (it loads credentials and region).
    async fn lambda(&self, placement: &LambdaPlacement) -> Arc<LambdaTarget> {
        let cell = Arc::clone(
            self.lambdas
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .entry(placement.clone())
                .or_default(),
        );
        let target = cell
            .get_or_init(|| async {
                Arc::new(
                    LambdaTarget::connect(LambdaConfig {
                        function: placement.function.clone(),
                        qualifier: placement.qualifier.clone(),
                        region: placement.region.clone(),
                        endpoint: None,
                        credentials: None,
                    })
                    .await,
                )
            })
            .await;
        Arc::clone(target)
    }

    async fn in_cloud(&self, request: CloudRequest) -> Result<Response<Body>, ApiError> {
        let placement = Arc::clone(&request.target.placement);
        match placement.cloud() {
            Some(CloudTarget::Lambda(target)) => {
                let lambda = self.lambda(target).await;
                let invoke = into_invoke(request)?;
                let response = lambda.invoke(invoke).await.map_err(cloud_failed)?;
                into_response(response, &format!("aws-lambda:{}", lambda.function()))
            }
            Some(CloudTarget::Azure(target)) => {
                let response = self.http.azure(target, &request).await;
                ran_on(response, "azure-functions", &target.url)
            }
            Some(CloudTarget::Gcp(target)) => {
                let response = self.http.gcp(target, &request).await;
                ran_on(response, "gcp", &target.url)
            }
            None => Err(ApiError::unavailable(
                "the function's placement names no cloud target",
            )),
        }
    }

    async fn edge_then_cloud(&self, invocation: Invocation) -> Result<Response<Body>, ApiError> {
        let Invocation {
            target,
            prefix,
            client,
            request,
            agent,
            logs,
        } = invocation;
        let (parts, body) = request.into_parts();
        let body = match Replayable::read(body, MAX_CLOUD_REQUEST_BYTES).await? {
            Replayable::Whole(bytes) => bytes,
            // Too large for the cloud: the edge or nothing.
            Replayable::Streaming(body) => {
                return self
                    .edge
                    .invoke(Invocation {
                        target,
                        prefix,
                        client,
                        request: Request::from_parts(parts, body),
                        agent,
                        logs,
                    })
                    .await;
            }
        };
        let repeatable = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS)
            || parts.headers.contains_key(IDEMPOTENCY_KEY);
        let cloud = CloudRequest {
            target: Arc::clone(&target),
            method: parts.method.clone(),
            uri: parts.uri.clone(),
            headers: parts.headers.clone(),
            body: body.clone(),
            prefix: prefix.clone(),
            client,
            agent,
        };
        let at_edge = self
            .edge
            .invoke(Invocation {
                target,
                prefix,
                client,
                request: Request::from_parts(parts, Body::from(body)),
                agent,
                logs,
            })
            .await;
        match at_edge {
            Err(error)
                if EDGE_RAN_NOTHING.contains(&error.code)
                    || (error.code == "node_failed" && repeatable) =>
            {
                tracing::info!(
                    function = %cloud.target.function,
                    edge = error.code,
                    "no edge node could take the call; running it in the cloud"
                );
                self.in_cloud(cloud).await
            }
            answered => answered,
        }
    }
}

impl Dispatch for PlacedDispatch {
    fn invoke(&self, invocation: Invocation) -> DispatchFuture<Response<Body>> {
        match invocation.target.placement.mode {
            PlacementMode::Edge => self.edge.invoke(invocation),
            PlacementMode::AwsLambda | PlacementMode::AzureFunctions | PlacementMode::Gcp => {
                let this = self.clone();
                Box::pin(async move {
                    let request = CloudRequest::of(invocation).await?;
                    this.in_cloud(request).await
                })
            }
            PlacementMode::Auto => {
                let this = self.clone();
                Box::pin(async move { this.edge_then_cloud(invocation).await })
            }
        }
    }

    fn prepare(&self, target: Arc<Target>) -> DispatchFuture<()> {
        match target.placement.mode {
            // The cloud bundle is deployed by its owner; nothing to ready here.
            PlacementMode::AwsLambda | PlacementMode::AzureFunctions | PlacementMode::Gcp => {
                Box::pin(async { Ok(()) })
            }
            PlacementMode::Edge | PlacementMode::Auto => self.edge.prepare(target),
        }
    }

    fn keep_warm(&self, target: Arc<Target>, period: Duration) -> DispatchFuture<()> {
        match target.placement.mode {
            // A cloud keeps its own capacity warm (provisioned concurrency, always-ready
            // instances, minimum instances).
            PlacementMode::AwsLambda | PlacementMode::AzureFunctions | PlacementMode::Gcp => {
                Box::pin(async { Ok(()) })
            }
            PlacementMode::Edge | PlacementMode::Auto => self.edge.keep_warm(target, period),
        }
    }
}

impl CloudRequest {
    async fn of(invocation: Invocation) -> Result<Self, ApiError> {
        let (parts, body) = invocation.request.into_parts();
        let body = match Replayable::read(body, MAX_CLOUD_REQUEST_BYTES).await? {
            Replayable::Whole(bytes) => bytes,
            Replayable::Streaming(_) => {
                return Err(ApiError::too_large(format!(
                    "a request to a cloud function carries at most {MAX_CLOUD_REQUEST_BYTES} bytes"
                )));
            }
        };
        Ok(Self {
            target: invocation.target,
            method: parts.method,
            uri: parts.uri,
            headers: parts.headers,
            body,
            prefix: invocation.prefix,
            client: invocation.client,
            agent: invocation.agent,
        })
    }
}

/// The payload of a direct invocation for `request`.
fn into_invoke(request: CloudRequest) -> Result<CloudInvoke, ApiError> {
    let headers = cloud::headers_to_pairs(&request.headers)
        .map_err(|error| ApiError::bad_request(error.to_string()))?;
    Ok(CloudInvoke {
        protocol: PROTOCOL,
        deployment: request.target.app_digest.to_string(),
        namespace: request.target.project_id.to_string(),
        method: request.method.to_string(),
        uri: request
            .uri
            .path_and_query()
            .map_or_else(|| request.uri.path().to_owned(), ToString::to_string),
        prefix: request.prefix,
        headers,
        body: cloud::encode_body(&request.body),
        client: request.client.to_string(),
        agent: request.agent.map(|agent| agent.to_string()),
    })
}

/// A response from an HTTP cloud target, tagged `{cloud}:{url}` as a node's is.
fn ran_on(
    response: Result<Response<Body>, CloudError>,
    cloud: &str,
    url: &str,
) -> Result<Response<Body>, ApiError> {
    let mut response = response.map_err(cloud_failed)?;
    let ran_on = format!("{cloud}:{}", url.trim_end_matches('/'));
    if let Ok(value) = HeaderValue::from_str(&ran_on) {
        response.headers_mut().insert(NODE_HEADER, value);
    }
    Ok(response)
}

/// The function's response from a cloud, tagged with where it ran (as a node's is).
fn into_response(answer: CloudResponse, ran_on: &str) -> Result<Response<Body>, ApiError> {
    let bad = |what: &str| cloud_failed(CloudError::BadAnswer(what.to_owned()));
    let status = StatusCode::from_u16(answer.status).map_err(|_| bad("an invalid status"))?;
    let headers =
        cloud::pairs_to_headers(&answer.headers).map_err(|error| bad(&error.to_string()))?;
    let body = cloud::decode_body(&answer.body).map_err(|error| bad(&error.to_string()))?;
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    if let Ok(value) = HeaderValue::from_str(ran_on) {
        response.headers_mut().insert(NODE_HEADER, value);
    }
    Ok(response)
}

/// The client learns that the cloud failed; the details (the provider's own errors) go to the
/// log.
fn cloud_failed(error: CloudError) -> ApiError {
    tracing::warn!(%error, "cloud invocation failed");
    match error {
        CloudError::NotReached(_) => ApiError::from_runtime(
            StatusCode::SERVICE_UNAVAILABLE,
            "cloud_unreachable",
            "the function's cloud target could not be reached; see the coordinator's log"
                .to_owned(),
            Some(Duration::from_secs(1)),
        ),
        CloudError::Function(_) | CloudError::BadAnswer(_) => ApiError::from_runtime(
            StatusCode::BAD_GATEWAY,
            "cloud_function_failed",
            "the function failed in the cloud; see the coordinator's log".to_owned(),
            None,
        ),
    }
}
