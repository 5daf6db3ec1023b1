//! The sweep every coordinator runs: attempts whose lease expired are retried or buried,
//! queued invocations whose announcement may have been lost are announced again, and
//! invocations that ended long enough ago are deleted.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{AttemptReport, Finished, Reaped, Sweepable, Verdict, after};
use crate::store::on_tx;
use crate::time::now;
use crate::{Error, Result, Tx};

impl Tx<'_> {
    /// What the sweep has to do, read without writing (so that it does not conflict with the
    /// claims and accepts running meanwhile): at most `limit` running invocations whose lease
    /// expired and `limit` queued ones whose `due_at` has passed. Pass them to
    /// [`Tx::reap_invocations`].
    pub async fn sweepable_invocations(&mut self, limit: u32) -> Result<Sweepable> {
        let now = now();
        let expired = on_tx!(self, conn => sqlx::query_scalar(
            "SELECT id FROM invocations WHERE status = 'running' AND lease_expires_at < $1 \
             ORDER BY lease_expires_at LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await)?;
        let due = on_tx!(self, conn => sqlx::query_scalar(
            "SELECT id FROM invocations WHERE status = 'queued' AND due_at <= $1 \
             ORDER BY due_at LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await)?;
        Ok(Sweepable { expired, due })
    }

    /// The sweep's writes, row by row, each condition checked again: attempts in `sweepable`
    /// whose lease expired count as failed (`lost`) and are retried or buried; its queued
    /// invocations still due get `due_at` moved `redeliver_after` on and are returned to be
    /// announced again. Locks each row it reads and then changes, so it may run under
    /// [`crate::Store::with_retry_row_locking`].
    pub async fn reap_invocations(
        &mut self,
        sweepable: &Sweepable,
        redeliver_after: Duration,
        jitter: f64,
    ) -> Result<Reaped> {
        let now = now();
        let mut reaped = Reaped::default();
        for id in &sweepable.expired {
            let (record, backoff_ms) = match self.locked_invocation_row(*id).await {
                Ok(found) => found,
                Err(Error::NotFound { .. }) => continue,
                Err(error) => return Err(error),
            };
            let expired: Option<DateTime<Utc>> = on_tx!(self, conn => sqlx::query_scalar(
                "SELECT lease_expires_at FROM invocations WHERE id = $1 AND status = 'running'",
            )
            .bind(id)
            .fetch_optional(conn)
            .await)?
            .flatten();
            if expired.is_none_or(|at| at >= now) {
                continue;
            }
            let report = AttemptReport {
                verdict: Verdict::Retry,
                node: None,
                result: None,
                error: Some(
                    "lost: the coordinator running the attempt stopped renewing its lease"
                        .to_owned(),
                ),
                output: None,
            };
            self.end_attempt(&record, "lost", &report).await?;
            match self.retry_or_bury(record, backoff_ms, jitter).await? {
                Finished::Dead(record) => reaped.dead.push(record),
                _ => reaped.lost += 1,
            }
        }
        let redeliver_at = after(now, redeliver_after);
        for id in &sweepable.due {
            let postponed = on_tx!(self, conn => sqlx::query(
                "UPDATE invocations SET due_at = $2 \
                 WHERE id = $1 AND status = 'queued' AND due_at <= $3",
            )
            .bind(id)
            .bind(redeliver_at)
            .bind(now)
            .execute(conn)
            .await
            .map(|result| result.rows_affected()))?;
            if postponed > 0 {
                reaped.announce.push(*id);
            }
        }
        Ok(reaped)
    }

    /// Deletes up to `limit` invocations that ended (succeeded or failed) before `before`,
    /// their attempts with them; dead ones stay on the dead-letter list until redriven or
    /// purged. Returns how many went.
    pub async fn delete_finished_invocations(
        &mut self,
        before: DateTime<Utc>,
        limit: u32,
    ) -> Result<u64> {
        Ok(on_tx!(self, conn => sqlx::query(
            "DELETE FROM invocations WHERE id IN (SELECT id FROM invocations \
             WHERE status IN ('succeeded', 'failed') AND finished_at < $1 LIMIT $2)",
        )
        .bind(before)
        .bind(i64::from(limit))
        .execute(conn)
        .await
        .map(|result| result.rows_affected()))?)
    }
}
