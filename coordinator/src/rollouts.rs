//! Progressive delivery: a new version rolled out behind an alias in steps (by default 1 %,
//! 10 %, 50 %, then all of it), each step held for a while and judged against the version the
//! alias had ([`judge`]): the new version's error rate and p99 latency over the step's calls.
//! A breach rolls the alias back at once and says why; a healthy last step moves the alias to
//! the new version. Each move is an event (`rollout_changed`).
//!
//! The judging runs on the leader ([`crate::leader`]); every replica keeps the calls of the
//! versions being rolled out, from the event bus, so that a new leader judges with what the
//! old one saw. Moves are compare-and-sets on the rollout's step, and a rollout whose alias was
//! moved by hand meanwhile is cancelled rather than fought over.

pub mod judge;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt as _;
use nexus_store::{
    Error as StoreError, NewRollout, ProjectId, Rollout, RolloutId, RolloutStatus, Store,
};

use crate::error::ApiError;
use crate::events::{EventBus, EventKind};
use crate::leader::Leadership;
use crate::trigger::CatalogChanges;
use judge::{Call, Calls, Verdict, judge};

/// How often rollouts are judged.
const JUDGE_EVERY: Duration = Duration::from_millis(250);
/// Running rollouts judged at most at once.
const RUNNING_LIMIT: u32 = 1000;
/// Waits before listening to the event bus again after it failed.
const RESUBSCRIBE_AFTER: Duration = Duration::from_secs(1);
/// The most steps a rollout takes.
const MAX_STEPS: usize = 20;

/// The steps when none are given: 1 %, 10 %, 50 %, 100 %.
pub const DEFAULT_STEPS: [i32; 4] = [1, 10, 50, 100];
/// How long a step holds when not given.
pub const DEFAULT_STEP: Duration = Duration::from_secs(60);
/// Calls of the new version a step needs before it is judged, when not given.
pub const DEFAULT_MIN_REQUESTS: u64 = 50;
/// How much higher the new version's error rate may be, when not given: 5 points.
pub const DEFAULT_MAX_ERROR_RATE_INCREASE: f64 = 0.05;
/// How many times the old version's p99 the new one's may be, when not given.
pub const DEFAULT_MAX_P99_RATIO: f64 = 2.0;

/// What [`RolloutService::create`] needs; `None` takes the default.
#[derive(Debug, Clone, Default)]
pub struct RolloutRequest {
    /// The alias moved.
    pub alias: String,
    /// The version rolled out.
    pub version: i64,
    /// The new version's share at each step, in percent: rising, the last 100.
    pub steps: Option<Vec<i32>>,
    /// How long each step holds at least.
    pub step: Option<Duration>,
    /// Calls of the new version each step needs before it is judged.
    pub min_requests: Option<u64>,
    /// A breach: the new version's error rate above the old one's by more than this share.
    pub max_error_rate_increase: Option<f64>,
    /// A breach: the new version's p99 above the old one's times this.
    pub max_p99_ratio: Option<f64>,
}

/// How a rollout moves.
enum Move {
    Step(usize),
    Complete,
    RollBack(String),
    Cancel(String),
}

/// Rollouts: start, look up, cancel; and the loop that judges them.
#[derive(Clone)]
pub struct RolloutService {
    store: Arc<Store>,
    changes: Arc<CatalogChanges>,
    events: Arc<dyn EventBus>,
    calls: Arc<Calls>,
}

impl RolloutService {
    /// The service over `store`, dropping the trigger's cached resolutions through `changes`
    /// and publishing on (and reading calls from) `events`.
    pub fn new(store: Arc<Store>, changes: Arc<CatalogChanges>, events: Arc<dyn EventBus>) -> Self {
        Self {
            store,
            changes,
            events,
            calls: Arc::default(),
        }
    }

    /// Starts rolling `request.version` of the project's function `function` out behind its
    /// alias: the alias keeps its version and gets the new one as a canary at the first step.
    pub async fn create(
        &self,
        project: ProjectId,
        function: &str,
        request: RolloutRequest,
    ) -> Result<Rollout, ApiError> {
        let spec = Arc::new(settings(project, request)?);
        let function = function.to_owned();
        let rollout = self
            .store
            .with_retry(|tx| {
                let (spec, function) = (Arc::clone(&spec), function.clone());
                Box::pin(async move {
                    let function = tx.get_function(project, &function).await?;
                    let alias = tx.get_alias(function.id, &spec.alias).await?;
                    tx.get_function_version(function.id, spec.to_version)
                        .await?;
                    if alias.version_a == spec.to_version {
                        return Err(StoreError::Invalid {
                            what: "rollout",
                            reason: format!(
                                "alias {} is on version {} already",
                                spec.alias, spec.to_version
                            ),
                        });
                    }
                    let new = NewRollout {
                        function_id: function.id,
                        from_version: alias.version_a,
                        ..(*spec).clone()
                    };
                    let rollout = tx.create_rollout(&new).await?;
                    tx.set_alias(
                        function.id,
                        &new.alias,
                        new.from_version,
                        Some((new.to_version, rollout.weight())),
                    )
                    .await?;
                    Ok(rollout)
                })
            })
            .await
            .map_err(|error| match error {
                StoreError::Invalid { reason, .. } => ApiError::bad_request(reason),
                other => ApiError::from(other),
            })?;
        self.moved(&rollout, rollout.weight(), RolloutStatus::Running, None);
        Ok(rollout)
    }

    /// The function's rollouts, newest first.
    pub async fn list(&self, project: ProjectId, function: &str) -> Result<Vec<Rollout>, ApiError> {
        let function = function.to_owned();
        Ok(self
            .store
            .with_retry(|tx| {
                let function = function.clone();
                Box::pin(async move {
                    let function = tx.get_function(project, &function).await?;
                    tx.list_rollouts(function.id).await
                })
            })
            .await?)
    }

    /// The project's rollout `id`.
    pub async fn get(&self, project: ProjectId, id: RolloutId) -> Result<Rollout, ApiError> {
        Ok(self
            .store
            .with_retry(|tx| Box::pin(async move { tx.get_rollout(project, id).await }))
            .await?)
    }

    /// Stops the project's running rollout `id`, putting its alias back on the old version.
    pub async fn cancel(&self, project: ProjectId, id: RolloutId) -> Result<Rollout, ApiError> {
        let rollout = self.get(project, id).await?;
        if rollout.status != RolloutStatus::Running {
            return Err(ApiError::conflict(format!(
                "the rollout has ended ({})",
                rollout.status.as_str()
            )));
        }
        self.apply(&rollout, Move::Cancel("cancelled by hand".to_owned()))
            .await?;
        self.get(project, id).await
    }

    /// Keeps the calls of versions being rolled out, on every replica, and judges the running
    /// rollouts every [`JUDGE_EVERY`] while this replica leads.
    pub fn start(&self, leadership: Leadership) {
        tokio::spawn(self.clone().keep_calls());
        let service = self.clone();
        tokio::spawn(async move {
            let mut every = tokio::time::interval(JUDGE_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if let Err(error) = service.judge_running(leadership.is_leader()).await {
                    tracing::warn!(%error, "could not judge the running rollouts");
                }
            }
        });
    }

    async fn keep_calls(self) {
        loop {
            let mut listener = self.events.subscribe(None).await;
            while let Some(event) = listener.next().await {
                let Ok(event) = event else { continue };
                if let EventKind::InvocationFinished {
                    project,
                    function,
                    version: Some(version),
                    status,
                    duration_us,
                    invocation: None,
                    ..
                } = &event.kind
                {
                    let call = Call {
                        at: event.at,
                        status: *status,
                        micros: duration_us.unwrap_or(0),
                    };
                    self.calls.record(project, function, *version, call);
                }
            }
            tokio::time::sleep(RESUBSCRIBE_AFTER).await;
        }
    }

    async fn judge_running(&self, leads: bool) -> Result<(), ApiError> {
        let running = self
            .store
            .with_retry(|tx| Box::pin(async move { tx.running_rollouts(RUNNING_LIMIT).await }))
            .await?;
        self.calls.watch(running.iter().flat_map(|rollout| {
            let (project, function) = (rollout.spec.project_id.to_string(), &rollout.function);
            [rollout.spec.from_version, rollout.spec.to_version]
                .map(|version| (project.clone(), function.clone(), version))
        }));
        if !leads {
            return Ok(());
        }
        let now = chrono::Utc::now();
        for rollout in &running {
            let (project, function) = (rollout.spec.project_id.to_string(), &rollout.function);
            let since = rollout.step_started_at;
            let stats = |version| self.calls.stats(&project, function, version, since);
            let verdict = judge(
                rollout,
                stats(rollout.spec.to_version),
                stats(rollout.spec.from_version),
                now,
            );
            let to = match verdict {
                Verdict::Wait => continue,
                // The last step is 100 %: reaching it is moving the alias.
                Verdict::Advance if rollout.step + 2 >= rollout.spec.steps.len() => Move::Complete,
                Verdict::Advance => Move::Step(rollout.step + 1),
                Verdict::Breach(reason) => Move::RollBack(reason),
            };
            self.apply(rollout, to).await?;
        }
        Ok(())
    }

    /// Moves `rollout` and its alias in one transaction, unless another move came first; a
    /// rollout whose alias was moved by hand is cancelled instead.
    async fn apply(&self, rollout: &Rollout, to: Move) -> Result<(), ApiError> {
        let to = Arc::new(to);
        let moved = self
            .store
            .with_retry(|tx| {
                let to = Arc::clone(&to);
                Box::pin(async move {
                    let spec = &rollout.spec;
                    let alias = tx.get_alias(spec.function_id, &spec.alias).await?;
                    if alias.version_a != spec.from_version
                        || alias.version_b != Some(spec.to_version)
                    {
                        let reason = "the alias was moved by hand";
                        let ended = tx
                            .end_rollout(rollout.id, RolloutStatus::Cancelled, Some(reason))
                            .await?;
                        return Ok(
                            ended.then(|| (0, RolloutStatus::Cancelled, Some(reason.to_owned())))
                        );
                    }
                    let (status, reason, weight, alias_to) = match to.as_ref() {
                        Move::Step(next) => {
                            let weight = spec.steps.get(*next).copied().unwrap_or(100);
                            if !tx.advance_rollout(rollout.id, rollout.step, *next).await? {
                                return Ok(None);
                            }
                            let canary = Some((spec.to_version, weight));
                            tx.set_alias(spec.function_id, &spec.alias, spec.from_version, canary)
                                .await?;
                            return Ok(Some((weight, RolloutStatus::Running, None)));
                        }
                        Move::Complete => (RolloutStatus::Completed, None, 100, spec.to_version),
                        Move::RollBack(reason) => (
                            RolloutStatus::RolledBack,
                            Some(reason.clone()),
                            0,
                            spec.from_version,
                        ),
                        Move::Cancel(reason) => (
                            RolloutStatus::Cancelled,
                            Some(reason.clone()),
                            0,
                            spec.from_version,
                        ),
                    };
                    if !tx
                        .end_rollout(rollout.id, status, reason.as_deref())
                        .await?
                    {
                        return Ok(None);
                    }
                    tx.set_alias(spec.function_id, &spec.alias, alias_to, None)
                        .await?;
                    Ok(Some((weight, status, reason)))
                })
            })
            .await?;
        if let Some((weight, status, reason)) = moved {
            self.changes.bump();
            match &reason {
                Some(reason) => {
                    tracing::warn!(rollout = %rollout.id, status = status.as_str(), reason, "a rollout ended")
                }
                None => {
                    tracing::info!(rollout = %rollout.id, status = status.as_str(), weight, "a rollout moved")
                }
            }
            self.moved(rollout, weight, status, reason);
        }
        Ok(())
    }

    fn moved(&self, rollout: &Rollout, weight: i32, status: RolloutStatus, reason: Option<String>) {
        let spec = &rollout.spec;
        self.events.publish(EventKind::RolloutChanged {
            project: spec.project_id.to_string(),
            function: rollout.function.clone(),
            alias: spec.alias.clone(),
            rollout: rollout.id.to_string(),
            from_version: spec.from_version,
            to_version: spec.to_version,
            weight,
            status: status.as_str().to_owned(),
            reason,
        });
    }
}

/// A rollout's settings from `request`, checked, with the defaults filled in; the function
/// and the alias's current version are filled in by [`RolloutService::create`]'s transaction.
fn settings(project: ProjectId, request: RolloutRequest) -> Result<NewRollout, ApiError> {
    let steps = request.steps.unwrap_or_else(|| DEFAULT_STEPS.to_vec());
    let rising = steps.windows(2).all(|pair| pair[0] < pair[1]);
    if steps.is_empty()
        || steps.len() > MAX_STEPS
        || !rising
        || steps.first().is_some_and(|first| *first < 1)
        || steps.last() != Some(&100)
    {
        return Err(ApiError::bad_request(format!(
            "steps are 1 to {MAX_STEPS} rising percentages from 1, the last 100: {steps:?}"
        )));
    }
    let step = request.step.unwrap_or(DEFAULT_STEP);
    if step < Duration::from_millis(100) || step > Duration::from_secs(24 * 60 * 60) {
        return Err(ApiError::bad_request(
            "a step holds from 100 ms to 24 hours",
        ));
    }
    let min_requests = request.min_requests.unwrap_or(DEFAULT_MIN_REQUESTS);
    if !(1..=1_000_000).contains(&min_requests) {
        return Err(ApiError::bad_request("min_requests is from 1 to 1000000"));
    }
    let max_error_rate_increase = request
        .max_error_rate_increase
        .unwrap_or(DEFAULT_MAX_ERROR_RATE_INCREASE);
    if !(0.0..=1.0).contains(&max_error_rate_increase) {
        return Err(ApiError::bad_request(
            "max_error_rate_increase is a share from 0 to 1",
        ));
    }
    let max_p99_ratio = request.max_p99_ratio.unwrap_or(DEFAULT_MAX_P99_RATIO);
    if !(1.0..=1000.0).contains(&max_p99_ratio) {
        return Err(ApiError::bad_request("max_p99_ratio is from 1 to 1000"));
    }
    Ok(NewRollout {
        project_id: project,
        function_id: nexus_store::FunctionId(uuid::Uuid::nil()),
        alias: request.alias,
        from_version: 0,
        to_version: request.version,
        steps,
        step_ms: i64::try_from(step.as_millis()).unwrap_or(i64::MAX),
        min_requests: i64::try_from(min_requests).unwrap_or(i64::MAX),
        max_error_rate_increase,
        max_p99_ratio,
    })
}
