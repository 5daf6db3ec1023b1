//! `nexus audit verify`: checks the coordinator's audit log, row by row, against its hash
//! chain, and names the first row that was edited or whose predecessor was removed.

use anyhow::{Context as _, bail};
use clap::{Args, Subcommand};
use nexus_store::Store;

/// `nexus audit …`
#[derive(Debug, Args)]
pub struct AuditCommand {
    #[command(subcommand)]
    command: AuditSubcommand,
}

#[derive(Debug, Subcommand)]
enum AuditSubcommand {
    /// Check that no audit row was changed or removed since it was written.
    Verify {
        /// The coordinator's database: `sqlite://PATH`, a file path, or `postgres://…`.
        #[arg(long, env = "DATABASE_URL", default_value = nexus_store::DEFAULT_DATABASE_URL)]
        database_url: String,
    },
}

impl AuditCommand {
    /// Runs the subcommand; a broken chain is an error, so the exit status says it too.
    pub async fn run(self) -> anyhow::Result<()> {
        let AuditSubcommand::Verify { database_url } = self.command;
        let store = Store::connect(&database_url)
            .await
            .with_context(|| format!("cannot open the database at {database_url}"))?;
        let verification = store
            .with_retry(|tx| Box::pin(async move { tx.verify_audit_chain().await }))
            .await
            .context("cannot read the audit log")?;
        store.close().await;
        match verification.first_broken {
            None => {
                println!(
                    "audit log intact: {} rows verified",
                    verification.rows_checked
                );
                Ok(())
            }
            Some(broken) => bail!(
                "audit log broken at row {}: {} ({} rows read)",
                broken.seq,
                broken.reason,
                verification.rows_checked
            ),
        }
    }
}
