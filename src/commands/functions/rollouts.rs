//! `nexus functions rollout`, `rollouts` and `cancel-rollout`: a version rolled out behind an
//! alias in steps, judged by the coordinator against the version the alias had.

use std::time::Duration;

use clap::Args;
use nexus_client::{Client, NewRollout, Rollout};

use crate::commands::output::{self, cell};
use crate::commands::session::explain;
use nexus::units::parse_duration;

#[derive(Debug, Args)]
pub(super) struct RolloutArgs {
    /// The function.
    function: String,
    /// The version to roll out.
    version: i64,
    /// The alias moved.
    #[arg(long, default_value = "live")]
    alias: String,
    /// The new version's share of requests at each step, in percent: rising, the last 100
    /// (default 1,10,50,100).
    #[arg(long, value_delimiter = ',', value_name = "PERCENT,...")]
    steps: Vec<i32>,
    /// How long each step holds at least (e.g. 90s, 5m; default 60s).
    #[arg(long, value_parser = parse_duration)]
    step: Option<Duration>,
    /// Calls of the new version each step needs before it is judged (default 50).
    #[arg(long, value_name = "N")]
    min_requests: Option<u64>,
    /// Roll back when the new version's error rate (5xx) is above the old one's by more than
    /// this share (default 0.05).
    #[arg(long, value_name = "SHARE")]
    max_error_rate_increase: Option<f64>,
    /// Roll back when the new version's p99 latency is above the old one's times this, plus
    /// 10 ms (default 2).
    #[arg(long, value_name = "RATIO")]
    max_p99_ratio: Option<f64>,
}

impl RolloutArgs {
    pub(super) async fn run(
        self,
        client: &Client,
        project: &str,
        json: bool,
    ) -> anyhow::Result<()> {
        let rollout = NewRollout {
            version: self.version,
            alias: Some(self.alias),
            steps: (!self.steps.is_empty()).then_some(self.steps),
            step: self.step,
            min_requests: self.min_requests,
            max_error_rate_increase: self.max_error_rate_increase,
            max_p99_ratio: self.max_p99_ratio,
        };
        let started = client
            .start_rollout(project, &self.function, &rollout)
            .await
            .map_err(explain)?;
        if json {
            return output::json(&started);
        }
        println!(
            "Rolling version {} of {} out behind {}: {}% now, steps {}; it rolls back by itself on a breach",
            started.to_version,
            started.function,
            started.alias,
            started.weight,
            steps(&started)
        );
        println!(
            "  follow it with: nexus functions rollouts {}",
            started.function
        );
        Ok(())
    }
}

fn steps(rollout: &Rollout) -> String {
    rollout
        .steps
        .iter()
        .map(|step| format!("{step}%"))
        .collect::<Vec<_>>()
        .join(" → ")
}

/// Prints the function's rollouts, newest first.
pub(super) async fn list(
    client: &Client,
    project: &str,
    function: &str,
    json: bool,
) -> anyhow::Result<()> {
    let rollouts = client
        .list_rollouts(project, function)
        .await
        .map_err(explain)?;
    if json {
        return output::json(&rollouts);
    }
    let rows: Vec<Vec<String>> = rollouts
        .iter()
        .map(|rollout| {
            vec![
                rollout.id.clone(),
                rollout.alias.clone(),
                format!("{} → {}", rollout.from_version, rollout.to_version),
                rollout.status.clone(),
                format!("{}%", rollout.weight),
                steps(rollout),
                cell(rollout.reason.clone()),
            ]
        })
        .collect();
    output::table(
        &[
            "ID", "ALIAS", "VERSIONS", "STATUS", "NOW", "STEPS", "REASON",
        ],
        &rows,
        Some("STATUS"),
    );
    Ok(())
}

/// Stops a running rollout.
pub(super) async fn cancel(
    client: &Client,
    project: &str,
    function: &str,
    id: &str,
    json: bool,
) -> anyhow::Result<()> {
    let cancelled = client
        .cancel_rollout(project, function, id)
        .await
        .map_err(explain)?;
    if json {
        return output::json(&cancelled);
    }
    println!(
        "Rollout {id} cancelled; alias {} of {function} serves version {} again",
        cancelled.alias, cancelled.from_version
    );
    Ok(())
}
