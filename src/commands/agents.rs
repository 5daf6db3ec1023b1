//! `nexus agents`: a project's agents, listed, created, shown, suspended, resumed or deleted
//! through the coordinator's API.

use clap::{Args, Subcommand};
use nexus_client::{Agent, NewAgent};

use super::output;
use super::session::{Access, ProjectArg, explain};

#[derive(Debug, Args)]
pub struct AgentsCommand {
    #[command(flatten)]
    access: Access,

    #[command(flatten)]
    project: ProjectArg,

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
        let project = self.project.name()?.to_owned();
        let client = self.access.client().await?;
        let agent = match self.action.unwrap_or(AgentsAction::List) {
            AgentsAction::List => {
                let agents = client.list_all_agents(&project).await.map_err(explain)?;
                if self.json {
                    return output::json(&agents);
                }
                print_table(&agents);
                return Ok(());
            }
            AgentsAction::Create {
                name,
                function,
                alias,
            } => {
                let new = NewAgent {
                    name,
                    function,
                    alias,
                    ..NewAgent::default()
                };
                client.create_agent(&project, &new).await
            }
            AgentsAction::Get { id } => client.get_agent(&project, &id).await,
            AgentsAction::Suspend { id } => client.suspend_agent(&project, &id).await,
            AgentsAction::Resume { id } => client.resume_agent(&project, &id).await,
            AgentsAction::Delete { id } => {
                client.delete_agent(&project, &id).await.map_err(explain)?;
                if !self.json {
                    println!("Agent {id} deleted");
                }
                return Ok(());
            }
        }
        .map_err(explain)?;
        if self.json {
            return output::json(&agent);
        }
        print_table(std::slice::from_ref(&agent));
        Ok(())
    }
}

fn print_table(agents: &[Agent]) {
    let rows: Vec<Vec<String>> = agents
        .iter()
        .map(|agent| {
            vec![
                agent.id.clone(),
                agent.name.clone(),
                agent.alias.clone(),
                agent.state.to_string(),
                agent.updated_at.clone(),
            ]
        })
        .collect();
    output::table(
        &["ID", "NAME", "ALIAS", "STATE", "UPDATED"],
        &rows,
        Some("STATE"),
    );
}
