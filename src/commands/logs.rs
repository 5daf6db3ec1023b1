//! `nexus logs`: what a project's functions print, and their invocations as they finish, from
//! the coordinator's event stream: what it still keeps, then (`--follow`) what comes.

use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use futures::StreamExt as _;
use nexus_client::{EventFilter, EventFrame, EventKind};

use super::output::{self, Tone};
use super::session::{Access, ProjectArg, explain};

/// Without `--follow`, the kept events have all arrived once none came for this long.
const CAUGHT_UP: Duration = Duration::from_millis(500);

#[derive(Debug, Args)]
pub struct LogsCommand {
    #[command(flatten)]
    access: Access,

    #[command(flatten)]
    project: ProjectArg,

    /// Only this function's.
    function: Option<String>,

    /// Keep printing as invocations run.
    #[arg(long, short)]
    follow: bool,

    /// Only guest output, not invocation events.
    #[arg(long)]
    output_only: bool,

    /// One JSON object per line.
    #[arg(long)]
    json: bool,
}

impl LogsCommand {
    pub async fn run(self) -> anyhow::Result<()> {
        let project = self.project.name()?.to_owned();
        let client = self.access.client().await?;
        let mut types = vec!["guest_log".to_owned()];
        if !self.output_only {
            types.extend(["invocation_finished", "invocation_dead"].map(str::to_owned));
        }
        let filter = EventFilter {
            types,
            function: self.function.clone(),
            agent: None,
            after: Some("0-0".to_owned()),
        };
        let mut events = client.events(&project, &filter).await.map_err(explain)?;
        loop {
            let next = if self.follow {
                events.next().await
            } else {
                match tokio::time::timeout(CAUGHT_UP, events.next()).await {
                    Ok(next) => next,
                    Err(_) => return Ok(()),
                }
            };
            match next {
                None => return Err(anyhow!("the coordinator closed the event stream")),
                Some(Err(error)) => return Err(explain(error)),
                Some(Ok(EventFrame::Missed { message })) => {
                    eprintln!("{}", output::paint(&format!("({message})"), Tone::Quiet));
                }
                Some(Ok(EventFrame::Event(event))) => self.print(&event.at, &event.kind),
            }
        }
    }

    fn print(&self, at: &str, kind: &EventKind) {
        let time = at.get(11..23).unwrap_or(at);
        match kind {
            EventKind::GuestLog(log) => {
                if self.json {
                    println!(
                        "{}",
                        serde_json::json!({"at": at, "type": "guest_log", "function": log.function,
                            "version": log.version, "stream": log.stream.to_string(),
                            "text": log.text, "truncated": log.truncated,
                            "request_id": log.request_id, "invocation": log.invocation})
                    );
                    return;
                }
                let stream = log.stream.to_string();
                for line in log.text.lines() {
                    println!(
                        "{} {} {} {line}",
                        output::paint(time, Tone::Quiet),
                        log.function,
                        output::paint(
                            &stream,
                            if stream == "stderr" {
                                Tone::Bad
                            } else {
                                Tone::Quiet
                            }
                        ),
                    );
                }
            }
            EventKind::InvocationFinished(finished) => {
                if self.json {
                    println!(
                        "{}",
                        serde_json::json!({"at": at, "type": "invocation_finished",
                            "function": finished.function, "status": finished.status,
                            "version": finished.version, "invocation": finished.invocation})
                    );
                    return;
                }
                let status = finished.status.to_string();
                let took = finished
                    .duration_us
                    .map(|us| format!(" in {:.1} ms", us as f64 / 1000.0))
                    .unwrap_or_default();
                println!(
                    "{} {} {}{took}",
                    output::paint(time, Tone::Quiet),
                    finished.function,
                    output::paint(&status, output::tone_of(&status)),
                );
            }
            EventKind::InvocationDead(dead) => {
                if self.json {
                    println!(
                        "{}",
                        serde_json::json!({"at": at, "type": "invocation_dead",
                            "function": dead.function, "invocation": dead.invocation,
                            "error": dead.error})
                    );
                    return;
                }
                println!(
                    "{} {} {} {}: {}",
                    output::paint(time, Tone::Quiet),
                    dead.function,
                    output::paint("dead", Tone::Bad),
                    dead.invocation,
                    dead.error
                );
            }
            _ => {}
        }
    }
}
