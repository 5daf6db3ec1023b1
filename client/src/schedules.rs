//! Schedules: `/v1/projects/{p}/schedules`. A function alias (or an agent) invoked
//! asynchronously on a cron expression or once.

use std::time::Duration;

use http::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Result};

/// When a schedule fires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScheduleTime {
    /// At every tick of this cron expression (UTC; five fields, or six with seconds first).
    Cron(String),
    /// Once, this long from now (at most a year; whole milliseconds).
    After(Duration),
    /// Once, at this time (RFC 3339).
    At(String),
}

/// A schedule to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSchedule {
    /// Unique in the project: 1 to 128 letters, digits, `-`, `_` or `.`.
    pub name: String,
    /// The function.
    pub function: String,
    /// Its alias (`live` when `None`); the version is picked at each firing.
    pub alias: Option<String>,
    /// An agent of the project: each firing is a message to it.
    pub agent: Option<String>,
    /// When it fires.
    pub when: ScheduleTime,
    /// The method the function sees (`POST` when `None`).
    pub method: Option<String>,
    /// The path and query the function sees (`/` when `None`).
    pub path: Option<String>,
    /// The body the function sees (text).
    pub body: Option<String>,
}

impl NewSchedule {
    /// A schedule named `name` invoking `function`'s `live` alias `when`, with a `POST` of
    /// nothing to `/`.
    pub fn new(name: impl Into<String>, function: impl Into<String>, when: ScheduleTime) -> Self {
        Self {
            name: name.into(),
            function: function.into(),
            alias: None,
            agent: None,
            when,
            method: None,
            path: None,
            body: None,
        }
    }
}

/// A schedule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The function it invokes.
    pub function: String,
    /// The function's alias.
    pub alias: String,
    /// The agent each firing is a message to.
    pub agent: Option<String>,
    /// Its cron expression; `None` for a one-shot.
    pub cron: Option<String>,
    /// The method the function sees.
    pub method: String,
    /// The path and query the function sees.
    pub path: String,
    /// Its next tick (RFC 3339); `None` once a one-shot has fired.
    pub next_fire_at: Option<String>,
    /// When it last fired (RFC 3339).
    pub last_fired_at: Option<String>,
    /// Ticks fired so far.
    pub fired: i32,
    /// When it was created (RFC 3339).
    pub created_at: String,
}

/// The JSON of a new schedule: `when` as exactly one of `cron`, `after_ms` and `at`.
#[derive(Serialize)]
struct NewScheduleBody<'a> {
    name: &'a str,
    function: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    alias: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cron: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    after_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    at: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
}

impl<'a> From<&'a NewSchedule> for NewScheduleBody<'a> {
    fn from(schedule: &'a NewSchedule) -> Self {
        let (cron, after_ms, at) = match &schedule.when {
            ScheduleTime::Cron(cron) => (Some(cron.as_str()), None, None),
            ScheduleTime::After(delay) => (
                None,
                Some(u64::try_from(delay.as_millis()).unwrap_or(u64::MAX)),
                None,
            ),
            ScheduleTime::At(at) => (None, None, Some(at.as_str())),
        };
        Self {
            name: &schedule.name,
            function: &schedule.function,
            alias: schedule.alias.as_deref(),
            agent: schedule.agent.as_deref(),
            cron,
            after_ms,
            at,
            method: schedule.method.as_deref(),
            path: schedule.path.as_deref(),
            body: schedule.body.as_deref(),
        }
    }
}

impl Client {
    /// `POST /v1/projects/{project}/schedules` (developer and up).
    pub async fn create_schedule(&self, project: &str, schedule: &NewSchedule) -> Result<Schedule> {
        let call = self
            .call(Method::POST, &["v1", "projects", project, "schedules"])
            .json(&NewScheduleBody::from(schedule));
        self.send(call).await?.json()
    }

    /// `GET /v1/projects/{project}/schedules`: the project's schedules, in name order.
    pub async fn list_schedules(&self, project: &str) -> Result<Vec<Schedule>> {
        let call = self.call(Method::GET, &["v1", "projects", project, "schedules"]);
        self.send(call).await?.json()
    }

    /// `GET /v1/projects/{project}/schedules/{schedule}`.
    pub async fn get_schedule(&self, project: &str, schedule_id: &str) -> Result<Schedule> {
        let segments = ["v1", "projects", project, "schedules", schedule_id];
        self.send(self.call(Method::GET, &segments)).await?.json()
    }

    /// `DELETE /v1/projects/{project}/schedules/{schedule}` (developer and up): it fires no
    /// more.
    pub async fn delete_schedule(&self, project: &str, schedule_id: &str) -> Result<()> {
        let segments = ["v1", "projects", project, "schedules", schedule_id];
        self.send(self.call(Method::DELETE, &segments))
            .await?
            .done()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_of_a_schedule_is_exactly_one_of_cron_after_ms_and_at() {
        let body = |when| {
            let schedule = NewSchedule::new("nightly", "report", when);
            serde_json::to_value(NewScheduleBody::from(&schedule)).unwrap()
        };
        assert_eq!(
            body(ScheduleTime::Cron("0 3 * * *".to_owned())),
            serde_json::json!({"name": "nightly", "function": "report", "cron": "0 3 * * *"})
        );
        assert_eq!(
            body(ScheduleTime::After(Duration::from_secs(90))),
            serde_json::json!({"name": "nightly", "function": "report", "after_ms": 90_000})
        );
        assert_eq!(
            body(ScheduleTime::At("2030-01-01T00:00:00Z".to_owned()))["at"],
            "2030-01-01T00:00:00Z"
        );
    }
}
