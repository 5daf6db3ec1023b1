//! `nexus projects`: the projects the caller is a member of; create and delete them.

use clap::{Args, Subcommand};

use super::output::{self, cell};
use super::session::{Access, explain};

#[derive(Debug, Args)]
pub struct ProjectsCommand {
    #[command(flatten)]
    access: Access,

    /// Print the coordinator's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    action: Option<ProjectsAction>,
}

#[derive(Debug, Subcommand)]
enum ProjectsAction {
    /// Every project you are a member of, with your role (the default).
    List,
    /// Create a project; you become its owner.
    Create {
        /// Its name: lowercase letters, digits and `-`; it appears in URLs.
        name: String,
        /// A name for people.
        #[arg(long)]
        display_name: Option<String>,
    },
    /// Delete a project and everything in it (owners only).
    Delete {
        /// The project.
        name: String,
    },
}

impl ProjectsCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let client = self.access.client().await?;
        match self.action.unwrap_or(ProjectsAction::List) {
            ProjectsAction::List => {
                let projects = client.list_projects().await.map_err(explain)?;
                if self.json {
                    return output::json(&projects);
                }
                let rows: Vec<Vec<String>> = projects
                    .iter()
                    .map(|project| {
                        vec![
                            project.name.clone(),
                            project.display_name.clone(),
                            cell(Some(&project.role)),
                            project.id.clone(),
                        ]
                    })
                    .collect();
                output::table(&["NAME", "DISPLAY NAME", "ROLE", "ID"], &rows, None);
            }
            ProjectsAction::Create { name, display_name } => {
                let project = client
                    .create_project(&name, display_name.as_deref())
                    .await
                    .map_err(explain)?;
                if self.json {
                    return output::json(&project);
                }
                println!("Project {} created ({})", project.name, project.id);
            }
            ProjectsAction::Delete { name } => {
                client.delete_project(&name).await.map_err(explain)?;
                if !self.json {
                    println!("Project {name} deleted");
                }
            }
        }
        Ok(())
    }
}
