//! Asynchronous invocations: requests accepted now and run later, each with a retry budget, a
//! lease that carries an epoch, and the dead-letter list for those whose budget ran out.
//!
//! The row is the truth. Queues only announce ids; [`Tx::claim_invocation`] moves a queued row
//! to `running` under a new epoch, so an id announced twice starts one attempt, and
//! [`Tx::finish_invocation`] takes a result only from the epoch that is current, so a worker
//! that lost its lease (and whose attempt was given to another) cannot overwrite anything.

mod attempts;
mod dead_letters;
mod sweep;

pub use attempts::{MAX_BACKOFF, backoff};

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};

use crate::functions::AsyncRetry;
use crate::store::{TxInner, on_tx};
use crate::time::now;
use crate::{AgentId, Error, FunctionId, InvocationId, ProjectId, Result, Tx};

/// Where an invocation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvocationStatus {
    /// Waiting for its next attempt.
    Queued,
    /// An attempt is running under a lease.
    Running,
    /// The function answered (not with a 4xx or 5xx status).
    Succeeded,
    /// The function refused the request (4xx): not retried.
    Failed,
    /// Every attempt allowed failed, or it grew too old: on the dead-letter list.
    Dead,
}

impl InvocationStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Dead => "dead",
        }
    }

    /// Whether nothing more happens to it (unless it is redriven).
    pub fn is_final(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Dead)
    }
}

impl fmt::Display for InvocationStatus {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.as_str())
    }
}

impl FromStr for InvocationStatus {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text {
            "queued" => Ok(Self::Queued),
            "running" => Ok(Self::Running),
            "succeeded" => Ok(Self::Succeeded),
            "failed" => Ok(Self::Failed),
            "dead" => Ok(Self::Dead),
            other => Err(Error::Invalid {
                what: "invocation status",
                reason: format!("{other:?} is not queued, running, succeeded, failed or dead"),
            }),
        }
    }
}

/// A request as accepted, to be replayed for every attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRequest {
    /// The HTTP method.
    pub method: String,
    /// The path and query, as received.
    pub uri: String,
    /// The mount prefix (`/{project}/{function}`) the function does not see.
    pub prefix: String,
    /// The headers, as `name: value\r\n` lines.
    pub headers: Vec<u8>,
    /// The body.
    pub body: Vec<u8>,
    /// The client's address.
    pub client: String,
}

/// What the function answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResult {
    /// The HTTP status.
    pub status: i32,
    /// The headers, as `name: value\r\n` lines.
    pub headers: Vec<u8>,
    /// The body, up to the size the coordinator keeps.
    pub body: Vec<u8>,
    /// The body's whole size: more than `body.len()` when it was cut.
    pub size: i64,
}

/// What [`Tx::enqueue_invocation`] needs.
#[derive(Debug, Clone)]
pub struct NewInvocation {
    /// Chosen by the caller, so that it can answer with it at once.
    pub id: InvocationId,
    /// The project.
    pub project_id: ProjectId,
    /// The function.
    pub function_id: FunctionId,
    /// The version every attempt runs.
    pub version: i64,
    /// The agent it is a message to.
    pub agent_id: Option<AgentId>,
    /// The client's key: the same key in the project within the idempotency window names the
    /// first invocation instead of a new one.
    pub idempotency_key: Option<String>,
    /// The function's retry policy at acceptance.
    pub retry: AsyncRetry,
    /// The request.
    pub request: StoredRequest,
}

/// What [`Tx::enqueue_invocation`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enqueued {
    /// The invocation: the new one, or the first one with the same idempotency key.
    pub id: InvocationId,
    /// Its status.
    pub status: InvocationStatus,
    /// `false` when the idempotency key named an earlier invocation.
    pub created: bool,
}

/// An invocation as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvocationRecord {
    /// Its id.
    pub id: InvocationId,
    /// Its project.
    pub project_id: ProjectId,
    /// Its function.
    pub function_id: FunctionId,
    /// The function's name.
    pub function: String,
    /// The version it runs.
    pub version: i64,
    /// The agent it is a message to.
    pub agent_id: Option<AgentId>,
    /// Where it stands.
    pub status: InvocationStatus,
    /// The client's idempotency key.
    pub idempotency_key: Option<String>,
    /// Attempts made so far.
    pub attempts: i32,
    /// Attempts allowed in all.
    pub max_attempts: i32,
    /// The epoch of its latest claim.
    pub epoch: i64,
    /// No attempt starts before this.
    pub run_at: DateTime<Utc>,
    /// No attempt starts after this.
    pub expires_at: DateTime<Utc>,
    /// The request.
    pub request: StoredRequest,
    /// The latest attempt's answer, when the function gave one.
    pub result: Option<StoredResult>,
    /// Why the latest attempt failed.
    pub error: Option<String>,
    /// When it was accepted.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When it reached a final status.
    pub finished_at: Option<DateTime<Utc>>,
}

/// One attempt, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Attempt {
    /// 1, 2, 3…
    pub attempt: i32,
    /// The epoch of its claim.
    pub epoch: i64,
    /// Where it ran, when known.
    pub node: Option<String>,
    /// `running`, `succeeded`, `failed`, `error` or `lost`.
    pub status: String,
    /// The function's HTTP status, when it answered.
    pub http_status: Option<i32>,
    /// Why it failed.
    pub error: Option<String>,
    /// When it was claimed.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// What the guest wrote to stdout, when it wrote anything and it was handed over.
    pub stdout: Option<String>,
    /// What the guest wrote to stderr.
    pub stderr: Option<String>,
    /// Whether the runtime cut either at its cap.
    pub output_truncated: bool,
}

/// What [`Tx::claim_invocation`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The attempt is the caller's, under `epoch`.
    Claimed(ClaimedInvocation),
    /// It waits for a retry time still to come.
    NotDue,
    /// It is running elsewhere, finished or gone: nothing to do.
    Gone,
    /// It was too old for another attempt and is now dead.
    Expired(InvocationRecord),
}

/// An attempt the caller now runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedInvocation {
    /// The invocation, as claimed.
    pub record: InvocationRecord,
    /// The claim's epoch: pass it to [`Tx::finish_invocation`].
    pub epoch: i64,
    /// The attempt's number.
    pub attempt: i32,
}

/// How an attempt ended, as the coordinator judges it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The function answered; the invocation succeeded.
    Succeeded,
    /// The function refused the request; retrying would not help.
    Failed,
    /// The attempt failed in a way another attempt may not: retry while the budget lasts.
    Retry,
}

/// What a worker reports of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptReport {
    /// How it ended.
    pub verdict: Verdict,
    /// Where it ran, when known.
    pub node: Option<String>,
    /// The function's answer, when it gave one.
    pub result: Option<StoredResult>,
    /// Why it failed.
    pub error: Option<String>,
    /// What the guest wrote, when it was handed over.
    pub output: Option<GuestOutput>,
}

/// What a guest wrote to stdout and stderr in one attempt.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GuestOutput {
    /// Its stdout, as text.
    pub stdout: String,
    /// Its stderr, as text.
    pub stderr: String,
    /// Whether either was cut at its runtime's cap.
    pub truncated: bool,
}

/// What [`Tx::finish_invocation`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    /// The epoch is no longer current (the lease was lost and the attempt given to another):
    /// the report was refused and nothing changed.
    Stale,
    /// The invocation reached `succeeded` or `failed`.
    Done(InvocationRecord),
    /// Another attempt starts at `run_at`.
    Retrying {
        /// When.
        run_at: DateTime<Utc>,
    },
    /// The budget is spent: the invocation is dead.
    Dead(InvocationRecord),
}

/// What [`Tx::reap_invocations`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reaped {
    /// Queued invocations due for an announcement (their `due_at` has been moved on).
    pub announce: Vec<InvocationId>,
    /// Attempts whose lease expired and that will be retried.
    pub lost: usize,
    /// Invocations that died, their last lease having expired.
    pub dead: Vec<InvocationRecord>,
}

/// What the sweep found to do ([`Tx::sweepable_invocations`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sweepable {
    /// Running invocations whose lease expired.
    pub expired: Vec<InvocationId>,
    /// Queued invocations due for another announcement.
    pub due: Vec<InvocationId>,
}

/// Which dead invocations of a project [`Tx::redrive_invocations`] and
/// [`Tx::purge_invocations`] take.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeadFilter {
    /// Only the function's.
    pub function_id: Option<FunctionId>,
    /// Only these (all of the project's when `None`).
    pub ids: Option<Vec<InvocationId>>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct InvocationRow {
    id: InvocationId,
    project_id: ProjectId,
    function_id: FunctionId,
    function: String,
    version: i64,
    agent_id: Option<AgentId>,
    status: String,
    idempotency_key: Option<String>,
    attempts: i32,
    max_attempts: i32,
    backoff_ms: i64,
    epoch: i64,
    run_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    method: String,
    uri: String,
    prefix: String,
    request_headers: Vec<u8>,
    request_body: Vec<u8>,
    client: String,
    result_status: Option<i32>,
    result_headers: Option<Vec<u8>>,
    result_body: Option<Vec<u8>>,
    result_size: Option<i64>,
    error: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    finished_at: Option<DateTime<Utc>>,
}

impl InvocationRow {
    pub(crate) fn into_record(self) -> Result<(InvocationRecord, i64)> {
        let result = match (self.result_status, self.result_headers, self.result_body) {
            (Some(status), Some(headers), Some(body)) => Some(StoredResult {
                status,
                size: self.result_size.unwrap_or(body.len() as i64),
                headers,
                body,
            }),
            _ => None,
        };
        let record = InvocationRecord {
            id: self.id,
            project_id: self.project_id,
            function_id: self.function_id,
            function: self.function,
            version: self.version,
            agent_id: self.agent_id,
            status: self.status.parse().map_err(|error: Error| {
                Error::corrupt("invocations", format!("invocation {}: {error}", self.id))
            })?,
            idempotency_key: self.idempotency_key,
            attempts: self.attempts,
            max_attempts: self.max_attempts,
            epoch: self.epoch,
            run_at: self.run_at,
            expires_at: self.expires_at,
            request: StoredRequest {
                method: self.method,
                uri: self.uri,
                prefix: self.prefix,
                headers: self.request_headers,
                body: self.request_body,
                client: self.client,
            },
            result,
            error: self.error,
            created_at: self.created_at,
            updated_at: self.updated_at,
            finished_at: self.finished_at,
        };
        Ok((record, self.backoff_ms))
    }
}

macro_rules! select_invocations {
    ($condition:literal) => {
        concat!(
            "SELECT i.id, i.project_id, i.function_id, f.name AS function, i.version, \
             i.agent_id, i.status, i.idempotency_key, i.attempts, i.max_attempts, \
             i.backoff_ms, i.epoch, i.run_at, i.expires_at, i.method, i.uri, i.prefix, \
             i.request_headers, i.request_body, i.client, i.result_status, i.result_headers, \
             i.result_body, i.result_size, i.error, i.created_at, i.updated_at, \
             i.finished_at FROM invocations i JOIN functions f ON f.id = i.function_id ",
            $condition
        )
    };
}

pub(crate) fn after(at: DateTime<Utc>, wait: Duration) -> DateTime<Utc> {
    (at + TimeDelta::from_std(wait).unwrap_or(TimeDelta::MAX))
        .trunc_subsecs(6)
        .min(DateTime::<Utc>::MAX_UTC)
}

/// Rows one `INSERT` writes at most (22 values each: SQLite takes 32,766 per statement).
const INSERT_CHUNK: usize = 256;

impl Tx<'_> {
    /// Records a queued invocation, announced again at `redeliver_at` unless claimed by then.
    /// With an idempotency key that the project used for an invocation accepted after
    /// `fresh_since`, nothing is recorded and that invocation is returned; an older use of the
    /// key is forgotten.
    pub async fn enqueue_invocation(
        &mut self,
        new: &NewInvocation,
        fresh_since: DateTime<Utc>,
        redeliver_at: DateTime<Utc>,
    ) -> Result<Enqueued> {
        let mut enqueued = self
            .enqueue_invocations(&[new], fresh_since, redeliver_at)
            .await?;
        enqueued.pop().ok_or_else(|| Error::not_found("invocation"))
    }

    /// [`Tx::enqueue_invocation`] for each of `news`, in order, with the new rows written by
    /// a few multi-row statements: what a batch of accepts costs is a round trip or two, not
    /// one per invocation. A key used twice in `news` names the first.
    pub async fn enqueue_invocations(
        &mut self,
        news: &[&NewInvocation],
        fresh_since: DateTime<Utc>,
        redeliver_at: DateTime<Utc>,
    ) -> Result<Vec<Enqueued>> {
        let mut answers = Vec::with_capacity(news.len());
        let mut fresh = Vec::with_capacity(news.len());
        let mut keys_here = std::collections::HashMap::new();
        for new in news {
            if let Some(key) = &new.idempotency_key {
                if let Some(&id) = keys_here.get(&(new.project_id, key.as_str())) {
                    answers.push(Enqueued {
                        id,
                        status: InvocationStatus::Queued,
                        created: false,
                    });
                    continue;
                }
                if let Some(earlier) = self.earlier_use(new.project_id, key, fresh_since).await? {
                    answers.push(earlier);
                    continue;
                }
                keys_here.insert((new.project_id, key.as_str()), new.id);
            }
            answers.push(Enqueued {
                id: new.id,
                status: InvocationStatus::Queued,
                created: true,
            });
            fresh.push(*new);
        }
        let now = now();
        let redeliver_at = redeliver_at.trunc_subsecs(6);
        for chunk in fresh.chunks(INSERT_CHUNK) {
            on_tx!(self, conn => {
                let mut insert = sqlx::QueryBuilder::new(
                    "INSERT INTO invocations (id, project_id, function_id, version, agent_id, \
                     status, idempotency_key, attempts, max_attempts, backoff_ms, expires_at, \
                     epoch, run_at, due_at, method, uri, prefix, request_headers, request_body, \
                     client, created_at, updated_at) ",
                );
                insert.push_values(chunk, |mut row, new| {
                    let expires_at = after(
                        now,
                        Duration::from_millis(u64::try_from(new.retry.max_age_ms).unwrap_or(0)),
                    );
                    row.push_bind(new.id)
                        .push_bind(new.project_id)
                        .push_bind(new.function_id)
                        .push_bind(new.version)
                        .push_bind(new.agent_id)
                        .push_bind(InvocationStatus::Queued.as_str())
                        .push_bind(new.idempotency_key.as_deref())
                        .push_bind(0_i32)
                        .push_bind(new.retry.max_attempts.max(1))
                        .push_bind(new.retry.backoff_ms.max(0))
                        .push_bind(expires_at)
                        .push_bind(0_i64)
                        .push_bind(now)
                        .push_bind(redeliver_at)
                        .push_bind(new.request.method.as_str())
                        .push_bind(new.request.uri.as_str())
                        .push_bind(new.request.prefix.as_str())
                        .push_bind(new.request.headers.as_slice())
                        .push_bind(new.request.body.as_slice())
                        .push_bind(new.request.client.as_str())
                        .push_bind(now)
                        .push_bind(now);
                });
                insert.build().execute(conn).await.map(drop)
            })?;
        }
        Ok(answers)
    }

    /// The invocation that used `key` in the project after `fresh_since`; an older use of the
    /// key is forgotten.
    async fn earlier_use(
        &mut self,
        project_id: ProjectId,
        key: &str,
        fresh_since: DateTime<Utc>,
    ) -> Result<Option<Enqueued>> {
        let earlier: Option<(InvocationId, String, DateTime<Utc>)> = on_tx!(self, conn =>
            sqlx::query_as(
                "SELECT id, status, created_at FROM invocations \
                 WHERE project_id = $1 AND idempotency_key = $2",
            )
            .bind(project_id)
            .bind(key)
            .fetch_optional(conn)
            .await)?;
        let Some((id, status, created_at)) = earlier else {
            return Ok(None);
        };
        if created_at > fresh_since {
            return Ok(Some(Enqueued {
                id,
                status: status.parse()?,
                created: false,
            }));
        }
        on_tx!(self, conn => sqlx::query(
            "UPDATE invocations SET idempotency_key = NULL WHERE id = $1",
        )
        .bind(id)
        .execute(conn)
        .await
        .map(drop))?;
        Ok(None)
    }

    /// The invocation with this id. [`Error::NotFound`] if there is none.
    pub async fn get_invocation(&mut self, id: InvocationId) -> Result<InvocationRecord> {
        Ok(self.invocation_row(id).await?.0)
    }

    pub(crate) async fn invocation_row(
        &mut self,
        id: InvocationId,
    ) -> Result<(InvocationRecord, i64)> {
        let row: Option<InvocationRow> = on_tx!(self, conn => sqlx::query_as(
            select_invocations!("WHERE i.id = $1")
        )
        .bind(id)
        .fetch_optional(conn)
        .await)?;
        row.ok_or_else(|| Error::not_found("invocation"))?
            .into_record()
    }

    /// [`Tx::invocation_row`], the row locked until the transaction ends: for reading a row in
    /// order to change it, as [`Store::with_retry_row_locking`] needs. SQLite has one writer
    /// at a time and no row locks.
    ///
    /// [`Store::with_retry_row_locking`]: crate::Store::with_retry_row_locking
    pub(crate) async fn locked_invocation_row(
        &mut self,
        id: InvocationId,
    ) -> Result<(InvocationRecord, i64)> {
        let row: Option<InvocationRow> = match &mut self.inner {
            TxInner::Sqlite(transaction) => {
                sqlx::query_as(select_invocations!("WHERE i.id = $1"))
                    .bind(id)
                    .fetch_optional(&mut **transaction)
                    .await?
            }
            TxInner::Postgres(transaction) => {
                sqlx::query_as(select_invocations!("WHERE i.id = $1 FOR UPDATE OF i"))
                    .bind(id)
                    .fetch_optional(&mut **transaction)
                    .await?
            }
        };
        row.ok_or_else(|| Error::not_found("invocation"))?
            .into_record()
    }

    /// The invocation's attempts, first first.
    pub async fn list_invocation_attempts(&mut self, id: InvocationId) -> Result<Vec<Attempt>> {
        Ok(on_tx!(self, conn => sqlx::query_as(
            "SELECT attempt, epoch, node, status, http_status, error, started_at, finished_at, \
             stdout, stderr, output_truncated \
             FROM invocation_attempts WHERE invocation_id = $1 ORDER BY attempt",
        )
        .bind(id)
        .fetch_all(conn)
        .await)?)
    }

    /// Up to `limit` of the project's invocations, newest first, optionally only those with
    /// `status` or of one function, after the cursor `before` (the creation time and id of
    /// the last one of the previous page).
    pub async fn list_invocations(
        &mut self,
        project_id: ProjectId,
        status: Option<InvocationStatus>,
        function_id: Option<FunctionId>,
        before: Option<(DateTime<Utc>, InvocationId)>,
        limit: u32,
    ) -> Result<Vec<InvocationRecord>> {
        // Only the conditions given: `$n IS NULL OR …` would keep a prepared statement's
        // generic plan off the indexes.
        let rows: Vec<InvocationRow> = on_tx!(self, conn => {
            let mut query = sqlx::QueryBuilder::new(select_invocations!("WHERE i.project_id = "));
            query.push_bind(project_id);
            if let Some(status) = status {
                query.push(" AND i.status = ").push_bind(status.as_str());
            }
            if let Some(function_id) = function_id {
                query.push(" AND i.function_id = ").push_bind(function_id);
            }
            if let Some((at, id)) = before {
                query
                    .push(" AND (i.created_at < ")
                    .push_bind(at)
                    .push(" OR (i.created_at = ")
                    .push_bind(at)
                    .push(" AND i.id < ")
                    .push_bind(id)
                    .push("))");
            }
            query
                .push(" ORDER BY i.created_at DESC, i.id DESC LIMIT ")
                .push_bind(i64::from(limit));
            query.build_query_as().fetch_all(conn).await
        })?;
        rows.into_iter()
            .map(|row| row.into_record().map(|(record, _)| record))
            .collect()
    }
}
