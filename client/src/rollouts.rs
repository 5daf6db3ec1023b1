//! Rollouts: `/v1/projects/{p}/functions/{f}/rollouts`. A version moved behind an alias in
//! steps, judged against the version the alias had, rolled back by the coordinator on a
//! breach.

use std::time::Duration;

use http::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Result};

/// A rollout to start; `None` takes the coordinator's default.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NewRollout {
    /// The version rolled out.
    pub version: i64,
    /// The alias moved (`live` when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The new version's share at each step, in percent: rising, the last 100 (1, 10, 50,
    /// 100 when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<i32>>,
    /// How long each step holds at least (a minute when `None`); sent in whole milliseconds.
    #[serde(
        rename = "step_ms",
        serialize_with = "millis",
        skip_serializing_if = "Option::is_none"
    )]
    pub step: Option<Duration>,
    /// Calls of the new version each step needs before it is judged (50 when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_requests: Option<u64>,
    /// A breach: the new version's error rate above the old one's by more than this share
    /// (0.05 when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_error_rate_increase: Option<f64>,
    /// A breach: the new version's p99 latency above the old one's times this, plus 10 ms
    /// (2 when `None`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_p99_ratio: Option<f64>,
}

fn millis<S: serde::Serializer>(
    step: &Option<Duration>,
    serializer: S,
) -> std::result::Result<S::Ok, S::Error> {
    let millis = step.map(|step| u64::try_from(step.as_millis()).unwrap_or(u64::MAX));
    millis.serialize(serializer)
}

/// A rollout as the coordinator reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rollout {
    /// Its id.
    pub id: String,
    /// The function.
    pub function: String,
    /// The alias moved.
    pub alias: String,
    /// The alias's version when it started.
    pub from_version: i64,
    /// The version rolled out.
    pub to_version: i64,
    /// The new version's share at each step, in percent.
    pub steps: Vec<i32>,
    /// The step it is at (from 0).
    pub step: usize,
    /// The new version's share of traffic now, in percent.
    pub weight: i32,
    /// When the step began (RFC 3339).
    pub step_started_at: String,
    /// How long each step holds at least, in milliseconds.
    pub step_ms: i64,
    /// Calls of the new version each step needs before it is judged.
    pub min_requests: i64,
    /// The largest rise of the error rate allowed.
    pub max_error_rate_increase: f64,
    /// The largest p99 ratio allowed.
    pub max_p99_ratio: f64,
    /// `running`, `completed`, `rolled_back` or `cancelled`.
    pub status: String,
    /// Why it ended, when it did not complete.
    #[serde(default)]
    pub reason: Option<String>,
    /// When it started (RFC 3339).
    pub created_at: String,
    /// When it last moved (RFC 3339).
    pub updated_at: String,
}

impl Client {
    /// `POST /v1/projects/{project}/functions/{function}/rollouts`: starts rolling a version out
    /// behind an alias (developer and up).
    pub async fn start_rollout(
        &self,
        project: &str,
        function: &str,
        rollout: &NewRollout,
    ) -> Result<Rollout> {
        let segments = ["v1", "projects", project, "functions", function, "rollouts"];
        let call = self.call(Method::POST, &segments).json(rollout);
        self.send(call).await?.json()
    }

    /// `GET /v1/projects/{project}/functions/{function}/rollouts`: the function's rollouts,
    /// newest first.
    pub async fn list_rollouts(&self, project: &str, function: &str) -> Result<Vec<Rollout>> {
        let segments = ["v1", "projects", project, "functions", function, "rollouts"];
        self.send(self.call(Method::GET, &segments)).await?.json()
    }

    /// `POST /v1/projects/{project}/functions/{function}/rollouts/{id}/cancel`: stops a running
    /// rollout; the alias goes back to its old version (developer and up).
    pub async fn cancel_rollout(&self, project: &str, function: &str, id: &str) -> Result<Rollout> {
        let segments = [
            "v1",
            "projects",
            project,
            "functions",
            function,
            "rollouts",
            id,
            "cancel",
        ];
        self.send(self.call(Method::POST, &segments)).await?.json()
    }
}
