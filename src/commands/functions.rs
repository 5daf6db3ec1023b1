//! `nexus functions`: a project's functions, listed and shown with their versions and aliases;
//! their settings changed (priority, nodes, placement, clouds, retries of asynchronous
//! invocations, nodes kept warm); their aliases moved, split with a canary, rolled back, or
//! rolled out in judged steps.

use anyhow::anyhow;
use clap::{Args, Subcommand};
use nexus_client::{Alias, Canary, CloudTargets, Function, FunctionChange, Version};
use serde_json::Value;

use super::output::{self, cell};
use super::session::{Access, ProjectArg, explain};

mod rollouts;
mod settings;

use self::rollouts::RolloutArgs;
use self::settings::SetArgs;

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
    /// Roll a version out behind an alias in steps, each judged against the version the alias
    /// had (error rate, p99 latency): rolled back by itself on a breach, on all the alias's
    /// requests once every step was healthy.
    Rollout(Box<RolloutArgs>),
    /// A function's rollouts, newest first: where each stands, and why it ended.
    Rollouts {
        /// The function.
        function: String,
    },
    /// Stop a running rollout; its alias goes back to the version it had.
    CancelRollout {
        /// The function.
        function: String,
        /// The rollout's id (see `nexus functions rollouts`).
        id: String,
    },
}

/// The settings `nexus functions set` can change.
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
            FunctionsAction::Rollout(args) => args.run(&client, &project, json).await?,
            FunctionsAction::Rollouts { function } => {
                rollouts::list(&client, &project, &function, json).await?;
            }
            FunctionsAction::CancelRollout { function, id } => {
                rollouts::cancel(&client, &project, &function, &id, json).await?;
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
        "  priority {}, placement {}, kept warm on {} node(s)",
        function.priority, function.placement, function.min_warm
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
