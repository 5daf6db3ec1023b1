//! `nexus sessions`: your login sessions on the coordinator, listed or revoked (to end a login
//! on another machine, say).

use clap::{Args, Subcommand};

use super::output::{self, cell};
use super::session::{Access, explain};

#[derive(Debug, Args)]
pub struct SessionsCommand {
    #[command(flatten)]
    access: Access,

    /// Print the coordinator's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    action: Option<SessionsAction>,
}

#[derive(Debug, Subcommand)]
enum SessionsAction {
    /// Your active sessions, newest first; `*` marks the one this command uses (the default).
    List,
    /// Revoke a session: its tokens stop working at their next request. Revoking your current
    /// one is `nexus logout`.
    Revoke {
        /// The session's id (see `nexus sessions`).
        id: String,
    },
}

impl SessionsCommand {
    /// Carries out the action.
    pub async fn run(self) -> anyhow::Result<()> {
        let client = self.access.client().await?;
        match self.action.unwrap_or(SessionsAction::List) {
            SessionsAction::List => {
                let sessions = client.list_sessions().await.map_err(explain)?;
                if self.json {
                    return output::json(&sessions);
                }
                let rows: Vec<Vec<String>> = sessions
                    .iter()
                    .map(|session| {
                        vec![
                            if session.current { "*" } else { "" }.to_owned(),
                            session.id.clone(),
                            session.created_at.clone(),
                            session.last_used_at.clone(),
                            cell(session.ip.as_deref()),
                            cell(session.user_agent.as_deref()),
                        ]
                    })
                    .collect();
                output::table(
                    &["", "ID", "CREATED", "LAST USED", "FROM", "CLIENT"],
                    &rows,
                    None,
                );
            }
            SessionsAction::Revoke { id } => {
                client.revoke_session(&id).await.map_err(explain)?;
                if !self.json {
                    println!("Session {id} revoked");
                }
            }
        }
        Ok(())
    }
}
