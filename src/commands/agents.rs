//! `nexus agents`: a project's agents, listed, created, shown, suspended, resumed or deleted
//! through the coordinator's API.

use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Subcommand};
use http::Method;
use serde_json::{Value, json};

use super::client::{ApiClient, Coordinator};

/// How long one call may take.
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Args)]
pub struct AgentsCommand {
    #[command(flatten)]
    coordinator: Coordinator,

    /// An access token or API key (`nexus up` prints one).
    #[arg(long, env = "NEXUS_TOKEN", hide_env_values = true, global = true)]
    token: Option<String>,

    /// The project.
    #[arg(long, short, env = "NEXUS_PROJECT", global = true)]
    project: Option<String>,

    /// Print the coordinator's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    action: Option<AgentsAction>,
}

#[derive(Debug, Subcommand)]
enum AgentsAction {
    /// Every agent of the project, in name order (the default).
    List,
    /// Create an agent run by a function's alias.
    Create {
        /// Unique in the project: letters, digits, `-`, `_` or `.`.
        name: String,
        /// The function that runs it.
        #[arg(long)]
        function: String,
        /// The function's alias (default `live`).
        #[arg(long)]
        alias: Option<String>,
    },
    /// Show one agent.
    Get {
        /// The agent's id.
        id: String,
    },
    /// Stop running an agent's messages; it keeps its context.
    Suspend {
        /// The agent's id.
        id: String,
    },
    /// Run a suspended agent's messages again.
    Resume {
        /// The agent's id.
        id: String,
    },
    /// Delete an agent; its name can be used again.
    Delete {
        /// The agent's id.
        id: String,
    },
}

impl AgentsCommand {
    /// Carries out the action.
    pub async fn run(self) -> anyhow::Result<()> {
        let token = self
            .token
            .clone()
            .context("no token: pass --token or set NEXUS_TOKEN (`nexus up` prints one)")?;
        let project =
            (self.project.as_deref()).context("no project: pass --project or set NEXUS_PROJECT")?;
        let client = ApiClient::new(&self.coordinator.url, token);
        let agents = format!("/v1/projects/{project}/agents");
        let one = |id: &str| format!("{agents}/{id}");
        let answer = match &self.action {
            None | Some(AgentsAction::List) => {
                return list(&client, &agents, self.json).await;
            }
            Some(AgentsAction::Create {
                name,
                function,
                alias,
            }) => {
                let body = json!({"name": name, "function": function, "alias": alias});
                client
                    .call(Method::POST, &agents, Some(&body), TIMEOUT)
                    .await?
            }
            Some(AgentsAction::Get { id }) => {
                client.call(Method::GET, &one(id), None, TIMEOUT).await?
            }
            Some(AgentsAction::Suspend { id }) => {
                let path = format!("{}/suspend", one(id));
                client.call(Method::POST, &path, None, TIMEOUT).await?
            }
            Some(AgentsAction::Resume { id }) => {
                let path = format!("{}/resume", one(id));
                client.call(Method::POST, &path, None, TIMEOUT).await?
            }
            Some(AgentsAction::Delete { id }) => {
                client.call(Method::DELETE, &one(id), None, TIMEOUT).await?;
                if !self.json {
                    println!("Agent {id} deleted");
                }
                return Ok(());
            }
        };
        if self.json {
            println!("{}", serde_json::to_string_pretty(&answer)?);
        } else {
            print_table(std::slice::from_ref(&answer));
        }
        Ok(())
    }
}

/// Every page of the project's agents: one JSON array, or one table.
async fn list(client: &ApiClient, agents: &str, json: bool) -> anyhow::Result<()> {
    let mut all = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let path = match &after {
            Some(after) => format!("{agents}?after={after}"),
            None => agents.to_owned(),
        };
        let page = client.call(Method::GET, &path, None, TIMEOUT).await?;
        all.extend(page["agents"].as_array().cloned().unwrap_or_default());
        match page["next"].as_str() {
            Some(next) => after = Some(next.to_owned()),
            None => break,
        }
    }
    if json {
        println!("{}", serde_json::to_string_pretty(&all)?);
    } else {
        print_table(&all);
    }
    Ok(())
}

fn print_table(agents: &[Value]) {
    let text = |agent: &Value, field: &str| agent[field].as_str().unwrap_or("-").to_owned();
    println!(
        "{:<36}  {:<24}  {:<10}  {:<10}  UPDATED",
        "ID", "NAME", "ALIAS", "STATE"
    );
    for agent in agents {
        println!(
            "{:<36}  {:<24}  {:<10}  {:<10}  {}",
            text(agent, "id"),
            text(agent, "name"),
            text(agent, "alias"),
            text(agent, "state"),
            text(agent, "updated_at"),
        );
    }
}
