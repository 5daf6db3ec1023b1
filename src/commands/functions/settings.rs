//! `nexus functions set`: what a function's settings may be changed to, and the change sent.

use std::collections::BTreeMap;

use clap::Args;
use nexus_client::{
    AzureTarget, Function, FunctionChange, GcpTarget, LambdaTarget, Placement, Priority,
};

#[derive(Debug, Args)]
pub(super) struct SetArgs {
    /// The function.
    pub(super) function: String,

    /// The scheduling class of its requests that name none in `nexus-priority`.
    #[arg(long, value_parser = ["critical", "high", "normal", "low"])]
    priority: Option<String>,

    /// Run it only on edge nodes carrying this label with this value (repeatable: every one
    /// must match); replaces the labels it had.
    #[arg(long = "node-selector", value_name = "LABEL=VALUE", value_parser = label)]
    node_selector: Vec<(String, String)>,

    /// Let any edge node run it again (drops its node selector).
    #[arg(long, conflicts_with = "node_selector")]
    any_node: bool,

    /// Where it runs: edge nodes, one of its cloud targets, or `auto` (edge nodes first, its
    /// cloud target when no edge node can take a call). A cloud placement needs that cloud's
    /// target (`--lambda-function`, `--azure-url`, `--gcp-url`).
    #[arg(long, value_parser = ["edge", "aws-lambda", "azure-functions", "gcp", "auto"])]
    placement: Option<String>,

    /// Edge nodes that keep the versions its aliases point at loaded however long they idle,
    /// against cold starts (0 to 100; 0 lets them scale to zero).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(0..=100))]
    min_warm: Option<i32>,

    /// Attempts in all for each asynchronous invocation accepted from now on, the first
    /// included (1 to 100).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(i32).range(1..=100))]
    async_attempts: Option<i32>,

    /// No attempt of an asynchronous invocation starts this many seconds after it was
    /// accepted (1 to 604800, a week).
    #[arg(
        long,
        value_name = "SECS",
        value_parser = clap::value_parser!(i64).range(1..=604_800)
    )]
    async_max_age: Option<i64>,

    /// The wait before the first retry, in milliseconds (0 to 3600000); each later wait
    /// doubles, up to 15 minutes.
    #[arg(
        long,
        value_name = "MS",
        value_parser = clap::value_parser!(i64).range(0..=3_600_000)
    )]
    async_backoff_ms: Option<i64>,

    /// Its AWS Lambda target: the name or ARN of a Lambda function running
    /// `nexus-edge lambda` with a bundle of this function (`nexus bundle`).
    #[arg(long, value_name = "NAME")]
    lambda_function: Option<String>,

    /// A version or alias of the Lambda function (default `$LATEST`).
    #[arg(long, value_name = "QUALIFIER", requires = "lambda_function")]
    lambda_qualifier: Option<String>,

    /// The Lambda function's region (default the coordinator's).
    #[arg(long, value_name = "REGION", requires = "lambda_function")]
    lambda_region: Option<String>,

    /// Its Azure Functions target: the base URL of a function app running `nexus-edge azure`.
    #[arg(
        long,
        value_name = "URL",
        requires = "azure_key_secret",
        requires = "azure_invoke_token_secret"
    )]
    azure_url: Option<String>,

    /// The coordinator secret holding the function app's function key.
    #[arg(long, value_name = "SECRET", requires = "azure_url")]
    azure_key_secret: Option<String>,

    /// The coordinator secret holding the function app's `NEXUS_INVOKE_TOKEN`.
    #[arg(long, value_name = "SECRET", requires = "azure_url")]
    azure_invoke_token_secret: Option<String>,

    /// Its Cloud Run target: the base URL of a service running `nexus-edge cloud-run`.
    #[arg(
        long,
        value_name = "URL",
        requires = "gcp_service_account_secret",
        requires = "gcp_invoke_token_secret"
    )]
    gcp_url: Option<String>,

    /// The audience of the ID tokens sent to the service (default its URL).
    #[arg(long, value_name = "AUDIENCE", requires = "gcp_url")]
    gcp_audience: Option<String>,

    /// The coordinator secret holding the JSON key of a service account allowed to invoke the
    /// service.
    #[arg(long, value_name = "SECRET", requires = "gcp_url")]
    gcp_service_account_secret: Option<String>,

    /// The coordinator secret holding the service's `NEXUS_INVOKE_TOKEN`.
    #[arg(long, value_name = "SECRET", requires = "gcp_url")]
    gcp_invoke_token_secret: Option<String>,

    /// Drop the function's target in this cloud (repeatable); the other targets stay.
    #[arg(long, value_name = "CLOUD", value_parser = ["aws-lambda", "azure-functions", "gcp"])]
    remove_cloud: Vec<String>,
}

/// `label=value`, for `--node-selector`.
fn label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((label, value)) if !label.trim().is_empty() => {
            Ok((label.trim().to_owned(), value.trim().to_owned()))
        }
        _ => Err(format!("`{text}` is not `label=value`")),
    }
}

impl SetArgs {
    /// Whether the change starts from the function's current settings: retries and clouds are
    /// sent whole, so the values not given are the ones it has.
    pub(super) fn needs_current(&self) -> bool {
        self.changes_retries() || self.changes_clouds()
    }

    pub(super) fn changes_retries(&self) -> bool {
        self.async_attempts.is_some()
            || self.async_max_age.is_some()
            || self.async_backoff_ms.is_some()
    }

    pub(super) fn changes_clouds(&self) -> bool {
        self.lambda_function.is_some()
            || self.azure_url.is_some()
            || self.gcp_url.is_some()
            || !self.remove_cloud.is_empty()
    }

    /// The change to send: only what was given, merged into `current` where the API takes a
    /// whole value.
    pub(super) fn change(&self, current: Option<&Function>) -> FunctionChange {
        let node_selector = if self.any_node {
            Some(BTreeMap::new())
        } else if self.node_selector.is_empty() {
            None
        } else {
            Some(self.node_selector.iter().cloned().collect())
        };
        let async_retry = current.filter(|_| self.changes_retries()).map(|function| {
            let mut retry = function.async_retry;
            if let Some(attempts) = self.async_attempts {
                retry.max_attempts = attempts;
            }
            if let Some(max_age) = self.async_max_age {
                retry.max_age_ms = max_age.saturating_mul(1000);
            }
            if let Some(backoff) = self.async_backoff_ms {
                retry.backoff_ms = backoff;
            }
            retry
        });
        let cloud = current.filter(|_| self.changes_clouds()).map(|function| {
            let mut cloud = function.cloud.clone();
            for removed in &self.remove_cloud {
                match removed.as_str() {
                    "aws-lambda" => cloud.aws_lambda = None,
                    "azure-functions" => cloud.azure_functions = None,
                    _ => cloud.gcp = None,
                }
            }
            if let Some(function) = self.lambda_function.clone() {
                cloud.aws_lambda = Some(LambdaTarget {
                    function,
                    qualifier: self.lambda_qualifier.clone(),
                    region: self.lambda_region.clone(),
                });
            }
            if let Some(url) = self.azure_url.clone() {
                cloud.azure_functions = Some(AzureTarget {
                    url,
                    key_secret: self.azure_key_secret.clone().unwrap_or_default(),
                    invoke_token_secret: self.azure_invoke_token_secret.clone().unwrap_or_default(),
                });
            }
            if let Some(url) = self.gcp_url.clone() {
                cloud.gcp = Some(GcpTarget {
                    url,
                    audience: self.gcp_audience.clone(),
                    service_account_secret: self
                        .gcp_service_account_secret
                        .clone()
                        .unwrap_or_default(),
                    invoke_token_secret: self.gcp_invoke_token_secret.clone().unwrap_or_default(),
                });
            }
            cloud
        });
        FunctionChange {
            priority: self.priority.as_deref().map(Priority::from),
            node_selector,
            async_retry,
            placement: self.placement.as_deref().map(Placement::from),
            cloud,
            min_warm: self.min_warm,
        }
    }
}
