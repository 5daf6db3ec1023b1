//! [`Store::with_retry`]: run a closure in a transaction, again on serialization failures.
//!
//! Under SERIALIZABLE (Postgres, CockroachDB) a transaction that conflicts with a concurrent
//! one fails with SQLSTATE `40001`, possibly at commit; SQLite reports `SQLITE_BUSY` when a
//! deferred transaction's snapshot went stale before its first write. Either way the remedy
//! is to roll back and run the whole transaction again, reads included, which is why the unit
//! of retry is a closure and not a statement.

use std::time::Duration;

use futures::future::BoxFuture;

use crate::store::Isolation;
use crate::{Error, Result, Store, Tx};

/// How [`Store::with_retry`] retries: at most `max_attempts` runs, sleeping between them for a
/// random duration in `[d/2, d]`, where `d = min(max_delay, base_delay · 2^(attempt-1))`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Runs of the closure, the first included; at least 1.
    pub max_attempts: u32,
    /// The ceiling of the first backoff.
    pub base_delay: Duration,
    /// The ceiling of every backoff.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 10,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// The ceiling of the sleep after failed attempt number `attempt` (1-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.base_delay
            .saturating_mul(1_u32 << doublings)
            .min(self.max_delay)
    }

    /// The sleep after failed attempt `attempt`, with "equal jitter": half the ceiling plus a
    /// random share of the other half, so that conflicting transactions drift apart.
    fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let half = ceiling / 2;
        // A v4 UUID is 122 random bits from the OS: jitter without another dependency.
        let random = uuid::Uuid::new_v4().as_u128() as u64;
        let fraction = (random >> 11) as f64 / (1_u64 << 53) as f64;
        half + half.mul_f64(fraction)
    }
}

impl Store {
    /// Runs `work` in a transaction and commits it; rolls back when `work` fails.
    ///
    /// When `work` or the commit fails with a retryable error ([`Error::is_retryable`]), the
    /// transaction is rolled back and `work` runs again in a fresh one, after a backoff, up to
    /// the policy's attempt limit; then [`Error::RetryExhausted`] carries the last failure.
    /// `work` must therefore be safe to run more than once: keep side effects outside the
    /// database out of it. Any other error is returned at once.
    ///
    /// ```ignore
    /// let new_user = &new_user;
    /// let user = store
    ///     .with_retry(|tx| Box::pin(async move { tx.create_user(new_user).await }))
    ///     .await?;
    /// ```
    ///
    /// The future may borrow from the caller (`'env`) and from the transaction (`'t`); the
    /// `&'t mut Tx<'env>` argument tells the compiler that `'env` outlives `'t`, as
    /// `std::thread::scope` does.
    pub async fn with_retry<'env, T, F>(&self, work: F) -> Result<T>
    where
        F: for<'t> FnMut(&'t mut Tx<'env>) -> BoxFuture<'t, Result<T>>,
    {
        self.retrying(Isolation::Serializable, work).await
    }

    /// [`Store::with_retry`] for work of which every read of a row it then changes locks that
    /// row (the store's own methods say when they do): on Postgres at READ COMMITTED. Hot
    /// paths that change many rows of one table concurrently need this on Postgres, whose
    /// serializable predicate locks are coarsened to pages and then to the whole table as a
    /// transaction reads more rows, so concurrent batches abort each other over rows they
    /// never share. CockroachDB runs it serializable unless read committed is enabled there;
    /// it is correct either way.
    pub async fn with_retry_row_locking<'env, T, F>(&self, work: F) -> Result<T>
    where
        F: for<'t> FnMut(&'t mut Tx<'env>) -> BoxFuture<'t, Result<T>>,
    {
        self.retrying(Isolation::RowLocking, work).await
    }

    async fn retrying<'env, T, F>(&self, isolation: Isolation, mut work: F) -> Result<T>
    where
        F: for<'t> FnMut(&'t mut Tx<'env>) -> BoxFuture<'t, Result<T>>,
    {
        let max_attempts = self.retry.max_attempts.max(1);
        let mut attempt = 1;
        loop {
            match self.attempt(isolation, &mut work).await {
                Ok(value) => return Ok(value),
                Err(error) if error.is_retryable() => {
                    if attempt >= max_attempts {
                        return Err(Error::RetryExhausted {
                            attempts: attempt,
                            last: Box::new(error),
                        });
                    }
                    let backoff = self.retry.backoff(attempt);
                    tracing::debug!(%error, attempt, ?backoff, "transaction conflicted, retrying");
                    tokio::time::sleep(backoff).await;
                    attempt += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }

    async fn attempt<'env, T, F>(&self, isolation: Isolation, work: &mut F) -> Result<T>
    where
        F: for<'t> FnMut(&'t mut Tx<'env>) -> BoxFuture<'t, Result<T>>,
    {
        let mut transaction = self.begin(isolation).await?;
        match work(&mut transaction).await {
            Ok(value) => {
                transaction.commit().await?;
                Ok(value)
            }
            Err(error) => {
                if let Err(rollback_error) = transaction.rollback().await {
                    // The connection goes back to the pool, which discards it if it is broken.
                    tracing::warn!(error = %rollback_error, "rollback failed");
                }
                Err(error)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_ceiling_and_stays_in_the_upper_half() {
        let policy = RetryPolicy {
            max_attempts: 10,
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(100),
        };
        let ceilings: Vec<u64> = (1..=6)
            .map(|attempt| policy.ceiling(attempt).as_millis() as u64)
            .collect();
        assert_eq!(ceilings, [10, 20, 40, 80, 100, 100]);
        assert_eq!(policy.ceiling(u32::MAX), Duration::from_millis(100));
        for attempt in 1..=8 {
            let backoff = policy.backoff(attempt);
            let ceiling = policy.ceiling(attempt);
            assert!(backoff >= ceiling / 2 && backoff <= ceiling, "{backoff:?}");
        }
    }
}
