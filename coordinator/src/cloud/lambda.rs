//! AWS Lambda as a cloud target: `Invoke` with the [`CloudEnvelope`] as the payload,
//! synchronously (`RequestResponse`) or queued by Lambda (`Event`).
//!
//! Credentials come from the standard chain (environment, profile, web identity, assume role,
//! container and instance metadata) and are never logged. The HTTPS client is built on ring,
//! the process's one rustls provider.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_lambda::Client;
pub use aws_sdk_lambda::config::Credentials;
use aws_sdk_lambda::error::{DisplayErrorContext, SdkError};
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_smithy_http_client::tls::{Provider, rustls_provider::CryptoMode};
use nexus_proto::cloud::{CloudEnvelope, CloudInvoke, CloudResponse};

use super::{CloudError, CloudResult};

/// How long a synchronous invocation may take: Lambda's own limit is 15 minutes; a
/// coordinator waits no longer than its callers do.
pub const INVOKE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long connecting to Lambda may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// The largest synchronous response Lambda returns.
pub const MAX_RESPONSE_BYTES: usize = 6 * 1024 * 1024;

/// Where a Lambda target is.
#[derive(Debug, Clone)]
pub struct LambdaConfig {
    /// The function's name or ARN.
    pub function: String,
    /// A version or alias of it, if not `$LATEST`.
    pub qualifier: Option<String>,
    /// The region, if not from the environment or profile.
    pub region: Option<String>,
    /// Another endpoint than AWS's (an emulator, a VPC endpoint).
    pub endpoint: Option<String>,
    /// Fixed credentials instead of the standard chain (an emulator's).
    pub credentials: Option<Credentials>,
}

/// One Lambda function, invoked through the AWS SDK.
#[derive(Debug, Clone)]
pub struct LambdaTarget {
    client: Client,
    config: LambdaConfig,
}

impl LambdaTarget {
    /// The target of `config`, with credentials from the standard chain.
    pub async fn connect(config: LambdaConfig) -> Self {
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(http)
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(CONNECT_TIMEOUT)
                    .operation_timeout(INVOKE_TIMEOUT)
                    .build(),
            );
        if let Some(region) = &config.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &config.endpoint {
            loader = loader.endpoint_url(endpoint.clone());
        }
        if let Some(credentials) = &config.credentials {
            loader = loader.credentials_provider(credentials.clone());
        }
        let client = Client::new(&loader.load().await);
        Self { client, config }
    }

    /// The function this target invokes.
    pub fn function(&self) -> &str {
        &self.config.function
    }

    /// Runs `invoke` and waits for the app's response.
    pub async fn invoke(&self, invoke: CloudInvoke) -> CloudResult {
        let output = self.send(invoke, InvocationType::RequestResponse).await?;
        if let Some(error) = output.function_error() {
            let detail = output
                .payload()
                .map(|payload| String::from_utf8_lossy(payload.as_ref()).into_owned())
                .unwrap_or_default();
            return Err(CloudError::Function(format!("{error}: {detail}")));
        }
        let payload = output
            .payload()
            .ok_or_else(|| CloudError::BadAnswer("no payload".to_owned()))?;
        if payload.as_ref().len() > MAX_RESPONSE_BYTES {
            return Err(CloudError::BadAnswer(format!(
                "a payload over {MAX_RESPONSE_BYTES} bytes"
            )));
        }
        serde_json::from_slice::<CloudResponse>(payload.as_ref())
            .map_err(|error| CloudError::BadAnswer(error.to_string()))
    }

    /// Hands `invoke` to Lambda's own queue (`Event`) and returns once Lambda has it; Lambda
    /// runs it and retries it as the function's asynchronous configuration says.
    pub async fn invoke_later(&self, invoke: CloudInvoke) -> Result<(), CloudError> {
        self.send(invoke, InvocationType::Event).await.map(drop)
    }

    async fn send(
        &self,
        invoke: CloudInvoke,
        kind: InvocationType,
    ) -> Result<aws_sdk_lambda::operation::invoke::InvokeOutput, CloudError> {
        let payload = serde_json::to_vec(&CloudEnvelope { nexus: invoke })
            .map_err(|error| CloudError::NotReached(format!("encoding the payload: {error}")))?;
        let mut request = self
            .client
            .invoke()
            .function_name(&self.config.function)
            .invocation_type(kind)
            .payload(Blob::new(payload));
        if let Some(qualifier) = &self.config.qualifier {
            request = request.qualifier(qualifier);
        }
        request.send().await.map_err(|error| classify(&error))
    }
}

/// Whether a failed `Invoke` may have run the function: only when the request was sent and
/// the answer was lost.
fn classify<E, R>(error: &SdkError<E, R>) -> CloudError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let text = DisplayErrorContext(error).to_string();
    match error {
        SdkError::ConstructionFailure(_)
        | SdkError::DispatchFailure(_)
        | SdkError::ServiceError(_) => CloudError::NotReached(text),
        _ => CloudError::Function(text),
    }
}
