//! How a rollout's step is judged: the new version's error rate and p99 latency in the step
//! against the old version's over the same time, from the calls each answered.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use nexus_store::Rollout;

/// Calls kept per version: enough for a p99 over any step, bounded whatever the traffic.
const KEPT_PER_VERSION: usize = 20_000;
/// Below this, a p99 difference is noise (a scheduler tick, a cold instance).
pub const LATENCY_SLACK: Duration = Duration::from_millis(10);

/// One call a version answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    /// When it was seen.
    pub at: DateTime<Utc>,
    /// The function's HTTP status.
    pub status: u16,
    /// From dispatch to the response head.
    pub micros: u64,
}

/// What a version did over a span of time.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct VersionStats {
    /// Calls answered.
    pub requests: u64,
    /// Of which with a 5xx status.
    pub errors: u64,
    /// The 99th percentile of their durations, in microseconds.
    pub p99_micros: u64,
}

impl VersionStats {
    /// The calls in `calls` since `since`.
    pub fn of<'a>(calls: impl Iterator<Item = &'a Call>, since: DateTime<Utc>) -> Self {
        let mut durations = Vec::new();
        let mut errors = 0;
        for call in calls.filter(|call| call.at >= since) {
            durations.push(call.micros);
            errors += u64::from(call.status >= 500);
        }
        durations.sort_unstable();
        // The nearest-rank percentile: the smallest duration at or above 99 % of the calls.
        let rank = (durations.len() * 99).div_ceil(100);
        Self {
            requests: durations.len() as u64,
            errors,
            p99_micros: rank
                .checked_sub(1)
                .and_then(|index| durations.get(index))
                .copied()
                .unwrap_or(0),
        }
    }

    #[expect(clippy::cast_precision_loss, reason = "call counts are far below 2^52")]
    fn error_rate(&self) -> f64 {
        if self.requests == 0 {
            0.0
        } else {
            self.errors as f64 / self.requests as f64
        }
    }
}

/// What a step's judgement says.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Not enough calls yet, or the step has not held long enough.
    Wait,
    /// Healthy for the whole step: on to the next.
    Advance,
    /// Worse than the old version: roll back, for this reason.
    Breach(String),
}

/// Judges `rollout`'s current step at `now`, from what the new and the old version did in it.
/// The old version's figures count only with as many calls as the new one needs; without them
/// the new version's error rate is held against zero and its latency is not judged.
pub fn judge(
    rollout: &Rollout,
    new: VersionStats,
    old: VersionStats,
    now: DateTime<Utc>,
) -> Verdict {
    let spec = &rollout.spec;
    let enough = u64::try_from(spec.min_requests).unwrap_or(u64::MAX);
    if new.requests < enough {
        return Verdict::Wait;
    }
    let old_counts = old.requests >= enough;
    let old_rate = if old_counts { old.error_rate() } else { 0.0 };
    if new.error_rate() > old_rate + spec.max_error_rate_increase {
        return Verdict::Breach(format!(
            "version {} failed {:.1} % of {} calls against {:.1} % for version {} (at most {:.1} points more allowed)",
            spec.to_version,
            new.error_rate() * 100.0,
            new.requests,
            old_rate * 100.0,
            spec.from_version,
            spec.max_error_rate_increase * 100.0
        ));
    }
    #[expect(
        clippy::cast_precision_loss,
        reason = "microseconds of a call are far below 2^52"
    )]
    let allowed = old.p99_micros as f64 * spec.max_p99_ratio + LATENCY_SLACK.as_micros() as f64;
    #[expect(clippy::cast_precision_loss, reason = "as above")]
    let slower = new.p99_micros as f64 > allowed;
    if old_counts && slower {
        return Verdict::Breach(format!(
            "version {} answered with a p99 of {:.1} ms against {:.1} ms for version {} (at most {}× allowed)",
            spec.to_version,
            new.p99_micros as f64 / 1000.0,
            old.p99_micros as f64 / 1000.0,
            spec.from_version,
            spec.max_p99_ratio
        ));
    }
    let held = TimeDelta::milliseconds(spec.step_ms);
    if now - rollout.step_started_at >= held {
        Verdict::Advance
    } else {
        Verdict::Wait
    }
}

/// The calls each watched version answered lately, fed from the event bus on every replica,
/// so that a new leader judges with what the old one saw.
#[derive(Default)]
pub struct Calls {
    versions: Mutex<HashMap<(String, String, i64), VecDeque<Call>>>,
}

impl Calls {
    /// Starts keeping calls of the versions in `watched` ((project id, function, version))
    /// and forgets the others.
    pub fn watch(&self, watched: impl IntoIterator<Item = (String, String, i64)>) {
        let mut versions = self.lock();
        let watched: HashMap<_, _> = watched.into_iter().map(|key| (key, ())).collect();
        versions.retain(|key, _| watched.contains_key(key));
        for key in watched.into_keys() {
            versions.entry(key).or_default();
        }
    }

    /// Keeps `call` if its version is watched.
    pub fn record(&self, project: &str, function: &str, version: i64, call: Call) {
        let mut versions = self.lock();
        let key = (project.to_owned(), function.to_owned(), version);
        if let Some(calls) = versions.get_mut(&key) {
            if calls.len() == KEPT_PER_VERSION {
                calls.pop_front();
            }
            calls.push_back(call);
        }
    }

    /// What the version did since `since`.
    pub fn stats(
        &self,
        project: &str,
        function: &str,
        version: i64,
        since: DateTime<Utc>,
    ) -> VersionStats {
        let versions = self.lock();
        let key = (project.to_owned(), function.to_owned(), version);
        versions
            .get(&key)
            .map(|calls| VersionStats::of(calls.iter(), since))
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String, i64), VecDeque<Call>>> {
        self.versions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use nexus_store::{FunctionId, NewRollout, ProjectId, RolloutId, RolloutStatus};

    use super::*;

    fn rollout(step_started_at: DateTime<Utc>) -> Rollout {
        Rollout {
            id: RolloutId::new(),
            spec: NewRollout {
                project_id: ProjectId::new(),
                function_id: FunctionId::new(),
                alias: "live".to_owned(),
                from_version: 1,
                to_version: 2,
                steps: vec![10, 50, 100],
                step_ms: 1000,
                min_requests: 20,
                max_error_rate_increase: 0.05,
                max_p99_ratio: 2.0,
            },
            function: "echo".to_owned(),
            step: 0,
            step_started_at,
            status: RolloutStatus::Running,
            reason: None,
            created_at: step_started_at,
            updated_at: step_started_at,
        }
    }

    fn calls(at: DateTime<Utc>, count: u64, failing_every: u64, micros: u64) -> Vec<Call> {
        (0..count)
            .map(|n| Call {
                at,
                status: if failing_every > 0 && n % failing_every == 0 {
                    500
                } else {
                    200
                },
                micros,
            })
            .collect()
    }

    #[test]
    fn percentiles_count_only_the_step() {
        let start = Utc::now();
        let mut all = calls(start - TimeDelta::seconds(5), 10, 1, 900_000);
        all.extend((1..=100).map(|micros| Call {
            at: start,
            status: 200,
            micros,
        }));
        let stats = VersionStats::of(all.iter(), start);
        assert_eq!(
            (stats.requests, stats.errors, stats.p99_micros),
            (100, 0, 99)
        );
        assert_eq!(VersionStats::of([].iter(), start), VersionStats::default());
    }

    #[test]
    fn a_step_waits_for_calls_and_time_and_breaches_on_errors_or_latency() {
        let start = Utc::now();
        let rollout = rollout(start);
        let healthy = |count| VersionStats::of(calls(start, count, 0, 2_000).iter(), start);
        // Too few calls, then enough but too early, then long enough.
        assert_eq!(
            judge(&rollout, healthy(19), healthy(200), start),
            Verdict::Wait
        );
        assert_eq!(
            judge(&rollout, healthy(20), healthy(200), start),
            Verdict::Wait
        );
        let later = start + TimeDelta::seconds(1);
        assert_eq!(
            judge(&rollout, healthy(20), healthy(200), later),
            Verdict::Advance
        );
        // One call in five failing, against none: a breach at once.
        let failing = VersionStats::of(calls(start, 100, 5, 2_000).iter(), start);
        let Verdict::Breach(reason) = judge(&rollout, failing, healthy(200), start) else {
            panic!("20 % errors passed");
        };
        assert!(reason.contains("20.0 %"), "{reason}");
        // The same rate as the old version's is no breach.
        assert_eq!(judge(&rollout, failing, failing, later), Verdict::Advance);
        // Slower than twice the old p99 plus the slack.
        let slow = VersionStats::of(calls(start, 100, 0, 50_000).iter(), start);
        assert!(matches!(
            judge(&rollout, slow, healthy(200), later),
            Verdict::Breach(reason) if reason.contains("p99")
        ));
        // Without enough calls of the old version, latency is not judged.
        assert_eq!(judge(&rollout, slow, healthy(3), later), Verdict::Advance);
    }

    #[test]
    fn only_watched_versions_are_kept() {
        let calls = Calls::default();
        let now = Utc::now();
        let call = Call {
            at: now,
            status: 200,
            micros: 5,
        };
        calls.watch([("p".to_owned(), "f".to_owned(), 2)]);
        calls.record("p", "f", 2, call);
        calls.record("p", "f", 3, call);
        assert_eq!(calls.stats("p", "f", 2, now).requests, 1);
        assert_eq!(calls.stats("p", "f", 3, now).requests, 0);
        calls.watch([]);
        assert_eq!(calls.stats("p", "f", 2, now).requests, 0);
    }
}
