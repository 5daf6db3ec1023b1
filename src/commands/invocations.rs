//! `nexus invocations`: a project's asynchronous invocations: listed, shown with their
//! attempts and output, and the dead-letter list redriven or purged.

use clap::{Args, Subcommand};
use nexus_client::{DeadLetters, Invocation, InvocationFilter, InvocationStatus};

use super::output::{self, cell};
use super::session::{Access, ProjectArg, explain};

#[derive(Debug, Args)]
pub struct InvocationsCommand {
    #[command(flatten)]
    access: Access,

    #[command(flatten)]
    project: ProjectArg,

    /// Print the coordinator's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    action: Option<InvocationsAction>,
}

#[derive(Debug, Subcommand)]
enum InvocationsAction {
    /// The project's invocations, newest first (the default).
    List {
        /// Only those in this state: queued, running, succeeded, failed or dead.
        #[arg(long)]
        status: Option<String>,
        /// Only those of this function.
        #[arg(long)]
        function: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// One invocation, with each attempt and what its guest wrote.
    Get {
        /// The invocation's id.
        id: String,
    },
    /// The dead-letter list: invocations that used up their attempts or their age.
    Dead {
        /// Only those of this function.
        #[arg(long)]
        function: Option<String>,
    },
    /// Queue dead invocations again, with their attempts reset.
    Redrive {
        /// Only those of this function.
        #[arg(long)]
        function: Option<String>,
        /// Only these (all dead ones when none is named).
        ids: Vec<String>,
    },
    /// Delete dead invocations.
    Purge {
        /// Only those of this function.
        #[arg(long)]
        function: Option<String>,
        /// Only these (all dead ones when none is named).
        ids: Vec<String>,
    },
}

impl InvocationsCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let project = self.project.name()?.to_owned();
        let client = self.access.client().await?;
        let json = self.json;
        let action = self.action.unwrap_or(InvocationsAction::List {
            status: None,
            function: None,
            limit: 50,
        });
        let which = |function: Option<String>, ids: Vec<String>| DeadLetters {
            function,
            ids: (!ids.is_empty()).then_some(ids),
        };
        match action {
            InvocationsAction::List {
                status,
                function,
                limit,
            } => {
                let filter = InvocationFilter {
                    status: status.as_deref().map(InvocationStatus::from),
                    function,
                    before: None,
                    limit: Some(limit),
                };
                let page = client
                    .list_invocations(&project, &filter)
                    .await
                    .map_err(explain)?;
                show_list(&page.invocations, json)
            }
            InvocationsAction::Dead { function } => {
                let filter = InvocationFilter {
                    function,
                    ..InvocationFilter::default()
                };
                let page = client
                    .list_dead_letters(&project, &filter)
                    .await
                    .map_err(explain)?;
                show_list(&page.invocations, json)
            }
            InvocationsAction::Get { id } => {
                let invocation = client.get_invocation(&id).await.map_err(explain)?;
                if json {
                    return output::json(&invocation);
                }
                show_one(&invocation);
                Ok(())
            }
            InvocationsAction::Redrive { function, ids } => {
                let redriven = client
                    .redrive_dead_letters(&project, &which(function, ids))
                    .await
                    .map_err(explain)?;
                if json {
                    return output::json(&serde_json::json!({ "redriven": redriven }));
                }
                println!("Queued again: {}", redriven.len());
                Ok(())
            }
            InvocationsAction::Purge { function, ids } => {
                let purged = client
                    .purge_dead_letters(&project, &which(function, ids))
                    .await
                    .map_err(explain)?;
                if json {
                    return output::json(&serde_json::json!({ "purged": purged }));
                }
                println!("Deleted: {purged}");
                Ok(())
            }
        }
    }
}

fn show_list(invocations: &[Invocation], json: bool) -> anyhow::Result<()> {
    if json {
        return output::json(invocations);
    }
    let rows: Vec<Vec<String>> = invocations
        .iter()
        .map(|invocation| {
            vec![
                invocation.id.clone(),
                invocation.function.clone(),
                invocation.version.to_string(),
                invocation.status.to_string(),
                format!("{}/{}", invocation.attempts, invocation.max_attempts),
                invocation.created_at.clone(),
                cell(invocation.error.as_deref()),
            ]
        })
        .collect();
    output::table(
        &[
            "ID", "FUNCTION", "VERSION", "STATUS", "ATTEMPTS", "CREATED", "ERROR",
        ],
        &rows,
        Some("STATUS"),
    );
    Ok(())
}

fn show_one(invocation: &Invocation) {
    let status = invocation.status.to_string();
    println!("Invocation {}", invocation.id);
    println!(
        "  {} version {}: {} after {} of {} attempts",
        invocation.function,
        invocation.version,
        output::paint(&status, output::tone_of(&status)),
        invocation.attempts,
        invocation.max_attempts
    );
    if let Some(error) = &invocation.error {
        println!("  error: {error}");
    }
    for attempt in invocation.attempt_log.iter().flatten() {
        println!(
            "  attempt {} on {}: {} {} ({} ms)",
            attempt.attempt,
            cell(attempt.node.as_deref()),
            attempt.status,
            cell(attempt.http_status),
            cell(attempt.duration_ms)
        );
        for (stream, text) in [("stdout", &attempt.stdout), ("stderr", &attempt.stderr)] {
            for line in text.iter().flat_map(|text| text.lines()) {
                println!("    {} {line}", output::paint(stream, output::Tone::Quiet));
            }
        }
        if attempt.output_truncated {
            println!("    (output cut at the runtime's cap)");
        }
    }
}
