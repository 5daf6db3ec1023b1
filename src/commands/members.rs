//! `nexus members`: a project's members, listed; registered users added with a role, their
//! role changed, or removed.

use anyhow::anyhow;
use clap::{Args, Subcommand};
use nexus_client::{Client, Role};

use super::output;
use super::session::{Access, ProjectArg, explain};

#[derive(Debug, Args)]
pub struct MembersCommand {
    #[command(flatten)]
    access: Access,

    #[command(flatten)]
    project: ProjectArg,

    /// Print the coordinator's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    action: Option<MembersAction>,
}

#[derive(Debug, Subcommand)]
enum MembersAction {
    /// Every member of the project, with their role (the default).
    List,
    /// Add a registered user to the project (owners and admins; only owners grant `owner`).
    Add {
        /// The user's email: they must have an account on this coordinator.
        email: String,
        /// owner (everything), admin (members, API keys, settings), developer (deploys,
        /// invokes, agents, schedules) or viewer (reads).
        #[arg(value_parser = ["owner", "admin", "developer", "viewer"])]
        role: String,
    },
    /// Change a member's role (owners and admins; only owners touch owners).
    Set {
        /// The member's user id (see `nexus members`), or their email.
        member: String,
        /// owner, admin, developer or viewer.
        #[arg(value_parser = ["owner", "admin", "developer", "viewer"])]
        role: String,
    },
    /// Remove a member from the project (owners and admins; only owners remove owners).
    Remove {
        /// The member's user id (see `nexus members`), or their email.
        member: String,
    },
}

impl MembersCommand {
    /// Carries out the action.
    pub async fn run(self) -> anyhow::Result<()> {
        let project = self.project.name()?.to_owned();
        let client = self.access.client().await?;
        match self.action.unwrap_or(MembersAction::List) {
            MembersAction::List => {
                let members = client.list_members(&project).await.map_err(explain)?;
                if self.json {
                    return output::json(&members);
                }
                let rows: Vec<Vec<String>> = members
                    .iter()
                    .map(|member| {
                        vec![
                            member.email.clone(),
                            member.display_name.clone(),
                            member.role.to_string(),
                            member.user_id.clone(),
                        ]
                    })
                    .collect();
                output::table(&["EMAIL", "NAME", "ROLE", "USER ID"], &rows, None);
            }
            MembersAction::Add { email, role } => {
                let added = client
                    .add_member(&project, &email, &Role::from(role.as_str()))
                    .await
                    .map_err(explain)?;
                if self.json {
                    return output::json(&added);
                }
                println!(
                    "Added {email} to {project} as {} (user id {})",
                    added.role, added.user_id
                );
            }
            MembersAction::Set { member, role } => {
                let user_id = user_id(&client, &project, &member).await?;
                client
                    .set_member_role(&project, &user_id, &Role::from(role.as_str()))
                    .await
                    .map_err(explain)?;
                if !self.json {
                    println!("{member} is now {role} in {project}");
                }
            }
            MembersAction::Remove { member } => {
                let user_id = user_id(&client, &project, &member).await?;
                client
                    .remove_member(&project, &user_id)
                    .await
                    .map_err(explain)?;
                if !self.json {
                    println!("{member} removed from {project}");
                }
            }
        }
        Ok(())
    }
}

/// The user id of `member`: itself, or, for an email, the id of the member with that email.
async fn user_id(client: &Client, project: &str, member: &str) -> anyhow::Result<String> {
    if !member.contains('@') {
        return Ok(member.to_owned());
    }
    let members = client.list_members(project).await.map_err(explain)?;
    members
        .into_iter()
        .find(|found| found.email.eq_ignore_ascii_case(member))
        .map(|found| found.user_id)
        .ok_or_else(|| {
            anyhow!("{member} is not a member of {project}\n  hint: list them with `nexus members`")
        })
}
