//! Asynchronous invocations: a request accepted now (`202` and an id only once its row is
//! committed), run later by a worker under a lease, retried with exponential backoff and
//! jitter within its function's budget, then kept on the dead-letter list for `redrive` or
//! `purge`.
//!
//! Accepts are committed in batches: concurrent requests share one transaction, so the
//! database's commit latency is paid once per batch rather than once per request. After the
//! commit the ids are announced on an [`InvocationQueue`]; a [`worker`] on any coordinator
//! claims each in the database (the claim, not the queue, decides who runs an attempt), runs
//! it through the one dispatch path, and records the outcome under the claim's epoch. The
//! sweep on every coordinator re-announces what a queue lost and retries attempts whose
//! lease ran out.

mod batch;
mod forwarded;
pub mod queue;
mod redis_queue;
mod worker;

use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use chrono::{TimeDelta, Utc};
use nexus_store::{
    Attempt, DeadFilter, Enqueued, Finished, HolderId, InvocationId, InvocationRecord,
    InvocationStatus, NewInvocation, ProjectId, Store,
};

use crate::error::ApiError;
use crate::events::{EventBus, EventKind};
use crate::leader::Leadership;
use crate::metrics::Metrics;

use self::batch::Batcher;

pub use self::forwarded::{ForwardedBatch, ForwardedInvocation};
pub use self::queue::{InProcessQueue, InvocationQueue, QueueError};
pub use self::redis_queue::RedisQueue;
pub use self::worker::Runner;

/// The largest request body an asynchronous invocation keeps.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// The largest part of a function's response body an invocation keeps (its size is recorded
/// whole).
pub const MAX_RESULT_BYTES: usize = 1024 * 1024;
/// Accepts, or outcomes, committed in one transaction at most.
const MAX_BATCH: usize = 512;
/// Transactions committing accepts at once, each on a connection of its own.
const COMMITTERS: usize = 4;
/// Transactions recording attempts' outcomes at once.
const FINISHERS: usize = 2;
/// Accepts, or outcomes, waiting for a transaction at most; beyond, callers wait for room.
const MAX_WAITING: usize = 16 * 1024;
/// How long finished invocations are kept unless configured otherwise: a week.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Invocations listed per page unless the caller asks for another size.
pub const DEFAULT_PAGE: u32 = 50;
/// The most invocations one page, redrive or purge takes.
pub const MAX_PAGE: u32 = 1000;

/// How a coordinator runs asynchronous invocations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncConfig {
    /// Attempts this coordinator runs at once.
    pub workers: usize,
    /// How long a claim holds without being renewed (renewed every third of it).
    pub lease: Duration,
    /// How long an announced invocation may stay queued before it is announced again.
    pub redeliver_after: Duration,
    /// How often the sweep runs.
    pub sweep_every: Duration,
    /// How long an idempotency key names its first invocation.
    pub idempotency_window: Duration,
    /// How long a succeeded or failed invocation stays readable before the sweep deletes it;
    /// dead ones stay until they are redriven or purged.
    pub retention: Duration,
}

impl Default for AsyncConfig {
    fn default() -> Self {
        Self {
            workers: 64,
            lease: Duration::from_secs(10),
            redeliver_after: Duration::from_secs(30),
            sweep_every: Duration::from_millis(250),
            idempotency_window: Duration::from_secs(24 * 60 * 60),
            retention: DEFAULT_RETENTION,
        }
    }
}

/// Asynchronous invocations: accept, look up, list, redrive, purge; and the workers.
#[derive(Clone)]
pub struct InvocationService {
    shared: Arc<Shared>,
}

struct Shared {
    store: Arc<Store>,
    queue: Arc<dyn InvocationQueue>,
    events: Arc<dyn EventBus>,
    metrics: Arc<Metrics>,
    config: AsyncConfig,
    holder: HolderId,
    /// Accepts (with their function's name), committed in batches on connections of their
    /// own, so that a busy pool never delays a `202`.
    accepts: Batcher<(NewInvocation, String), Enqueued>,
    /// Attempts' outcomes, committed in batches.
    finishes: Batcher<worker::Finish, Finished>,
}

impl InvocationService {
    /// The service over `store`, announcing on `queue` and publishing on `events`. Starts the
    /// tasks that commit accepts, so it must be called within a Tokio runtime; workers start
    /// with [`InvocationService::start`].
    pub fn new(
        store: Arc<Store>,
        queue: Arc<dyn InvocationQueue>,
        events: Arc<dyn EventBus>,
        metrics: Arc<Metrics>,
        config: AsyncConfig,
    ) -> Self {
        let shared = Arc::new_cyclic(|weak: &Weak<Shared>| {
            let accepts_store = Arc::new(store.with_own_pool(COMMITTERS as u32));
            let shared = Weak::clone(weak);
            let accepts = Batcher::start(COMMITTERS, MAX_BATCH, MAX_WAITING, move |batch| {
                let (shared, store) = (shared.upgrade(), Arc::clone(&accepts_store));
                async move {
                    let shared = shared.ok_or_else(shutting_down)?;
                    commit_accepts(&shared, &store, batch).await
                }
            });
            let shared = Weak::clone(weak);
            let finishes = Batcher::start(FINISHERS, MAX_BATCH, MAX_WAITING, move |batch| {
                let shared = shared.upgrade();
                async move {
                    let shared = shared.ok_or_else(shutting_down)?;
                    worker::commit_finishes(&shared, batch).await
                }
            });
            Shared {
                store,
                queue,
                events,
                metrics,
                config,
                holder: HolderId::new(),
                accepts,
                finishes,
            }
        });
        Self { shared }
    }

    /// Starts this coordinator's workers, which run attempts through `runner`, and the sweep,
    /// which runs while this replica leads.
    pub fn start(&self, runner: Runner, leadership: Leadership) {
        worker::start(Arc::clone(&self.shared), runner, leadership);
    }

    /// Records `new` (of the function named `function`) as queued and announces it; returns
    /// once it is committed. With an idempotency key the project used within the window,
    /// returns that invocation instead.
    pub async fn accept(&self, new: NewInvocation, function: String) -> Result<Enqueued, ApiError> {
        self.shared.accepts.submit((new, function)).await
    }

    /// The invocation `id` with its attempts.
    pub async fn get(
        &self,
        id: InvocationId,
    ) -> Result<(InvocationRecord, Vec<Attempt>), ApiError> {
        Ok(self
            .shared
            .store
            .with_retry(|tx| {
                Box::pin(async move {
                    let record = tx.get_invocation(id).await?;
                    let attempts = tx.list_invocation_attempts(id).await?;
                    Ok((record, attempts))
                })
            })
            .await?)
    }

    /// Up to `limit` of the project's invocations, newest first, filtered by status and
    /// function, after the cursor `before`.
    pub async fn list(
        &self,
        project: ProjectId,
        status: Option<InvocationStatus>,
        function: Option<&str>,
        before: Option<&str>,
        limit: u32,
    ) -> Result<(Vec<InvocationRecord>, Option<String>), ApiError> {
        if limit == 0 || limit > MAX_PAGE {
            return Err(ApiError::bad_request(format!(
                "limit must be 1 to {MAX_PAGE}"
            )));
        }
        let before = before.map(parse_cursor).transpose()?;
        let function = function.map(str::to_owned);
        let records = self
            .shared
            .store
            .with_retry(|tx| {
                let function = function.clone();
                Box::pin(async move {
                    let function_id = match &function {
                        Some(name) => Some(tx.get_function(project, name).await?.id),
                        None => None,
                    };
                    tx.list_invocations(project, status, function_id, before, limit)
                        .await
                })
            })
            .await?;
        let next = (records.len() == limit as usize)
            .then(|| records.last().map(cursor))
            .flatten();
        Ok((records, next))
    }

    /// Queues the project's dead invocations that the filter takes again, each with a fresh
    /// budget from its function's policy, and announces them; returns their ids.
    pub async fn redrive(
        &self,
        project: ProjectId,
        function: Option<&str>,
        ids: Option<Vec<InvocationId>>,
    ) -> Result<Vec<InvocationId>, ApiError> {
        let redeliver_at = self.shared.redeliver_at();
        let function = function.map(str::to_owned);
        let redriven = self
            .shared
            .store
            .with_retry(|tx| {
                let (function, ids) = (function.clone(), ids.clone());
                Box::pin(async move {
                    let filter = dead_filter(tx, project, function.as_deref(), ids).await?;
                    tx.redrive_invocations(project, &filter, MAX_PAGE, redeliver_at)
                        .await
                })
            })
            .await?;
        self.shared.announce(redriven.clone()).await;
        Ok(redriven)
    }

    /// Deletes the project's dead invocations that the filter takes; returns how many.
    pub async fn purge(
        &self,
        project: ProjectId,
        function: Option<&str>,
        ids: Option<Vec<InvocationId>>,
    ) -> Result<u64, ApiError> {
        let function = function.map(str::to_owned);
        Ok(self
            .shared
            .store
            .with_retry(|tx| {
                let (function, ids) = (function.clone(), ids.clone());
                Box::pin(async move {
                    let filter = dead_filter(tx, project, function.as_deref(), ids).await?;
                    tx.purge_invocations(project, &filter, MAX_PAGE).await
                })
            })
            .await?)
    }

    /// For [`nexus_store::Tx::enqueue_invocation`] now: since when an idempotency key still
    /// names its invocation, and when an invocation not yet claimed is announced again.
    pub fn windows(&self) -> (chrono::DateTime<Utc>, chrono::DateTime<Utc>) {
        self.shared.windows()
    }

    /// Publishes and announces `new` (of the function named `function`), recorded by the
    /// caller's own transaction.
    pub async fn announce_accepted(&self, new: &NewInvocation, function: &str) {
        self.shared.publish_queued(new, function.to_owned());
        self.shared.announce(vec![new.id]).await;
    }
}

impl Shared {
    fn redeliver_at(&self) -> chrono::DateTime<Utc> {
        Utc::now() + TimeDelta::from_std(self.config.redeliver_after).unwrap_or(TimeDelta::MAX)
    }

    fn windows(&self) -> (chrono::DateTime<Utc>, chrono::DateTime<Utc>) {
        let window = TimeDelta::from_std(self.config.idempotency_window).unwrap_or(TimeDelta::MAX);
        (Utc::now() - window, self.redeliver_at())
    }

    fn publish_queued(&self, new: &NewInvocation, function: String) {
        self.events.publish(EventKind::InvocationQueued {
            project: new.project_id.to_string(),
            function,
            agent: new.agent_id.map(|agent| agent.to_string()),
            invocation: new.id.to_string(),
        });
    }

    /// Announces `ids`; when the queue cannot take them the sweep announces them once due.
    async fn announce(&self, ids: Vec<InvocationId>) {
        if ids.is_empty() {
            return;
        }
        if let Err(error) = self.queue.push(ids).await {
            tracing::warn!(%error, "could not announce invocations; the sweep will");
        }
    }

    fn publish_dead(&self, record: &InvocationRecord) {
        self.metrics
            .dead_lettered(&record.project_id.to_string(), &record.function);
        self.events.publish(EventKind::InvocationDead {
            project: record.project_id.to_string(),
            function: record.function.clone(),
            agent: record.agent_id.map(|agent| agent.to_string()),
            invocation: record.id.to_string(),
            error: record.error.clone().unwrap_or_default(),
        });
    }
}

async fn dead_filter(
    tx: &mut nexus_store::Tx<'_>,
    project: ProjectId,
    function: Option<&str>,
    ids: Option<Vec<InvocationId>>,
) -> nexus_store::Result<DeadFilter> {
    let function_id = match function {
        Some(name) => Some(tx.get_function(project, name).await?.id),
        None => None,
    };
    Ok(DeadFilter { function_id, ids })
}

fn shutting_down() -> ApiError {
    ApiError::unavailable("the coordinator is shutting down")
}

/// Records a batch of accepts in one transaction on `store`, then publishes and announces
/// those that are new.
async fn commit_accepts(
    shared: &Shared,
    store: &Store,
    batch: Vec<(NewInvocation, String)>,
) -> Result<Vec<Enqueued>, ApiError> {
    let (fresh_since, redeliver_at) = shared.windows();
    let news: Vec<&NewInvocation> = batch.iter().map(|(new, _)| new).collect();
    let enqueued = store
        .with_retry(|tx| {
            let news = &news;
            Box::pin(async move {
                tx.enqueue_invocations(news, fresh_since, redeliver_at)
                    .await
            })
        })
        .await?;
    let mut created = Vec::with_capacity(enqueued.len());
    for ((new, function), enqueued) in batch.into_iter().zip(&enqueued) {
        if enqueued.created {
            created.push(enqueued.id);
            shared.publish_queued(&new, function);
        }
    }
    shared.announce(created).await;
    Ok(enqueued)
}

/// A page cursor: the creation time (microseconds since the epoch) and id of the last entry.
fn cursor(record: &InvocationRecord) -> String {
    format!("{}.{}", record.created_at.timestamp_micros(), record.id)
}

fn parse_cursor(text: &str) -> Result<(chrono::DateTime<Utc>, InvocationId), ApiError> {
    let invalid = || ApiError::bad_request("before is not a cursor this API returned");
    let (micros, id) = text.split_once('.').ok_or_else(invalid)?;
    let at = chrono::DateTime::from_timestamp_micros(micros.parse().map_err(|_| invalid())?)
        .ok_or_else(invalid)?;
    Ok((at, InvocationId(id.parse().map_err(|_| invalid())?)))
}

/// Headers as `name: value\r\n` lines: every byte of every value kept, in order.
pub fn encode_headers(headers: &HeaderMap) -> Vec<u8> {
    let mut encoded = Vec::new();
    for (name, value) in headers {
        encoded.extend_from_slice(name.as_str().as_bytes());
        encoded.extend_from_slice(b": ");
        encoded.extend_from_slice(value.as_bytes());
        encoded.extend_from_slice(b"\r\n");
    }
    encoded
}

/// The headers [`encode_headers`] wrote; a line that is not a header is skipped.
pub fn decode_headers(encoded: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in encoded.split(|&byte| byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&byte| byte == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_round_trip_with_every_byte_and_repeat() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", HeaderValue::from_static("one"));
        headers.append("x-a", HeaderValue::from_static("two: with colon"));
        headers.append("x-bin", HeaderValue::from_bytes(b"\xff\xfe ").unwrap());
        headers.append("x-empty", HeaderValue::from_static(""));
        assert_eq!(decode_headers(&encode_headers(&headers)), headers);
    }

    #[test]
    fn cursors_round_trip_and_nonsense_is_refused() {
        let id = InvocationId::new();
        let at = chrono::DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        let text = format!("{}.{id}", at.timestamp_micros());
        assert_eq!(parse_cursor(&text).unwrap(), (at, id));
        assert!(parse_cursor("nonsense").is_err());
        assert!(parse_cursor("12.not-a-uuid").is_err());
    }
}
