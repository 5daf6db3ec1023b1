//! Abuse limits: how often one address may call the auth endpoints, how often one account may
//! try to log in, how long an account waits after failed logins (doubling), and how many
//! trigger requests per second one project gets. Each breach is `429 rate_limited` with
//! `Retry-After`. Limits are kept per coordinator process (GCRA, `governor`), so replicas each
//! allow their share.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use crate::error::ApiError;

/// Keys a limiter keeps before it forgets those whose state is back to full.
const RETAIN_AT: usize = 100_000;

/// What the limits are. A zero turns a limit off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimitConfig {
    /// Calls of `/v1/auth/*` (register, login, refresh) per minute from one address.
    pub auth_per_ip_per_minute: u32,
    /// Logins per minute for one account.
    pub logins_per_account_per_minute: u32,
    /// Failed logins of one account in a row before each further attempt waits (1 s, then
    /// doubling up to [`RateLimitConfig::max_login_backoff`]).
    pub failed_logins_before_backoff: u32,
    /// The longest wait after failed logins.
    pub max_login_backoff: Duration,
    /// Trigger requests per second for one project (bursts of twice that); 0: no limit.
    pub project_requests_per_second: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            auth_per_ip_per_minute: 60,
            logins_per_account_per_minute: 10,
            failed_logins_before_backoff: 5,
            max_login_backoff: Duration::from_secs(15 * 60),
            project_requests_per_second: 0,
        }
    }
}

impl RateLimitConfig {
    /// No limit at all (benchmarks).
    pub fn unlimited() -> Self {
        Self {
            auth_per_ip_per_minute: 0,
            logins_per_account_per_minute: 0,
            failed_logins_before_backoff: 0,
            max_login_backoff: Duration::ZERO,
            project_requests_per_second: 0,
        }
    }
}

/// The limits, as this coordinator keeps them.
pub struct RateLimits {
    auth_by_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    logins_by_account: Option<DefaultKeyedRateLimiter<String>>,
    projects: Option<DefaultKeyedRateLimiter<String>>,
    failures: Mutex<HashMap<String, Failures>>,
    config: RateLimitConfig,
}

/// Failed logins of one account in a row.
#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    /// No attempt is taken before this.
    blocked_until: Option<Instant>,
}

fn keyed<K: Hash + Eq + Clone>(quota: Option<Quota>) -> Option<DefaultKeyedRateLimiter<K>> {
    quota.map(RateLimiter::keyed)
}

impl RateLimits {
    pub fn new(config: RateLimitConfig) -> Self {
        let per_minute = |n: u32| NonZeroU32::new(n).map(Quota::per_minute);
        let per_second = |n: u32| {
            NonZeroU32::new(n).map(|rate| {
                Quota::per_second(rate)
                    .allow_burst(rate.saturating_mul(NonZeroU32::MIN.saturating_add(1)))
            })
        };
        Self {
            auth_by_ip: keyed(per_minute(config.auth_per_ip_per_minute)),
            logins_by_account: keyed(per_minute(config.logins_per_account_per_minute)),
            projects: keyed(per_second(config.project_requests_per_second)),
            failures: Mutex::default(),
            config,
        }
    }

    /// A call of an auth endpoint from `ip`.
    pub fn auth_call(&self, ip: Option<IpAddr>) -> Result<(), ApiError> {
        match (&self.auth_by_ip, ip) {
            (Some(limiter), Some(ip)) => {
                check(limiter, &ip, "too many auth requests from this address")
            }
            _ => Ok(()),
        }
    }

    /// A login attempt for `email`: refused while the account waits after failed logins, or
    /// when it tries too often.
    pub fn login_attempt(&self, email: &str) -> Result<(), ApiError> {
        let account = account_key(email);
        let blocked = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&account)
            .and_then(|failures| failures.blocked_until)
            .and_then(|until| until.checked_duration_since(Instant::now()));
        if let Some(wait) = blocked {
            return Err(rate_limited(
                "too many failed logins for this account; wait before trying again",
                wait,
            ));
        }
        match &self.logins_by_account {
            Some(limiter) => check(limiter, &account, "too many logins for this account"),
            None => Ok(()),
        }
    }

    /// `email` failed to log in: after enough failures in a row, the next attempt waits.
    pub fn login_failed(&self, email: &str) {
        let threshold = self.config.failed_logins_before_backoff;
        if threshold == 0 {
            return;
        }
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if failures.len() >= RETAIN_AT {
            let now = Instant::now();
            failures.retain(|_, failed| failed.blocked_until.is_some_and(|until| until > now));
        }
        let failed = failures.entry(account_key(email)).or_insert(Failures {
            count: 0,
            blocked_until: None,
        });
        failed.count = failed.count.saturating_add(1);
        if failed.count >= threshold {
            let doublings = (failed.count - threshold).min(20);
            let wait = Duration::from_secs(1u64 << doublings).min(self.config.max_login_backoff);
            failed.blocked_until = Some(Instant::now() + wait);
        }
    }

    /// `email` logged in: its failures are forgotten.
    pub fn login_succeeded(&self, email: &str) {
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(&account_key(email));
    }

    /// A trigger request for project `project` (by name).
    pub fn project_request(&self, project: &str) -> Result<(), ApiError> {
        match &self.projects {
            Some(limiter) => check(
                limiter,
                &project.to_owned(),
                "the project's request rate limit is reached",
            ),
            None => Ok(()),
        }
    }
}

/// Accounts by email, case-folded as logins match them.
fn account_key(email: &str) -> String {
    email.trim().to_lowercase()
}

fn check<K: Hash + Eq + Clone>(
    limiter: &DefaultKeyedRateLimiter<K>,
    key: &K,
    what: &str,
) -> Result<(), ApiError> {
    if limiter.len() >= RETAIN_AT {
        limiter.retain_recent();
    }
    limiter.check_key(key).map_err(|not_until| {
        rate_limited(
            what,
            not_until.wait_time_from(DefaultClock::default().now()),
        )
    })
}

fn rate_limited(what: &str, wait: Duration) -> ApiError {
    ApiError::from_runtime(
        StatusCode::TOO_MANY_REQUESTS,
        "rate_limited",
        what.to_owned(),
        Some(wait.max(Duration::from_secs(1))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> RateLimitConfig {
        RateLimitConfig {
            auth_per_ip_per_minute: 2,
            logins_per_account_per_minute: 3,
            failed_logins_before_backoff: 2,
            max_login_backoff: Duration::from_secs(60),
            project_requests_per_second: 2,
        }
    }

    #[test]
    fn an_address_gets_its_burst_then_waits() {
        let limits = RateLimits::new(config());
        let ip = Some(IpAddr::from([192, 0, 2, 1]));
        assert!(limits.auth_call(ip).is_ok());
        assert!(limits.auth_call(ip).is_ok());
        let refused = limits.auth_call(ip).unwrap_err();
        assert_eq!(refused.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(refused.code, "rate_limited");
        assert!(
            refused
                .retry_after
                .is_some_and(|wait| wait >= Duration::from_secs(1))
        );
        // Another address is not affected.
        assert!(limits.auth_call(Some(IpAddr::from([192, 0, 2, 2]))).is_ok());
    }

    #[test]
    fn failed_logins_make_the_account_wait_longer_each_time() {
        let limits = RateLimits::new(config());
        limits.login_failed("Ana@Example.com");
        assert!(limits.login_attempt("ana@example.com").is_ok());
        limits.login_failed("ana@example.com");
        let first = limits.login_attempt("ana@example.com").unwrap_err();
        limits.login_failed("ana@example.com");
        let second = limits.login_attempt("ana@example.com").unwrap_err();
        assert!(
            second.retry_after > first.retry_after,
            "{first:?} {second:?}"
        );
        limits.login_succeeded("ana@example.com");
        assert!(limits.login_attempt("ana@example.com").is_ok());
    }

    #[test]
    fn a_project_gets_twice_its_rate_as_a_burst() {
        let limits = RateLimits::new(config());
        for _ in 0..4 {
            assert!(limits.project_request("shop").is_ok());
        }
        assert!(limits.project_request("shop").is_err());
        assert!(limits.project_request("other").is_ok());
        assert!(
            RateLimits::new(RateLimitConfig::unlimited())
                .project_request("shop")
                .is_ok()
        );
    }
}
