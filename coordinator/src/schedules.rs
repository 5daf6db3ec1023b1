//! Schedules: a function alias, or an agent, invoked asynchronously on a cron expression (UTC,
//! seconds optional) or once at a time. Every coordinator looks for due schedules a few times
//! a second; firing a tick records its invocation in the transaction that moves the schedule's
//! next tick on with a compare-and-set, and the invocation's idempotency key names the tick,
//! so each tick fires exactly once however many replicas see it. Only the leader looks
//! ([`crate::leader`]). Ticks missed while no coordinator led (a failover, a restart) fire,
//! late, each once, back to [`CATCH_UP`] ago; older ones are skipped.

use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};
use nexus_store::{
    AgentId, InvocationId, NewInvocation, NewSchedule, Project, ProjectId, Schedule, ScheduleId,
    Store, StoredRequest,
};

use crate::error::ApiError;
use crate::invocations::{InvocationService, encode_headers};
use crate::leader::Leadership;
use crate::trigger::Resolver;

/// How often each coordinator looks for due schedules.
pub const TICK: Duration = Duration::from_millis(200);
/// How far back missed ticks still fire, each once: ticks missed for longer are skipped.
pub const CATCH_UP: Duration = Duration::from_secs(60);
/// Due schedules one look takes at most.
const DUE_LIMIT: u32 = 100;
/// The header naming the schedule on the request a firing makes.
pub const SCHEDULE_HEADER: HeaderName = HeaderName::from_static("nexus-schedule");
/// The longest schedule name.
const MAX_NAME_CHARS: usize = 128;
/// The largest body a schedule sends.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum When {
    /// At every tick of a cron expression.
    Cron(String),
    /// Once, at this time (at once when it has passed).
    At(DateTime<Utc>),
}

/// What [`ScheduleService::create`] needs.
#[derive(Debug, Clone)]
pub struct ScheduleRequest {
    /// Unique in the project: 1 to 128 letters, digits, `-`, `_` or `.`.
    pub name: String,
    /// The function.
    pub function: String,
    /// Its alias (the version is picked at each firing).
    pub alias: String,
    /// The agent each firing is a message to.
    pub agent: Option<AgentId>,
    /// When it fires.
    pub when: When,
    /// The request's method.
    pub method: Method,
    /// The request's path and query.
    pub path: String,
    /// The request's body.
    pub body: Vec<u8>,
}

/// Schedules: create, get, list, delete; and the loop that fires them.
#[derive(Clone)]
pub struct ScheduleService {
    store: Arc<Store>,
    triggers: Arc<Resolver>,
    invocations: InvocationService,
}

/// The cron parser: five fields, or six with seconds first.
fn parser() -> CronParser {
    CronParser::builder().seconds(Seconds::Optional).build()
}

/// The first tick of `cron` after `after`.
pub(crate) fn next_tick(cron: &Cron, after: DateTime<Utc>) -> Result<DateTime<Utc>, ApiError> {
    // Ticks are whole seconds; the parser would keep the fraction of `after`.
    cron.find_next_occurrence(&after.trunc_subsecs(0), false)
        .map_err(|error| ApiError::bad_request(format!("the cron expression never fires: {error}")))
}

/// The tick of `cron` to fire after `fired`: the next one, even when it has passed already
/// (a failover, a restart), so that every tick of the last [`CATCH_UP`] fires, late; ticks
/// before that are skipped.
fn tick_after(
    cron: &Cron,
    fired: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<DateTime<Utc>, ApiError> {
    let window = TimeDelta::from_std(CATCH_UP).unwrap_or(TimeDelta::MAX);
    let oldest = now.checked_sub_signed(window).unwrap_or(now);
    next_tick(cron, fired.max(oldest))
}

pub(crate) fn parse_cron(expression: &str) -> Result<Cron, ApiError> {
    parser().parse(expression).map_err(|error| {
        ApiError::bad_request(format!("not a cron expression {expression:?}: {error}"))
    })
}

impl ScheduleService {
    /// The service over `store`, resolving aliases with `triggers` and recording firings
    /// through `invocations`.
    pub fn new(store: Arc<Store>, triggers: Arc<Resolver>, invocations: InvocationService) -> Self {
        Self {
            store,
            triggers,
            invocations,
        }
    }

    /// Creates a schedule in `project`.
    pub async fn create(
        &self,
        project: ProjectId,
        request: ScheduleRequest,
    ) -> Result<Schedule, ApiError> {
        crate::agents::check_name("a schedule", &request.name, MAX_NAME_CHARS)?;
        let (cron, first_fire_at) = match &request.when {
            When::Cron(expression) => {
                let cron = parse_cron(expression)?;
                let first = next_tick(&cron, Utc::now())?;
                (Some(expression.clone()), first)
            }
            When::At(at) => (None, *at),
        };
        if !request.path.starts_with('/') {
            return Err(ApiError::bad_request(format!(
                "path must be a path and query starting with '/': {:?}",
                request.path
            )));
        }
        if request.body.len() > MAX_BODY_BYTES {
            return Err(ApiError::too_large(format!(
                "a schedule's body is at most {MAX_BODY_BYTES} bytes"
            )));
        }
        let request = Arc::new(request);
        let schedule = self
            .store
            .with_retry(|tx| {
                let (request, cron) = (Arc::clone(&request), cron.clone());
                Box::pin(async move {
                    let function = tx.get_function(project, &request.function).await?;
                    tx.get_alias(function.id, &request.alias).await?;
                    if let Some(agent) = request.agent {
                        tx.get_agent(project, agent).await?;
                    }
                    tx.create_schedule(&NewSchedule {
                        project_id: project,
                        name: request.name.clone(),
                        function_id: function.id,
                        alias: request.alias.clone(),
                        agent_id: request.agent,
                        cron,
                        method: request.method.to_string(),
                        path: request.path.clone(),
                        body: request.body.clone(),
                        first_fire_at,
                    })
                    .await
                })
            })
            .await?;
        Ok(schedule)
    }

    /// The project's schedule `id`.
    pub async fn get(&self, project: ProjectId, id: ScheduleId) -> Result<Schedule, ApiError> {
        Ok(self
            .store
            .with_retry(|tx| Box::pin(async move { tx.get_schedule(project, id).await }))
            .await?)
    }

    /// The project's schedules, in name order.
    pub async fn list(&self, project: ProjectId) -> Result<Vec<Schedule>, ApiError> {
        Ok(self
            .store
            .with_retry(|tx| Box::pin(async move { tx.list_schedules(project).await }))
            .await?)
    }

    /// Deletes the project's schedule `id`; it fires no more.
    pub async fn delete(&self, project: ProjectId, id: ScheduleId) -> Result<(), ApiError> {
        Ok(self
            .store
            .with_retry(|tx| Box::pin(async move { tx.delete_schedule(project, id).await }))
            .await?)
    }

    /// Fires due schedules every [`TICK`] while this replica leads, for as long as the
    /// runtime runs.
    pub fn start(&self, leadership: Leadership) {
        let service = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(TICK);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if leadership.is_leader() {
                    service.fire_due().await;
                }
            }
        });
    }

    async fn fire_due(&self) {
        let now = Utc::now();
        let due = self
            .store
            .with_retry(|tx| Box::pin(async move { tx.due_schedules(now, DUE_LIMIT).await }))
            .await;
        let due = match due {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "could not look for due schedules");
                return;
            }
        };
        for id in due {
            if let Err(error) = self.fire(id).await {
                tracing::warn!(%error, schedule = %id, "a schedule could not fire");
            }
        }
    }

    /// Fires the schedule's next tick if it is due and no one else has.
    async fn fire(&self, id: ScheduleId) -> Result<(), ApiError> {
        let (schedule, project) = self
            .store
            .with_retry(|tx| {
                Box::pin(async move {
                    let schedule = tx.get_schedule_by_id(id).await?;
                    let project = tx.get_project(schedule.project_id).await?;
                    Ok((schedule, project))
                })
            })
            .await?;
        let now = Utc::now();
        let Some(tick) = schedule.next_fire_at.filter(|tick| *tick <= now) else {
            return Ok(());
        };
        let next = match &schedule.cron {
            Some(expression) => Some(tick_after(&parse_cron(expression)?, tick, now)?),
            None => None,
        };
        let new = self.invocation(&schedule, &project, tick).await?;
        let (fresh_since, redeliver_at) = self.invocations.windows();
        let fired = self
            .store
            .with_retry(|tx| {
                let new = &new;
                Box::pin(async move {
                    if !tx.advance_schedule(id, tick, next).await? {
                        return Ok(None);
                    }
                    let Some(new) = new else {
                        return Ok(None);
                    };
                    Ok(Some(
                        tx.enqueue_invocation(new, fresh_since, redeliver_at)
                            .await?,
                    ))
                })
            })
            .await?;
        if let (Some(enqueued), Some(new)) = (fired, &new)
            && enqueued.created
        {
            self.invocations
                .announce_accepted(new, &schedule.function)
                .await;
        }
        Ok(())
    }

    /// The invocation a tick records: the alias's version now, the schedule's request, and an
    /// idempotency key naming the tick. `None` when the alias no longer exists: the tick
    /// passes without one.
    async fn invocation(
        &self,
        schedule: &Schedule,
        project: &Project,
        tick: DateTime<Utc>,
    ) -> Result<Option<NewInvocation>, ApiError> {
        let Some(resolution) = self
            .triggers
            .resolve(&project.slug, &schedule.function, &schedule.alias)
            .await?
        else {
            tracing::warn!(schedule = %schedule.id, alias = schedule.alias, "the schedule's alias is gone; the tick passes");
            return Ok(None);
        };
        let target = resolution.pick();
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("localhost"));
        if let Ok(name) = HeaderValue::from_str(&schedule.name) {
            headers.insert(SCHEDULE_HEADER, name);
        }
        Ok(Some(NewInvocation {
            id: InvocationId::new(),
            project_id: project.id,
            function_id: resolution.function_id(),
            version: target.version,
            agent_id: schedule.agent_id,
            idempotency_key: Some(format!(
                "schedule:{}:{}",
                schedule.id,
                tick.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
            )),
            retry: resolution.async_retry(),
            request: StoredRequest {
                method: schedule.method.clone(),
                uri: schedule.path.clone(),
                prefix: String::new(),
                headers: encode_headers(&headers),
                body: schedule.body.clone(),
                client: "127.0.0.1:0".to_owned(),
            },
        }))
    }
}

/// A method a schedule may send.
pub fn method(name: Option<&str>) -> Result<Method, ApiError> {
    match name {
        None => Ok(Method::POST),
        Some(name) => Method::from_bytes(name.as_bytes())
            .map_err(|_| ApiError::bad_request(format!("not an HTTP method: {name:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cron_expressions_take_five_or_six_fields_in_utc() {
        let at = DateTime::parse_from_rfc3339("2026-11-26T10:00:00.5Z")
            .unwrap()
            .with_timezone(&Utc);
        let every_second = parse_cron("* * * * * *").unwrap();
        assert_eq!(
            next_tick(&every_second, at).unwrap().to_rfc3339(),
            "2026-11-26T10:00:01+00:00"
        );
        let hourly = parse_cron("15 * * * *").unwrap();
        assert_eq!(
            next_tick(&hourly, at).unwrap().to_rfc3339(),
            "2026-11-26T10:15:00+00:00"
        );
        assert!(parse_cron("every day").is_err());
        // Missed ticks fire one after another; those older than the catch-up window do not.
        let fired = at - TimeDelta::seconds(5);
        assert_eq!(
            tick_after(&every_second, fired, at).unwrap(),
            fired.trunc_subsecs(0) + TimeDelta::seconds(1)
        );
        let long_ago = at - TimeDelta::hours(2);
        assert_eq!(
            tick_after(&every_second, long_ago, at).unwrap(),
            (at - TimeDelta::from_std(CATCH_UP).unwrap()).trunc_subsecs(0) + TimeDelta::seconds(1)
        );
        assert!(parse_cron("61 * * * *").is_err());
    }
}
