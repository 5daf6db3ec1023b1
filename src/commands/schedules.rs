//! `nexus schedules`: a project's schedules, which invoke a function's alias (or message an
//! agent) asynchronously on a cron expression or once; listed, created, shown or deleted.

use std::time::Duration;

use anyhow::{Context as _, anyhow};
use clap::{Args, Subcommand};
use nexus_client::{Client, NewSchedule, Schedule, ScheduleTime};

use super::output::{self, cell};
use super::session::{Access, ProjectArg, explain};

#[derive(Debug, Args)]
pub struct SchedulesCommand {
    #[command(flatten)]
    access: Access,

    #[command(flatten)]
    project: ProjectArg,

    /// Print the coordinator's JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    action: Option<SchedulesAction>,
}

#[derive(Debug, Subcommand)]
enum SchedulesAction {
    /// The project's schedules, in name order (the default).
    List,
    /// Create a schedule: each firing is an asynchronous invocation, retried like the
    /// function's others (see `nexus invocations`).
    Create(Box<CreateArgs>),
    /// Show one schedule.
    Get {
        /// The schedule's id or name (see `nexus schedules`).
        schedule: String,
    },
    /// Delete a schedule: it fires no more (invocations already queued still run).
    Delete {
        /// The schedule's id or name (see `nexus schedules`).
        schedule: String,
    },
}

#[derive(Debug, Args)]
struct CreateArgs {
    /// Unique in the project: 1 to 128 letters, digits, `-`, `_` or `.`.
    name: String,

    /// The function it invokes.
    #[arg(long)]
    function: String,

    /// The function's alias (default `live`); the version is picked at each firing.
    #[arg(long)]
    alias: Option<String>,

    /// An agent of the project (its id): each firing is a message to it instead.
    #[arg(long)]
    agent: Option<String>,

    #[command(flatten)]
    when: When,

    /// The path and query the function sees (default `/`).
    #[arg(long)]
    path: Option<String>,

    /// The method the function sees (default POST).
    #[arg(long, short = 'X')]
    method: Option<String>,

    /// The body the function sees: text, or `@file` for a (UTF-8) file's text.
    #[arg(long, short = 'd')]
    data: Option<String>,
}

/// When a schedule fires: exactly one of the three.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
struct When {
    /// At every tick of this cron expression, in UTC: five fields (`0 3 * * *`: 03:00 every
    /// day), or six with seconds first (`*/30 * * * * *`).
    #[arg(long, value_name = "EXPR")]
    cron: Option<String>,

    /// Once, this many seconds from now (at most a year).
    #[arg(long, value_name = "SECS")]
    after: Option<u64>,

    /// Once, at this time (RFC 3339: `2030-01-01T09:00:00Z`).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
}

impl When {
    fn time(self) -> anyhow::Result<ScheduleTime> {
        match (self.cron, self.after, self.at) {
            (Some(cron), None, None) => Ok(ScheduleTime::Cron(cron)),
            (None, Some(after), None) => Ok(ScheduleTime::After(Duration::from_secs(after))),
            (None, None, Some(at)) => Ok(ScheduleTime::At(at)),
            _ => Err(anyhow!("give exactly one of --cron, --after and --at")),
        }
    }
}

impl SchedulesCommand {
    /// Carries out the action.
    pub async fn run(self) -> anyhow::Result<()> {
        let project = self.project.name()?.to_owned();
        let client = self.access.client().await?;
        match self.action.unwrap_or(SchedulesAction::List) {
            SchedulesAction::List => {
                let schedules = client.list_schedules(&project).await.map_err(explain)?;
                if self.json {
                    return output::json(&schedules);
                }
                print_table(&schedules);
            }
            SchedulesAction::Create(args) => {
                let body = match args.data {
                    Some(file) if file.starts_with('@') => Some(
                        std::fs::read_to_string(&file[1..])
                            .with_context(|| format!("cannot read {}", &file[1..]))?,
                    ),
                    other => other,
                };
                let new = NewSchedule {
                    name: args.name,
                    function: args.function,
                    alias: args.alias,
                    agent: args.agent,
                    when: args.when.time()?,
                    method: args.method.map(|method| method.to_uppercase()),
                    path: args.path,
                    body,
                };
                let schedule = client
                    .create_schedule(&project, &new)
                    .await
                    .map_err(explain)?;
                if self.json {
                    return output::json(&schedule);
                }
                println!(
                    "Schedule {} created ({}); next firing {}",
                    schedule.name,
                    schedule.id,
                    cell(schedule.next_fire_at.as_deref())
                );
            }
            SchedulesAction::Get { schedule } => {
                let id = schedule_id(&client, &project, &schedule).await?;
                let schedule = client.get_schedule(&project, &id).await.map_err(explain)?;
                if self.json {
                    return output::json(&schedule);
                }
                show_one(&schedule);
            }
            SchedulesAction::Delete { schedule } => {
                let id = schedule_id(&client, &project, &schedule).await?;
                client
                    .delete_schedule(&project, &id)
                    .await
                    .map_err(explain)?;
                if !self.json {
                    println!("Schedule {schedule} deleted");
                }
            }
        }
        Ok(())
    }
}

/// The id of the schedule `schedule` names: the schedule with that id, or else that name; as
/// given when neither exists (the coordinator then says it is not found).
async fn schedule_id(client: &Client, project: &str, schedule: &str) -> anyhow::Result<String> {
    let schedules = client.list_schedules(project).await.map_err(explain)?;
    let found = schedules
        .iter()
        .find(|found| found.id == schedule)
        .or_else(|| schedules.iter().find(|found| found.name == schedule));
    Ok(found.map_or_else(|| schedule.to_owned(), |found| found.id.clone()))
}

/// What a schedule invokes: `function@alias`, or `function@alias → agent`.
fn target(schedule: &Schedule) -> String {
    match &schedule.agent {
        Some(agent) => format!("{}@{} → agent {agent}", schedule.function, schedule.alias),
        None => format!("{}@{}", schedule.function, schedule.alias),
    }
}

/// When a schedule fires: its cron expression, or `once`.
fn when(schedule: &Schedule) -> String {
    schedule.cron.clone().unwrap_or_else(|| "once".to_owned())
}

fn print_table(schedules: &[Schedule]) {
    let rows: Vec<Vec<String>> = schedules
        .iter()
        .map(|schedule| {
            vec![
                schedule.name.clone(),
                target(schedule),
                when(schedule),
                cell(schedule.next_fire_at.as_deref()),
                cell(schedule.last_fired_at.as_deref()),
                schedule.fired.to_string(),
                schedule.id.clone(),
            ]
        })
        .collect();
    output::table(
        &["NAME", "INVOKES", "WHEN", "NEXT", "LAST", "FIRED", "ID"],
        &rows,
        None,
    );
}

fn show_one(schedule: &Schedule) {
    println!("Schedule {} ({})", schedule.name, schedule.id);
    println!("  invokes:   {}", target(schedule));
    println!("  request:   {} {}", schedule.method, schedule.path);
    println!("  when:      {}", when(schedule));
    println!("  next:      {}", cell(schedule.next_fire_at.as_deref()));
    println!(
        "  last:      {} ({} fired so far)",
        cell(schedule.last_fired_at.as_deref()),
        schedule.fired
    );
    println!("  created:   {}", schedule.created_at);
}
