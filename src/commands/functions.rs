//! `nexus functions`: a project's functions, listed and shown with their versions and aliases;
//! their settings changed (priority, nodes, placement, clouds, retries of asynchronous
//! invocations); their aliases moved, split with a canary, or rolled back.

use std::collections::BTreeMap;

use anyhow::anyhow;
use clap::{Args, Subcommand};
use nexus_client::{
    Alias, AzureTarget, Canary, CloudTargets, Function, FunctionChange, GcpTarget, LambdaTarget,
    Placement, Priority, Version,
};
use serde_json::Value;

use super::output::{self, cell};
use super::session::{Access, ProjectArg, explain};

#[derive(Debug, Args)]
pub struct FunctionsCommand {
    #[command(flatten)]
    access: Access,

    #[command(flatten)]
    project: ProjectArg,

    /// Print the coordinator's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    action: Option<FunctionsAction>,
}

#[derive(Debug, Subcommand)]
enum FunctionsAction {
    /// Every function of the project, with the version `live` serves (the default).
    List,
    /// One function: its settings, its aliases (with their canaries) and its versions.
    Get {
        /// The function.
        function: String,
    },
    /// Change a function's settings; only the options given change, from its next request.
    Set(Box<SetArgs>),
    /// One version of a function: when it was deployed, its components (with their digests
    /// and key-value stores) and its HTTP routes; `--json` prints the whole resolved app.
    Version {
        /// The function.
        function: String,
        /// The version number (see `nexus functions get`).
        version: i64,
    },
    /// Point an alias at a version, optionally sending a share of its requests to a canary
    /// version; creates the alias if it does not exist.
    Alias {
        /// The function.
        function: String,
        /// The alias: `live`, or any other name (reached as `/{project}/{function}@{alias}`).
        alias: String,
        /// The version that takes the requests the canary does not.
        version: i64,
        /// A canary version, taking `--weight` percent of the alias's requests.
        #[arg(long, requires = "weight", value_name = "VERSION")]
        canary: Option<i64>,
        /// The canary's share of the requests, in percent.
        #[arg(
            long,
            requires = "canary",
            value_name = "PERCENT",
            value_parser = clap::value_parser!(i32).range(0..=100)
        )]
        weight: Option<i32>,
    },
    /// Move an alias back to where it pointed before its last move (version and canary).
    Rollback {
        /// The function.
        function: String,
        /// The alias.
        alias: String,
    },
}

/// The settings `nexus functions set` can change.
#[derive(Debug, Args)]
struct SetArgs {
    /// The function.
    function: String,

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
    fn needs_current(&self) -> bool {
        self.changes_retries() || self.changes_clouds()
    }

    fn changes_retries(&self) -> bool {
        self.async_attempts.is_some()
            || self.async_max_age.is_some()
            || self.async_backoff_ms.is_some()
    }

    fn changes_clouds(&self) -> bool {
        self.lambda_function.is_some()
            || self.azure_url.is_some()
            || self.gcp_url.is_some()
            || !self.remove_cloud.is_empty()
    }

    /// The change to send: only what was given, merged into `current` where the API takes a
    /// whole value.
    fn change(&self, current: Option<&Function>) -> FunctionChange {
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
        }
    }
}

impl FunctionsCommand {
    /// Carries out the action.
    pub async fn run(self) -> anyhow::Result<()> {
        let project = self.project.name()?.to_owned();
        let client = self.access.client().await?;
        let json = self.json;
        match self.action.unwrap_or(FunctionsAction::List) {
            FunctionsAction::List => {
                let functions = client.list_functions(&project).await.map_err(explain)?;
                if json {
                    return output::json(&functions);
                }
                let rows: Vec<Vec<String>> = functions
                    .iter()
                    .map(|function| {
                        vec![
                            function.name.clone(),
                            cell(
                                function
                                    .aliases
                                    .iter()
                                    .find(|alias| alias.name == "live")
                                    .map(target),
                            ),
                            function.placement.to_string(),
                            function.priority.to_string(),
                            function.created_at.clone(),
                        ]
                    })
                    .collect();
                output::table(
                    &["NAME", "LIVE", "PLACEMENT", "PRIORITY", "CREATED"],
                    &rows,
                    None,
                );
            }
            FunctionsAction::Get { function } => {
                let function = client
                    .get_function(&project, &function)
                    .await
                    .map_err(explain)?;
                if json {
                    return output::json(&function);
                }
                show_function(&function);
            }
            FunctionsAction::Set(args) => {
                let name = args.function.clone();
                let current = if args.needs_current() {
                    Some(
                        client
                            .get_function(&project, &name)
                            .await
                            .map_err(explain)?,
                    )
                } else {
                    None
                };
                let change = args.change(current.as_ref());
                if change == FunctionChange::default() {
                    return Err(anyhow!(
                        "nothing to change\n  hint: pass a setting, such as --priority high (see `nexus functions set --help`)"
                    ));
                }
                let function = client
                    .update_function(&project, &name, &change)
                    .await
                    .map_err(explain)?;
                if json {
                    return output::json(&function);
                }
                println!("Function {name} updated; the change applies from its next request");
                show_settings(&function);
            }
            FunctionsAction::Version { function, version } => {
                let shown = client
                    .get_version(&project, &function, version)
                    .await
                    .map_err(explain)?;
                if json {
                    return output::json(&shown);
                }
                show_version(&function, &shown);
            }
            FunctionsAction::Alias {
                function,
                alias,
                version,
                canary,
                weight,
            } => {
                let canary = canary.map(|canary| Canary {
                    version: canary,
                    weight: weight.unwrap_or(0),
                });
                let moved = client
                    .set_alias(&project, &function, &alias, version, canary)
                    .await
                    .map_err(explain)?;
                if json {
                    return output::json(&moved);
                }
                println!(
                    "Alias {} of {function} now serves {}",
                    moved.name,
                    target(&moved)
                );
            }
            FunctionsAction::Rollback { function, alias } => {
                let moved = client
                    .rollback_alias(&project, &function, &alias)
                    .await
                    .map_err(explain)?;
                if json {
                    return output::json(&moved);
                }
                println!(
                    "Alias {} of {function} rolled back; it now serves {}",
                    moved.name,
                    target(&moved)
                );
            }
        }
        Ok(())
    }
}

/// What an alias serves: `2`, or `2, canary 3 at 10%`.
fn target(alias: &Alias) -> String {
    served(alias.version, alias.canary)
}

fn served(version: i64, canary: Option<Canary>) -> String {
    match canary {
        Some(canary) => format!("{version}, canary {} at {}%", canary.version, canary.weight),
        None => version.to_string(),
    }
}

/// A duration in milliseconds, in the largest unit that divides it.
fn duration(ms: i64) -> String {
    match ms {
        _ if ms % 1000 != 0 => format!("{ms} ms"),
        _ if ms != 0 && ms % 3_600_000 == 0 => format!("{} h", ms / 3_600_000),
        _ if ms != 0 && ms % 60_000 == 0 => format!("{} min", ms / 60_000),
        _ => format!("{} s", ms / 1000),
    }
}

/// The settings of a function, one per line.
fn show_settings(function: &Function) {
    println!(
        "  priority {}, placement {}",
        function.priority, function.placement
    );
    let nodes = if function.node_selector.is_empty() {
        "any edge node".to_owned()
    } else {
        function
            .node_selector
            .iter()
            .map(|(label, value)| format!("{label}={value}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("  runs on: {nodes}");
    let retry = function.async_retry;
    println!(
        "  asynchronous invocations: {} attempts within {}, first retry after {}",
        retry.max_attempts,
        duration(retry.max_age_ms),
        duration(retry.backoff_ms)
    );
    let CloudTargets {
        aws_lambda,
        azure_functions,
        gcp,
    } = &function.cloud;
    if let Some(lambda) = aws_lambda {
        println!(
            "  aws-lambda: {}{}{}",
            lambda.function,
            lambda
                .qualifier
                .as_deref()
                .map(|qualifier| format!(":{qualifier}"))
                .unwrap_or_default(),
            lambda
                .region
                .as_deref()
                .map(|region| format!(" in {region}"))
                .unwrap_or_default()
        );
    }
    if let Some(azure) = azure_functions {
        println!("  azure-functions: {}", azure.url);
    }
    if let Some(gcp) = gcp {
        println!("  gcp: {}", gcp.url);
    }
}

/// A function with its settings, aliases and versions.
fn show_function(function: &Function) {
    println!(
        "Function {} (created {})",
        function.name, function.created_at
    );
    show_settings(function);
    println!();
    let rows: Vec<Vec<String>> = function
        .aliases
        .iter()
        .map(|alias| {
            vec![
                alias.name.clone(),
                alias.version.to_string(),
                cell(
                    alias
                        .canary
                        .map(|canary| format!("{} at {}%", canary.version, canary.weight)),
                ),
                cell(
                    alias
                        .previous
                        .map(|previous| served(previous.version, previous.canary)),
                ),
                alias.updated_at.clone(),
            ]
        })
        .collect();
    output::table(
        &["ALIAS", "VERSION", "CANARY", "ROLLBACK TO", "UPDATED"],
        &rows,
        None,
    );
    let Some(versions) = &function.versions else {
        return;
    };
    println!();
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|version| {
            let aliases: Vec<String> = function
                .aliases
                .iter()
                .filter_map(|alias| {
                    if alias.version == version.version {
                        Some(alias.name.clone())
                    } else if alias
                        .canary
                        .is_some_and(|canary| canary.version == version.version)
                    {
                        Some(format!("{} (canary)", alias.name))
                    } else {
                        None
                    }
                })
                .collect();
            vec![
                version.version.to_string(),
                version.created_at.clone(),
                if aliases.is_empty() {
                    "-".to_owned()
                } else {
                    aliases.join(", ")
                },
            ]
        })
        .collect();
    output::table(&["VERSION", "DEPLOYED", "ALIASES"], &rows, None);
}

/// JSON text as it reads: a string without its quotes.
fn text(value: &Value) -> String {
    value
        .as_str()
        .map_or_else(|| value.to_string(), str::to_owned)
}

/// A version: its components (from the resolved app, with their stores) and its HTTP routes.
fn show_version(function: &str, version: &Version) {
    println!(
        "Version {} of {function}, deployed {}",
        version.version, version.created_at
    );
    let app = version.app.as_ref();
    let components = app
        .and_then(|app| app.get("components"))
        .and_then(Value::as_object);
    let rows: Vec<Vec<String>> = match components {
        Some(components) => components
            .iter()
            .map(|(id, component)| {
                let stores: Vec<String> = component
                    .get("key_value_stores")
                    .and_then(Value::as_array)
                    .map(|stores| stores.iter().map(text).collect())
                    .unwrap_or_default();
                vec![
                    id.clone(),
                    component.get("source").map_or_else(|| "-".to_owned(), text),
                    if stores.is_empty() {
                        "-".to_owned()
                    } else {
                        stores.join(", ")
                    },
                ]
            })
            .collect(),
        // No resolved app: the digests alone.
        None => match &version.component_digests {
            Value::Object(digests) => digests
                .iter()
                .map(|(id, digest)| vec![id.clone(), text(digest), "-".to_owned()])
                .collect(),
            Value::Array(digests) => digests
                .iter()
                .map(|digest| vec!["-".to_owned(), text(digest), "-".to_owned()])
                .collect(),
            _ => Vec::new(),
        },
    };
    output::table(&["COMPONENT", "DIGEST", "KEY-VALUE STORES"], &rows, None);
    let triggers = app
        .and_then(|app| app.get("http_triggers"))
        .and_then(Value::as_array);
    if let Some(triggers) = triggers.filter(|triggers| !triggers.is_empty()) {
        println!();
        let rows: Vec<Vec<String>> = triggers
            .iter()
            .map(|trigger| {
                let route = match trigger.get("route") {
                    Some(Value::Object(route)) => match route.get("Path") {
                        Some(path) => text(path),
                        None => Value::Object(route.clone()).to_string(),
                    },
                    Some(Value::String(kind)) if kind == "Private" => "(private)".to_owned(),
                    Some(route) => text(route),
                    None => "-".to_owned(),
                };
                vec![
                    route,
                    trigger
                        .get("component")
                        .map_or_else(|| "-".to_owned(), text),
                ]
            })
            .collect();
        output::table(&["ROUTE", "COMPONENT"], &rows, None);
    }
}
