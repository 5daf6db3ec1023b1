//! The dead-letter list: invocations whose budget ran out, queued again with a fresh one
//! (`redrive`) or deleted (`purge`).

use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, Utc};

use super::{DeadFilter, after};
use crate::store::on_tx;
use crate::time::now;
use crate::{FunctionId, InvocationId, ProjectId, Result, Tx};

impl Tx<'_> {
    /// Queues the project's dead invocations that `filter` takes (at most `limit`) again,
    /// each with a fresh budget from its function's current policy, announced again at
    /// `redeliver_at` unless claimed by then. Returns their ids.
    pub async fn redrive_invocations(
        &mut self,
        project_id: ProjectId,
        filter: &DeadFilter,
        limit: u32,
        redeliver_at: DateTime<Utc>,
    ) -> Result<Vec<InvocationId>> {
        let dead = self.dead_invocations(project_id, filter, limit).await?;
        let now = now();
        let mut policies = std::collections::HashMap::new();
        for (id, function_id, attempts) in &dead {
            let retry = match policies.get(function_id) {
                Some(retry) => *retry,
                None => {
                    let retry = self.get_function_by_id(*function_id).await?.async_retry;
                    policies.insert(*function_id, retry);
                    retry
                }
            };
            let expires_at = after(
                now,
                Duration::from_millis(u64::try_from(retry.max_age_ms).unwrap_or(0)),
            );
            on_tx!(self, conn => sqlx::query(
                "UPDATE invocations SET status = 'queued', max_attempts = $2, backoff_ms = $3, \
                 expires_at = $4, run_at = $5, due_at = $6, updated_at = $5, \
                 finished_at = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(attempts.saturating_add(retry.max_attempts.max(1)))
            .bind(retry.backoff_ms.max(0))
            .bind(expires_at)
            .bind(now)
            .bind(redeliver_at.trunc_subsecs(6))
            .execute(conn)
            .await
            .map(drop))?;
        }
        Ok(dead.into_iter().map(|(id, ..)| id).collect())
    }

    /// Deletes the project's dead invocations that `filter` takes (at most `limit`); returns
    /// how many.
    pub async fn purge_invocations(
        &mut self,
        project_id: ProjectId,
        filter: &DeadFilter,
        limit: u32,
    ) -> Result<u64> {
        let dead = self.dead_invocations(project_id, filter, limit).await?;
        for (id, ..) in &dead {
            on_tx!(self, conn => sqlx::query("DELETE FROM invocations WHERE id = $1")
                .bind(id)
                .execute(conn)
                .await
                .map(drop))?;
        }
        Ok(dead.len() as u64)
    }

    /// Id, function and attempts of the project's dead invocations that `filter` takes.
    async fn dead_invocations(
        &mut self,
        project_id: ProjectId,
        filter: &DeadFilter,
        limit: u32,
    ) -> Result<Vec<(InvocationId, FunctionId, i32)>> {
        match &filter.ids {
            None => Ok(on_tx!(self, conn => sqlx::query_as(
                "SELECT id, function_id, attempts FROM invocations WHERE project_id = $1 \
                 AND status = 'dead' AND ($2 IS NULL OR function_id = $2) \
                 ORDER BY created_at LIMIT $3",
            )
            .bind(project_id)
            .bind(filter.function_id)
            .bind(i64::from(limit))
            .fetch_all(conn)
            .await)?),
            Some(ids) => {
                let mut found = Vec::new();
                for id in ids.iter().take(limit as usize) {
                    let row: Option<(InvocationId, FunctionId, i32)> = on_tx!(self, conn =>
                        sqlx::query_as(
                            "SELECT id, function_id, attempts FROM invocations WHERE id = $1 \
                             AND project_id = $2 AND status = 'dead' \
                             AND ($3 IS NULL OR function_id = $3)",
                        )
                        .bind(id)
                        .bind(project_id)
                        .bind(filter.function_id)
                        .fetch_optional(conn)
                        .await)?;
                    found.extend(row);
                }
                Ok(found)
            }
        }
    }
}
