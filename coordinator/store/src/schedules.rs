//! Schedules: a function alias (or an agent) invoked asynchronously on a cron expression or
//! once at a time. Firing a tick is [`Tx::advance_schedule`], a compare-and-set on the tick,
//! made in the transaction that records the tick's invocation: one replica wins each tick.

use chrono::{DateTime, SubsecRound as _, Utc};

use crate::store::on_tx;
use crate::time::now;
use crate::{AgentId, Error, FunctionId, ProjectId, Result, ScheduleId, Tx};

/// A schedule as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Schedule {
    /// Its id.
    pub id: ScheduleId,
    /// Its project.
    pub project_id: ProjectId,
    /// Unique in the project.
    pub name: String,
    /// The function it invokes.
    pub function_id: FunctionId,
    /// The function's name.
    pub function: String,
    /// The alias whose version each firing runs.
    pub alias: String,
    /// The agent each firing is a message to.
    pub agent_id: Option<AgentId>,
    /// The cron expression; `None` for a one-shot.
    pub cron: Option<String>,
    /// The request's method.
    pub method: String,
    /// The request's path and query.
    pub path: String,
    /// The request's body.
    pub body: Vec<u8>,
    /// The next tick; `None` once a one-shot has fired.
    pub next_fire_at: Option<DateTime<Utc>>,
    /// The last tick fired.
    pub last_fired_at: Option<DateTime<Utc>>,
    /// Ticks fired so far.
    pub fired: i32,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// What [`Tx::create_schedule`] needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSchedule {
    /// The project.
    pub project_id: ProjectId,
    /// Unique in the project.
    pub name: String,
    /// The function.
    pub function_id: FunctionId,
    /// The alias.
    pub alias: String,
    /// The agent, for messages.
    pub agent_id: Option<AgentId>,
    /// The cron expression (checked by the caller); `None` for a one-shot.
    pub cron: Option<String>,
    /// The request's method.
    pub method: String,
    /// The request's path and query.
    pub path: String,
    /// The request's body.
    pub body: Vec<u8>,
    /// The first tick.
    pub first_fire_at: DateTime<Utc>,
}

macro_rules! select_schedules {
    ($condition:literal) => {
        concat!(
            "SELECT s.id, s.project_id, s.name, s.function_id, f.name AS function, s.alias, \
             s.agent_id, s.cron, s.method, s.path, s.body, s.next_fire_at, s.last_fired_at, \
             s.fired, s.created_at, s.updated_at \
             FROM schedules s JOIN functions f ON f.id = s.function_id ",
            $condition
        )
    };
}

impl Tx<'_> {
    /// Stores a new schedule. [`Error::Conflict`] if the project has one of that name.
    pub async fn create_schedule(&mut self, new: &NewSchedule) -> Result<Schedule> {
        let id = ScheduleId::new();
        let now = now();
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO schedules (id, project_id, name, function_id, alias, agent_id, cron, \
             method, path, body, next_fire_at, fired, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 0, $12, $12)",
        )
        .bind(id)
        .bind(new.project_id)
        .bind(&new.name)
        .bind(new.function_id)
        .bind(&new.alias)
        .bind(new.agent_id)
        .bind(&new.cron)
        .bind(&new.method)
        .bind(&new.path)
        .bind(&new.body)
        .bind(new.first_fire_at.trunc_subsecs(6))
        .bind(now)
        .execute(conn)
        .await
        .map(drop))?;
        self.get_schedule(new.project_id, id).await
    }

    /// The project's schedule with this id. [`Error::NotFound`] if it has none.
    pub async fn get_schedule(
        &mut self,
        project_id: ProjectId,
        id: ScheduleId,
    ) -> Result<Schedule> {
        let found: Option<Schedule> = on_tx!(self, conn => sqlx::query_as(select_schedules!(
            "WHERE s.id = $1 AND s.project_id = $2"
        ))
        .bind(id)
        .bind(project_id)
        .fetch_optional(conn)
        .await)?;
        found.ok_or_else(|| Error::not_found("schedule"))
    }

    /// The schedule with this id, whichever its project. [`Error::NotFound`] if none.
    pub async fn get_schedule_by_id(&mut self, id: ScheduleId) -> Result<Schedule> {
        let found: Option<Schedule> = on_tx!(self, conn => sqlx::query_as(select_schedules!(
            "WHERE s.id = $1"
        ))
        .bind(id)
        .fetch_optional(conn)
        .await)?;
        found.ok_or_else(|| Error::not_found("schedule"))
    }

    /// The project's schedules in name order.
    pub async fn list_schedules(&mut self, project_id: ProjectId) -> Result<Vec<Schedule>> {
        Ok(on_tx!(self, conn => sqlx::query_as(select_schedules!(
            "WHERE s.project_id = $1 ORDER BY s.name"
        ))
        .bind(project_id)
        .fetch_all(conn)
        .await)?)
    }

    /// Deletes the project's schedule. [`Error::NotFound`] if it has none.
    pub async fn delete_schedule(&mut self, project_id: ProjectId, id: ScheduleId) -> Result<()> {
        let deleted = on_tx!(self, conn => sqlx::query(
            "DELETE FROM schedules WHERE id = $1 AND project_id = $2",
        )
        .bind(id)
        .bind(project_id)
        .execute(conn)
        .await
        .map(|result| result.rows_affected()))?;
        if deleted == 0 {
            return Err(Error::not_found("schedule"));
        }
        Ok(())
    }

    /// Up to `limit` schedules whose next tick is at or before `at`, earliest first.
    pub async fn due_schedules(
        &mut self,
        at: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<ScheduleId>> {
        Ok(on_tx!(self, conn => sqlx::query_scalar(
            "SELECT id FROM schedules WHERE next_fire_at <= $1 ORDER BY next_fire_at LIMIT $2",
        )
        .bind(at)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await)?)
    }

    /// Fires `tick` of the schedule: moves its next tick to `next` (`None`: no more), when
    /// `tick` is still its next one. `false` when another transaction fired it first.
    pub async fn advance_schedule(
        &mut self,
        id: ScheduleId,
        tick: DateTime<Utc>,
        next: Option<DateTime<Utc>>,
    ) -> Result<bool> {
        let advanced = on_tx!(self, conn => sqlx::query(
            "UPDATE schedules SET next_fire_at = $3, last_fired_at = $2, fired = fired + 1, \
             updated_at = $4 WHERE id = $1 AND next_fire_at = $2",
        )
        .bind(id)
        .bind(tick)
        .bind(next.map(|next| next.trunc_subsecs(6)))
        .bind(now())
        .execute(conn)
        .await
        .map(|result| result.rows_affected()))?;
        Ok(advanced > 0)
    }
}
