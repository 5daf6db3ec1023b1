//! `nexus account`: your own data at a coordinator: exported as JSON, or erased.

use anyhow::bail;
use clap::{Args, Subcommand};

use super::output;
use super::session::{Access, Credentials, explain};

#[derive(Debug, Args)]
pub struct AccountCommand {
    #[command(flatten)]
    access: Access,

    #[command(subcommand)]
    action: AccountAction,
}

#[derive(Debug, Subcommand)]
enum AccountAction {
    /// Everything the coordinator keeps about you (account, sessions, memberships, your audit
    /// entries), as JSON.
    Export,
    /// Erase your account: sessions and memberships end, your email is freed. Refused while
    /// you are a project's only owner.
    Delete {
        /// Confirms the erasure; it cannot be undone.
        #[arg(long)]
        yes: bool,
    },
}

impl AccountCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let client = self.access.client().await?;
        match self.action {
            AccountAction::Export => output::json(&client.export_me().await.map_err(explain)?),
            AccountAction::Delete { yes } => {
                if !yes {
                    bail!(
                        "erasing your account cannot be undone\n  hint: run `nexus account export` first, then `nexus account delete --yes`"
                    );
                }
                client.erase_me().await.map_err(explain)?;
                let mut credentials = Credentials::load()?;
                if credentials.remove(self.access.url()).is_some() {
                    credentials.save()?;
                }
                println!("Your account at {} is erased", self.access.url());
                Ok(())
            }
        }
    }
}
