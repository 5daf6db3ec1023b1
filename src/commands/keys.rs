//! `nexus keys`: a project's API keys (`nxk_…`), listed, created (their secret shown once) or
//! revoked. Managed by the project's owners and admins, logged in as themselves.

use clap::{Args, Subcommand};
use nexus_client::Role;

use super::output::{self, cell};
use super::session::{Access, ProjectArg, explain};

#[derive(Debug, Args)]
pub struct KeysCommand {
    #[command(flatten)]
    access: Access,

    #[command(flatten)]
    project: ProjectArg,

    /// Print the coordinator's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    action: Option<KeysAction>,
}

#[derive(Debug, Subcommand)]
enum KeysAction {
    /// The project's API keys, revoked ones included, without their secrets (the default).
    List,
    /// Create an API key and print its secret, on standard output by itself: the only time it
    /// is shown. Use it as `--token` or `NEXUS_TOKEN`, or as a bearer token.
    Create {
        /// A label: the machine or pipeline that uses it, say.
        name: String,
        /// What it may do: admin (members, API keys, settings), developer (deploys, invokes,
        /// agents, schedules) or viewer (reads).
        #[arg(value_parser = ["admin", "developer", "viewer"])]
        role: String,
    },
    /// Revoke an API key: it authenticates nothing from the next request on.
    Revoke {
        /// The key's id (see `nexus keys`).
        id: String,
    },
}

impl KeysCommand {
    /// Carries out the action.
    pub async fn run(self) -> anyhow::Result<()> {
        let project = self.project.name()?.to_owned();
        let client = self.access.client().await?;
        match self.action.unwrap_or(KeysAction::List) {
            KeysAction::List => {
                let keys = client.list_api_keys(&project).await.map_err(explain)?;
                if self.json {
                    return output::json(&keys);
                }
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|key| {
                        vec![
                            key.id.clone(),
                            key.name.clone(),
                            format!("{}…", key.prefix),
                            key.role.to_string(),
                            if key.revoked { "revoked" } else { "active" }.to_owned(),
                            key.created_at.clone(),
                            cell(key.last_used_at.as_deref()),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "ID",
                        "NAME",
                        "PREFIX",
                        "ROLE",
                        "STATE",
                        "CREATED",
                        "LAST USED",
                    ],
                    &rows,
                    Some("STATE"),
                );
            }
            KeysAction::Create { name, role } => {
                let created = client
                    .create_api_key(&project, &name, &Role::from(role.as_str()))
                    .await
                    .map_err(explain)?;
                if self.json {
                    return output::json(&created);
                }
                // The secret alone on standard output, so that `$(nexus keys create …)` is it.
                eprintln!(
                    "API key {} created in {project} as {} (id {})",
                    created.key.name, created.key.role, created.key.id
                );
                eprintln!(
                    "{}",
                    output::paint(
                        "Its secret is shown only now: keep it somewhere safe.",
                        output::Tone::Bad
                    )
                );
                println!("{}", created.secret);
            }
            KeysAction::Revoke { id } => {
                client
                    .revoke_api_key(&project, &id)
                    .await
                    .map_err(explain)?;
                if !self.json {
                    println!("API key {id} revoked");
                }
            }
        }
        Ok(())
    }
}
