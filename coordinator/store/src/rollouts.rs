//! Rollouts: a version moved behind an alias in steps. The coordinator judges each step; the
//! store keeps where each rollout stands and moves it on only by compare-and-set on its step,
//! so one judgement wins however many replicas judge.

use chrono::{DateTime, Utc};

use crate::store::on_tx;
use crate::time::now;
use crate::{Error, FunctionId, ProjectId, Result, RolloutId, Tx};

/// Where a rollout stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutStatus {
    /// Moving through its steps.
    Running,
    /// The alias is on the new version.
    Completed,
    /// A breach put the alias back on the old version.
    RolledBack,
    /// Stopped by hand, or the alias was changed by hand.
    Cancelled,
}

impl RolloutStatus {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Completed => "completed",
            Self::RolledBack => "rolled_back",
            Self::Cancelled => "cancelled",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "running" => Self::Running,
            "completed" => Self::Completed,
            "rolled_back" => Self::RolledBack,
            "cancelled" => Self::Cancelled,
            other => {
                return Err(Error::Corrupt {
                    table: "rollouts",
                    reason: format!("unknown status {other:?}"),
                });
            }
        })
    }
}

/// What [`Tx::create_rollout`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRollout {
    /// The project.
    pub project_id: ProjectId,
    /// The function.
    pub function_id: FunctionId,
    /// The alias moved.
    pub alias: String,
    /// The alias's version when the rollout starts.
    pub from_version: i64,
    /// The version rolled out.
    pub to_version: i64,
    /// The new version's share at each step, in percent, rising, the last 100.
    pub steps: Vec<i32>,
    /// How long each step holds at least, in milliseconds.
    pub step_ms: i64,
    /// Requests the new version must answer in a step before the step is judged.
    pub min_requests: i64,
    /// A breach: the new version's error rate above the old one's by more than this.
    pub max_error_rate_increase: f64,
    /// A breach: the new version's p99 above the old one's times this.
    pub max_p99_ratio: f64,
}

/// A rollout as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Rollout {
    /// Its id.
    pub id: RolloutId,
    /// What it was created with.
    pub spec: NewRollout,
    /// The function's name.
    pub function: String,
    /// The step it is at (an index into `spec.steps`).
    pub step: usize,
    /// When that step began.
    pub step_started_at: DateTime<Utc>,
    /// Where it stands.
    pub status: RolloutStatus,
    /// Why it ended, when it did not complete.
    pub reason: Option<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last moved.
    pub updated_at: DateTime<Utc>,
}

impl Rollout {
    /// The new version's share of traffic now, in percent.
    pub fn weight(&self) -> i32 {
        self.spec.steps.get(self.step).copied().unwrap_or(100)
    }
}

#[derive(sqlx::FromRow)]
struct RolloutRow {
    id: RolloutId,
    project_id: ProjectId,
    function_id: FunctionId,
    function: String,
    alias: String,
    from_version: i64,
    to_version: i64,
    steps: String,
    step: i32,
    step_started_at: DateTime<Utc>,
    step_ms: i64,
    min_requests: i64,
    max_error_rate_increase: f64,
    max_p99_ratio: f64,
    status: String,
    reason: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl TryFrom<RolloutRow> for Rollout {
    type Error = Error;

    fn try_from(row: RolloutRow) -> Result<Self> {
        let corrupt = |reason: String| Error::Corrupt {
            table: "rollouts",
            reason,
        };
        let steps = row
            .steps
            .split(',')
            .map(|step| step.trim().parse::<i32>())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|error| corrupt(format!("steps {:?}: {error}", row.steps)))?;
        Ok(Self {
            id: row.id,
            spec: NewRollout {
                project_id: row.project_id,
                function_id: row.function_id,
                alias: row.alias,
                from_version: row.from_version,
                to_version: row.to_version,
                steps,
                step_ms: row.step_ms,
                min_requests: row.min_requests,
                max_error_rate_increase: row.max_error_rate_increase,
                max_p99_ratio: row.max_p99_ratio,
            },
            function: row.function,
            step: usize::try_from(row.step).map_err(|error| corrupt(error.to_string()))?,
            step_started_at: row.step_started_at,
            status: RolloutStatus::parse(&row.status)?,
            reason: row.reason,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

macro_rules! select_rollouts {
    ($condition:literal) => {
        concat!(
            "SELECT r.id, r.project_id, r.function_id, f.name AS function, r.alias, \
             r.from_version, r.to_version, r.steps, r.step, r.step_started_at, r.step_ms, \
             r.min_requests, r.max_error_rate_increase, r.max_p99_ratio, r.status, r.reason, \
             r.created_at, r.updated_at FROM rollouts r JOIN functions f ON f.id = r.function_id ",
            $condition
        )
    };
}

fn rollouts(rows: Vec<RolloutRow>) -> Result<Vec<Rollout>> {
    rows.into_iter().map(Rollout::try_from).collect()
}

impl Tx<'_> {
    /// Stores a new rollout at its first step, starting now. [`Error::Conflict`] when the
    /// alias has a running one.
    pub async fn create_rollout(&mut self, new: &NewRollout) -> Result<Rollout> {
        if self
            .running_rollout(new.function_id, &new.alias)
            .await?
            .is_some()
        {
            return Err(Error::Conflict {
                message: format!("alias {} has a rollout running", new.alias),
            });
        }
        let (id, now) = (RolloutId::new(), now());
        let steps = new
            .steps
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(",");
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO rollouts (id, project_id, function_id, alias, from_version, to_version, \
             steps, step, step_started_at, step_ms, min_requests, max_error_rate_increase, \
             max_p99_ratio, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, $9, $10, $11, $12, 'running', $8, $8)",
        )
        .bind(id)
        .bind(new.project_id)
        .bind(new.function_id)
        .bind(&new.alias)
        .bind(new.from_version)
        .bind(new.to_version)
        .bind(&steps)
        .bind(now)
        .bind(new.step_ms)
        .bind(new.min_requests)
        .bind(new.max_error_rate_increase)
        .bind(new.max_p99_ratio)
        .execute(conn)
        .await
        .map(drop))?;
        self.get_rollout(new.project_id, id).await
    }

    /// The project's rollout with this id. [`Error::NotFound`] if it has none.
    pub async fn get_rollout(&mut self, project_id: ProjectId, id: RolloutId) -> Result<Rollout> {
        let found: Option<RolloutRow> = on_tx!(self, conn => sqlx::query_as(select_rollouts!(
            "WHERE r.id = $1 AND r.project_id = $2"
        ))
        .bind(id)
        .bind(project_id)
        .fetch_optional(conn)
        .await)?;
        found
            .ok_or_else(|| Error::not_found("rollout"))
            .and_then(Rollout::try_from)
    }

    /// The function's rollouts, newest first.
    pub async fn list_rollouts(&mut self, function_id: FunctionId) -> Result<Vec<Rollout>> {
        let rows = on_tx!(self, conn => sqlx::query_as(select_rollouts!(
            "WHERE r.function_id = $1 ORDER BY r.created_at DESC"
        ))
        .bind(function_id)
        .fetch_all(conn)
        .await)?;
        rollouts(rows)
    }

    /// The alias's running rollout, if it has one.
    pub async fn running_rollout(
        &mut self,
        function_id: FunctionId,
        alias: &str,
    ) -> Result<Option<Rollout>> {
        let row: Option<RolloutRow> = on_tx!(self, conn => sqlx::query_as(select_rollouts!(
            "WHERE r.function_id = $1 AND r.alias = $2 AND r.status = 'running'"
        ))
        .bind(function_id)
        .bind(alias)
        .fetch_optional(conn)
        .await)?;
        row.map(Rollout::try_from).transpose()
    }

    /// Every running rollout, oldest first, up to `limit`.
    pub async fn running_rollouts(&mut self, limit: u32) -> Result<Vec<Rollout>> {
        let rows = on_tx!(self, conn => sqlx::query_as(select_rollouts!(
            "WHERE r.status = 'running' ORDER BY r.created_at LIMIT $1"
        ))
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await)?;
        rollouts(rows)
    }

    /// Moves the running rollout from step `from` to step `to`, starting now; `false` when it
    /// is no longer running at `from` (another judgement won).
    pub async fn advance_rollout(&mut self, id: RolloutId, from: usize, to: usize) -> Result<bool> {
        let step = |step: usize| {
            i32::try_from(step).map_err(|_| Error::Invalid {
                what: "rollout step",
                reason: format!("{step} is too large"),
            })
        };
        let (from, to, now) = (step(from)?, step(to)?, now());
        let moved = on_tx!(self, conn => sqlx::query(
            "UPDATE rollouts SET step = $3, step_started_at = $4, updated_at = $4 \
             WHERE id = $1 AND step = $2 AND status = 'running'",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(now)
        .execute(conn)
        .await
        .map(|result| result.rows_affected()))?;
        Ok(moved > 0)
    }

    /// Ends the running rollout with `status` and `reason`; `false` when it had ended.
    pub async fn end_rollout(
        &mut self,
        id: RolloutId,
        status: RolloutStatus,
        reason: Option<&str>,
    ) -> Result<bool> {
        let ended = on_tx!(self, conn => sqlx::query(
            "UPDATE rollouts SET status = $2, reason = $3, updated_at = $4 \
             WHERE id = $1 AND status = 'running'",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(reason)
        .bind(now())
        .execute(conn)
        .await
        .map(|result| result.rows_affected()))?;
        Ok(ended > 0)
    }
}
