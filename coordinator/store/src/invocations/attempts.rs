//! An attempt's life: claimed under a new epoch, its lease renewed, its outcome recorded only
//! under the epoch that is current, then the next attempt after a backoff or the dead-letter
//! list.

use std::time::Duration;

use super::{
    AttemptReport, Claim, ClaimedInvocation, Finished, InvocationRecord, InvocationStatus, Verdict,
    after,
};
use crate::store::on_tx;
use crate::time::now;
use crate::{Error, HolderId, InvocationId, Result, Tx};

/// The longest wait between two attempts, however many came before.
pub const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// The wait before the attempt after `attempts` failed ones: `backoff_ms` doubled for each
/// failure after the first, at most [`MAX_BACKOFF`], then scaled into its upper half by
/// `jitter` (0 to 1) so that invocations that failed together do not retry together.
pub fn backoff(backoff_ms: i64, attempts: i32, jitter: f64) -> Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1))
        .unwrap_or(0)
        .min(32);
    let base = u64::try_from(backoff_ms)
        .unwrap_or(0)
        .saturating_mul(1u64 << doublings);
    let capped = Duration::from_millis(base).min(MAX_BACKOFF);
    capped.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

impl Tx<'_> {
    /// Starts the invocation's next attempt for `holder` under a lease of `lease`, when it is
    /// queued and due. Locks the row it reads, so it may run under
    /// [`crate::Store::with_retry_row_locking`].
    pub async fn claim_invocation(
        &mut self,
        id: InvocationId,
        holder: HolderId,
        lease: Duration,
    ) -> Result<Claim> {
        let (record, _) = match self.locked_invocation_row(id).await {
            Ok(found) => found,
            Err(Error::NotFound { .. }) => return Ok(Claim::Gone),
            Err(error) => return Err(error),
        };
        let now = now();
        if record.status != InvocationStatus::Queued {
            return Ok(Claim::Gone);
        }
        if record.run_at > now {
            return Ok(Claim::NotDue);
        }
        if record.expires_at <= now {
            let error = format!(
                "the invocation grew older than its function's max age before attempt {}",
                record.attempts + 1
            );
            on_tx!(self, conn => sqlx::query(
                "UPDATE invocations SET status = 'dead', error = $2, updated_at = $3, \
                 finished_at = $3 WHERE id = $1",
            )
            .bind(id)
            .bind(&error)
            .bind(now)
            .execute(conn)
            .await
            .map(drop))?;
            return Ok(Claim::Expired(self.get_invocation(id).await?));
        }
        let (epoch, attempt) = (record.epoch + 1, record.attempts + 1);
        on_tx!(self, conn => sqlx::query(
            "UPDATE invocations SET status = 'running', epoch = $2, attempts = $3, holder = $4, \
             lease_expires_at = $5, updated_at = $6 WHERE id = $1",
        )
        .bind(id)
        .bind(epoch)
        .bind(attempt)
        .bind(holder)
        .bind(after(now, lease))
        .bind(now)
        .execute(conn)
        .await
        .map(drop))?;
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO invocation_attempts (invocation_id, attempt, epoch, status, started_at) \
             VALUES ($1, $2, $3, 'running', $4)",
        )
        .bind(id)
        .bind(attempt)
        .bind(epoch)
        .bind(now)
        .execute(conn)
        .await
        .map(drop))?;
        Ok(Claim::Claimed(ClaimedInvocation {
            record: InvocationRecord {
                status: InvocationStatus::Running,
                epoch,
                attempts: attempt,
                updated_at: now,
                ..record
            },
            epoch,
            attempt,
        }))
    }

    /// Extends the lease of the attempt under `epoch` to `lease` from now; `false` when that
    /// attempt no longer holds it.
    pub async fn extend_invocation_lease(
        &mut self,
        id: InvocationId,
        epoch: i64,
        lease: Duration,
    ) -> Result<bool> {
        let extended = on_tx!(self, conn => sqlx::query(
            "UPDATE invocations SET lease_expires_at = $3 \
             WHERE id = $1 AND epoch = $2 AND status = 'running'",
        )
        .bind(id)
        .bind(epoch)
        .bind(after(now(), lease))
        .execute(conn)
        .await
        .map(|result| result.rows_affected()))?;
        Ok(extended > 0)
    }

    /// Records how the attempt under `epoch` ended and moves the invocation on: to its final
    /// status, to another attempt after a backoff scaled by `jitter` (0 to 1), or to the
    /// dead-letter list. [`Finished::Stale`] (and no change) when `epoch` is not current.
    /// Locks the row it reads, so it may run under [`crate::Store::with_retry_row_locking`].
    pub async fn finish_invocation(
        &mut self,
        id: InvocationId,
        epoch: i64,
        report: &AttemptReport,
        jitter: f64,
    ) -> Result<Finished> {
        let (record, backoff_ms) = match self.locked_invocation_row(id).await {
            Ok(found) => found,
            Err(Error::NotFound { .. }) => return Ok(Finished::Stale),
            Err(error) => return Err(error),
        };
        if record.status != InvocationStatus::Running || record.epoch != epoch {
            return Ok(Finished::Stale);
        }
        let attempt_status = match report.verdict {
            Verdict::Succeeded => "succeeded",
            Verdict::Failed => "failed",
            Verdict::Retry => "error",
        };
        self.end_attempt(&record, attempt_status, report).await?;
        let status = match report.verdict {
            Verdict::Succeeded => InvocationStatus::Succeeded,
            Verdict::Failed => InvocationStatus::Failed,
            Verdict::Retry => return self.retry_or_bury(record, backoff_ms, jitter).await,
        };
        let now = now();
        on_tx!(self, conn => sqlx::query(
            "UPDATE invocations SET status = $2, holder = NULL, lease_expires_at = NULL, \
             updated_at = $3, finished_at = $3 WHERE id = $1",
        )
        .bind(id)
        .bind(status.as_str())
        .bind(now)
        .execute(conn)
        .await
        .map(drop))?;
        Ok(Finished::Done(self.get_invocation(id).await?))
    }

    /// Closes the current attempt's row and keeps its answer and error on the invocation.
    pub(super) async fn end_attempt(
        &mut self,
        record: &InvocationRecord,
        attempt_status: &str,
        report: &AttemptReport,
    ) -> Result<()> {
        let now = now();
        let result = report.result.as_ref();
        let output = report.output.as_ref();
        on_tx!(self, conn => sqlx::query(
            "UPDATE invocation_attempts SET status = $3, node = $4, http_status = $5, \
             error = $6, finished_at = $7, stdout = $8, stderr = $9, output_truncated = $10 \
             WHERE invocation_id = $1 AND attempt = $2",
        )
        .bind(record.id)
        .bind(record.attempts)
        .bind(attempt_status)
        .bind(&report.node)
        .bind(result.map(|result| result.status))
        .bind(&report.error)
        .bind(now)
        .bind(output.and_then(|output| non_empty(&output.stdout)))
        .bind(output.and_then(|output| non_empty(&output.stderr)))
        .bind(output.is_some_and(|output| output.truncated))
        .execute(conn)
        .await
        .map(drop))?;
        on_tx!(self, conn => sqlx::query(
            "UPDATE invocations SET result_status = $2, result_headers = $3, result_body = $4, \
             result_size = $5, error = $6, updated_at = $7 WHERE id = $1",
        )
        .bind(record.id)
        .bind(result.map(|result| result.status))
        .bind(result.map(|result| result.headers.as_slice()))
        .bind(result.map(|result| result.body.as_slice()))
        .bind(result.map(|result| result.size))
        .bind(&report.error)
        .bind(now)
        .execute(conn)
        .await
        .map(drop))?;
        Ok(())
    }

    /// After a failed attempt: queues the next one, or moves the invocation to the dead-letter
    /// list when no attempt is left or the next would start after it expires.
    pub(super) async fn retry_or_bury(
        &mut self,
        record: InvocationRecord,
        backoff_ms: i64,
        jitter: f64,
    ) -> Result<Finished> {
        let now = now();
        let run_at = after(now, backoff(backoff_ms, record.attempts, jitter));
        if record.attempts < record.max_attempts && run_at < record.expires_at {
            on_tx!(self, conn => sqlx::query(
                "UPDATE invocations SET status = 'queued', holder = NULL, \
                 lease_expires_at = NULL, run_at = $2, due_at = $2, updated_at = $3 \
                 WHERE id = $1",
            )
            .bind(record.id)
            .bind(run_at)
            .bind(now)
            .execute(conn)
            .await
            .map(drop))?;
            return Ok(Finished::Retrying { run_at });
        }
        on_tx!(self, conn => sqlx::query(
            "UPDATE invocations SET status = 'dead', holder = NULL, lease_expires_at = NULL, \
             updated_at = $2, finished_at = $2 WHERE id = $1",
        )
        .bind(record.id)
        .bind(now)
        .execute(conn)
        .await
        .map(drop))?;
        Ok(Finished::Dead(self.get_invocation(record.id).await?))
    }
}

/// `text`, unless it is empty.
fn non_empty(text: &str) -> Option<&str> {
    (!text.is_empty()).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_cap_and_jitter_keeps_the_upper_half() {
        assert_eq!(backoff(1000, 1, 1.0), Duration::from_secs(1));
        assert_eq!(backoff(1000, 2, 1.0), Duration::from_secs(2));
        assert_eq!(backoff(1000, 3, 0.0), Duration::from_secs(2));
        assert_eq!(backoff(1000, 40, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(i64::MAX, 3, 1.0), MAX_BACKOFF);
        assert_eq!(backoff(-5, 3, 1.0), Duration::ZERO);
    }
}
