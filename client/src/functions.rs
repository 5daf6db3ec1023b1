//! Functions, versions and aliases: `/v1/projects/{p}/functions`. Deploys are in
//! [`upload`].

use std::collections::BTreeMap;

use http::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Result};

mod upload;

pub use self::upload::{DeployAlias, Deployed, Upload};

open_enum! {
    /// The scheduling class of a function's requests that name none in `nexus-priority`.
    pub enum Priority {
        /// Admitted before everything else.
        Critical = "critical",
        /// Admitted before `normal` and `low`.
        High = "high",
        /// The default.
        Normal = "normal",
        /// Admitted only when nothing more urgent waits.
        Low = "low",
    }
}

open_enum! {
    /// Where a function's invocations run.
    pub enum Placement {
        /// Edge nodes only (the default).
        Edge = "edge",
        /// The function's AWS Lambda target only.
        AwsLambda = "aws-lambda",
        /// The function's Azure Functions target only.
        AzureFunctions = "azure-functions",
        /// The function's Cloud Run target only.
        Gcp = "gcp",
        /// Edge nodes first; the function's cloud target when no edge node can take a call.
        Auto = "auto",
    }
}

/// A function, with its aliases (and versions, from [`Client::get_function`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Function {
    /// The function's name, unique in its project.
    pub name: String,
    /// The priority class of its requests that name none.
    pub priority: Priority,
    /// The labels an edge node must carry, each with exactly this value, to run it; empty
    /// when any node may.
    pub node_selector: BTreeMap<String, String>,
    /// How its asynchronous invocations are retried.
    pub async_retry: AsyncRetry,
    /// Where it runs.
    pub placement: Placement,
    /// The clouds it may run in.
    pub cloud: CloudTargets,
    /// Edge nodes that keep its aliased versions loaded however long they idle.
    #[serde(default)]
    pub min_warm: i32,
    /// When it was first deployed (RFC 3339).
    pub created_at: String,
    /// Its aliases.
    pub aliases: Vec<Alias>,
    /// Its versions; only from [`Client::get_function`] and [`Client::update_function`].
    #[serde(default)]
    pub versions: Option<Vec<Version>>,
}

/// How a function's asynchronous invocations are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AsyncRetry {
    /// Attempts in all, the first included: 1 to 100 (default 3).
    pub max_attempts: i32,
    /// No attempt starts this long after the invocation was accepted: 1 s to 7 days, in
    /// milliseconds (default 6 hours).
    pub max_age_ms: i64,
    /// The wait before the first retry, in milliseconds (0 to 1 hour, default 1 s); each later
    /// wait doubles, up to 15 minutes, with jitter.
    pub backoff_ms: i64,
}

/// The clouds a function may run in.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloudTargets {
    /// An AWS Lambda function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_lambda: Option<LambdaTarget>,
    /// An Azure function app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azure_functions: Option<AzureTarget>,
    /// A Cloud Run service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gcp: Option<GcpTarget>,
}

/// A function's AWS Lambda target: a Lambda function running `nexus-edge lambda` with a bundle
/// of the function's app.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LambdaTarget {
    /// The Lambda function's name or ARN.
    pub function: String,
    /// A version or alias of it; `$LATEST` when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
    /// Its region; the coordinator's when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// A function's Azure Functions target: a function app running `nexus-edge azure`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AzureTarget {
    /// The function app's base URL (`https://`; `http://` only on loopback).
    pub url: String,
    /// The coordinator secret holding the app's function key.
    pub key_secret: String,
    /// The coordinator secret holding the handler's `NEXUS_INVOKE_TOKEN`.
    pub invoke_token_secret: String,
}

/// A function's Cloud Run target: a service running `nexus-edge cloud-run`, called with an ID
/// token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GcpTarget {
    /// The service's base URL (`https://`; `http://` only on loopback).
    pub url: String,
    /// The audience of the ID token; the URL when left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// The coordinator secret holding the JSON key of a service account allowed to invoke it.
    pub service_account_secret: String,
    /// The coordinator secret holding the service's `NEXUS_INVOKE_TOKEN`.
    pub invoke_token_secret: String,
}

/// A version that takes a share of an alias's requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Canary {
    /// The canary version.
    pub version: i64,
    /// Its percentage of the alias's requests.
    pub weight: i32,
}

/// Where an alias pointed before its last move: where a rollback moves it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreviousTarget {
    /// The version.
    pub version: i64,
    /// The canary it had.
    pub canary: Option<Canary>,
}

/// A named pointer to a version (`live`, `canary`…), reached as `/{project}/{function}@{alias}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alias {
    /// The alias name.
    pub name: String,
    /// The version that takes the requests the canary does not.
    pub version: i64,
    /// A version taking a share of the requests.
    pub canary: Option<Canary>,
    /// Where a rollback would move it.
    pub previous: Option<PreviousTarget>,
    /// When it last moved (RFC 3339).
    pub updated_at: String,
}

/// An immutable version of a function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    /// The version number, counting from 1.
    pub version: i64,
    /// The digest of each of its components, by component id.
    pub component_digests: serde_json::Value,
    /// When it was deployed (RFC 3339).
    pub created_at: String,
    /// The resolved app; only from [`Client::get_version`].
    #[serde(default)]
    pub app: Option<serde_json::Value>,
}

/// A change to a function's settings; a field left `None` keeps its value, and at least one
/// must be set.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FunctionChange {
    /// The priority class of its requests that name none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// The labels a node must carry to run it (like a Kubernetes `nodeSelector`); an empty map
    /// lets any node run it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node_selector: Option<BTreeMap<String, String>>,
    /// How asynchronous invocations accepted from now on are retried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub async_retry: Option<AsyncRetry>,
    /// Where it runs; a cloud placement needs a matching target in `cloud`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<Placement>,
    /// The clouds it may run in; replaces those it had.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cloud: Option<CloudTargets>,
    /// Edge nodes that keep its aliased versions loaded however long they idle (0 lets them
    /// scale to zero).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_warm: Option<i32>,
}

#[derive(Serialize)]
struct AliasChange {
    version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    canary: Option<Canary>,
}

impl Client {
    /// `GET /v1/projects/{project}/functions`: the project's functions with their aliases.
    pub async fn list_functions(&self, project: &str) -> Result<Vec<Function>> {
        let call = self.call(Method::GET, &["v1", "projects", project, "functions"]);
        self.send(call).await?.json()
    }

    /// `GET /v1/projects/{project}/functions/{function}`: one function, with its versions.
    pub async fn get_function(&self, project: &str, function: &str) -> Result<Function> {
        let segments = ["v1", "projects", project, "functions", function];
        self.send(self.call(Method::GET, &segments)).await?.json()
    }

    /// `PATCH /v1/projects/{project}/functions/{function}`: changes its settings (developer and
    /// up); the change applies from the next request.
    pub async fn update_function(
        &self,
        project: &str,
        function: &str,
        change: &FunctionChange,
    ) -> Result<Function> {
        let segments = ["v1", "projects", project, "functions", function];
        let call = self.call(Method::PATCH, &segments).json(change);
        self.send(call).await?.json()
    }

    /// `GET /v1/projects/{project}/functions/{function}/versions/{version}`: one version, with
    /// its resolved app.
    pub async fn get_version(
        &self,
        project: &str,
        function: &str,
        version: i64,
    ) -> Result<Version> {
        let version = version.to_string();
        let segments = [
            "v1",
            "projects",
            project,
            "functions",
            function,
            "versions",
            &version,
        ];
        self.send(self.call(Method::GET, &segments)).await?.json()
    }

    /// `PUT /v1/projects/{project}/functions/{function}/aliases/{alias}`: points the alias at
    /// `version`, with `canary` taking its weight's percentage of the requests (developer and
    /// up). Creates the alias if it does not exist.
    pub async fn set_alias(
        &self,
        project: &str,
        function: &str,
        alias: &str,
        version: i64,
        canary: Option<Canary>,
    ) -> Result<Alias> {
        let segments = [
            "v1",
            "projects",
            project,
            "functions",
            function,
            "aliases",
            alias,
        ];
        let call = self
            .call(Method::PUT, &segments)
            .json(&AliasChange { version, canary });
        self.send(call).await?.json()
    }

    /// `POST /v1/projects/{project}/functions/{function}/aliases/{alias}/rollback`: moves the
    /// alias back to where it pointed before its last move (developer and up).
    pub async fn rollback_alias(
        &self,
        project: &str,
        function: &str,
        alias: &str,
    ) -> Result<Alias> {
        let segments = [
            "v1",
            "projects",
            project,
            "functions",
            function,
            "aliases",
            alias,
            "rollback",
        ];
        self.send(self.call(Method::POST, &segments)).await?.json()
    }
}
