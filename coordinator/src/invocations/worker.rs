//! The workers: take announced ids from the queue, claim each in the database, run the attempt
//! through the one dispatch path while renewing the claim's lease, and record the outcome
//! under the claim's epoch. And the sweep, which re-announces what is due and retries
//! attempts whose lease expired (their coordinator died).

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, Response, StatusCode};
use chrono::{TimeDelta, Utc};
use http_body_util::BodyExt as _;
use nexus_runtime::LogSink;
use nexus_store::{
    AttemptReport, Claim, ClaimedInvocation, Finished, Function, FunctionId, GuestOutput,
    InvocationId, InvocationRecord, StoredResult, Sweepable, Verdict,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tracing::Instrument as _;

use super::queue::Delivery;
use super::{MAX_RESULT_BYTES, Shared, decode_headers, encode_headers};
use crate::agents::AgentService;
use crate::cluster::dispatch::NODE_HEADER;
use crate::dispatch::{AsyncInvocationId, Dispatch, Invocation};
use crate::error::ApiError;
use crate::events::EventKind;
use crate::leader::Leadership;
use crate::trigger::Resolver;

/// Ids taken from the queue at once at most.
const PULL_BATCH: usize = 256;
/// How long an attempt's guest output is waited for once its response has been read.
const OUTPUT_WAIT: Duration = Duration::from_secs(2);
/// Invocations claimed in one transaction at most.
const CLAIM_BATCH: usize = 64;
/// The wait before asking an unreachable queue or database again.
const RETRY: Duration = Duration::from_millis(500);
/// Invocations one sweep takes at most of each kind.
const SWEEP_LIMIT: u32 = 1000;
/// How often finished invocations past their retention are deleted.
const RETENTION_EVERY: Duration = Duration::from_secs(60);
/// Invocations one transaction of the sweep changes at most.
const SWEEP_CHUNK: usize = 64;
/// The longest an attempt may take, the reading of the function's response included.
pub const MAX_ATTEMPT: Duration = Duration::from_secs(15 * 60);
/// The most of a response body read to learn its size.
const MAX_COUNTED_BYTES: u64 = 256 * 1024 * 1024;

/// What runs an attempt: the same resolution, dispatch and agents as a request does.
#[derive(Clone)]
pub struct Runner {
    /// Versions by function and number.
    pub triggers: Arc<Resolver>,
    /// Where invocations run.
    pub dispatch: Arc<dyn Dispatch>,
    /// Messages to agents go through their mailboxes.
    pub agents: AgentService,
}

/// An attempt's outcome to record under its claim's epoch.
pub(super) struct Finish {
    id: InvocationId,
    epoch: i64,
    report: AttemptReport,
    jitter: f64,
}

pub(super) fn start(shared: Arc<Shared>, runner: Runner, leadership: Leadership) {
    let (acks, pending_acks) = mpsc::unbounded_channel();
    tokio::spawn(acknowledge(Arc::clone(&shared), pending_acks));
    tokio::spawn(pull(Arc::clone(&shared), runner, acks));
    tokio::spawn(sweep(shared, leadership));
}

/// Takes announcements while there is a free worker, and claims them in batches.
async fn pull(shared: Arc<Shared>, runner: Runner, acks: mpsc::UnboundedSender<Delivery>) {
    let workers = Arc::new(Semaphore::new(shared.config.workers.max(1)));
    loop {
        let Ok(first) = Arc::clone(&workers).acquire_owned().await else {
            return;
        };
        let room = (workers.available_permits() + 1).min(PULL_BATCH);
        let deliveries = match shared.queue.pull(room).await {
            Ok(deliveries) => deliveries,
            Err(error) => {
                tracing::warn!(%error, "could not take invocations from the queue");
                tokio::time::sleep(RETRY).await;
                continue;
            }
        };
        let mut permits = Vec::with_capacity(deliveries.len());
        permits.push(first);
        while permits.len() < deliveries.len() {
            match Arc::clone(&workers).acquire_owned().await {
                Ok(worker) => permits.push(worker),
                Err(_) => return,
            }
        }
        let mut deliveries = deliveries.into_iter();
        loop {
            let chunk: Vec<Delivery> = deliveries.by_ref().take(CLAIM_BATCH).collect();
            if chunk.is_empty() {
                break;
            }
            let workers = permits.split_off(permits.len().saturating_sub(chunk.len()));
            let (shared, runner, acks) = (Arc::clone(&shared), runner.clone(), acks.clone());
            tokio::spawn(async move { claim(shared, runner, chunk, workers, &acks).await });
        }
    }
}

/// Acknowledges deliveries in batches.
async fn acknowledge(shared: Arc<Shared>, mut pending: mpsc::UnboundedReceiver<Delivery>) {
    let mut batch = Vec::new();
    while pending.recv_many(&mut batch, PULL_BATCH).await > 0 {
        if let Err(error) = shared.queue.ack(std::mem::take(&mut batch)).await {
            tracing::warn!(%error, "could not acknowledge invocations; they may be delivered again");
        }
    }
}

/// Claims the announced invocations in one transaction, reading their functions in it too,
/// and starts an attempt on a worker of `workers` for each claimed.
async fn claim(
    shared: Arc<Shared>,
    runner: Runner,
    deliveries: Vec<Delivery>,
    workers: Vec<OwnedSemaphorePermit>,
    acks: &mpsc::UnboundedSender<Delivery>,
) {
    let (holder, lease) = (shared.holder, shared.config.lease);
    // In one order, so that two batches sharing ids cannot deadlock on their row locks.
    let mut ids: Vec<InvocationId> = deliveries.iter().map(|delivery| delivery.id).collect();
    ids.sort_unstable();
    let claimed = shared
        .store
        .with_retry_row_locking(|tx| {
            let ids = &ids;
            Box::pin(async move {
                let mut claims = Vec::with_capacity(ids.len());
                let mut functions: HashMap<FunctionId, Arc<Function>> = HashMap::new();
                for &id in ids {
                    let claim = tx.claim_invocation(id, holder, lease).await?;
                    let function =
                        match &claim {
                            Claim::Claimed(claimed) => {
                                let function_id = claimed.record.function_id;
                                Some(match functions.entry(function_id) {
                                    Entry::Occupied(found) => Arc::clone(found.get()),
                                    Entry::Vacant(slot) => Arc::clone(slot.insert(Arc::new(
                                        tx.get_function_by_id(function_id).await?,
                                    ))),
                                })
                            }
                            _ => None,
                        };
                    claims.push((claim, function));
                }
                Ok(claims)
            })
        })
        .await;
    // The rows now say what happens; the announcements have done their work either way.
    for delivery in deliveries {
        let _ = acks.send(delivery);
    }
    let claims = match claimed {
        Ok(claimed) => claimed,
        Err(error) => {
            tracing::warn!(%error, invocations = ids.len(), "could not claim; the sweep announces them again");
            return;
        }
    };
    for ((claim, function), worker) in claims.into_iter().zip(workers) {
        match (claim, function) {
            (Claim::Claimed(claimed), Some(function)) => {
                let (shared, runner) = (Arc::clone(&shared), runner.clone());
                tokio::spawn(async move {
                    attempt(&shared, &runner, claimed, &function).await;
                    drop(worker);
                });
            }
            (Claim::Expired(record), _) => shared.publish_dead(&record),
            _ => {}
        }
    }
}

async fn attempt(
    shared: &Shared,
    runner: &Runner,
    claimed: ClaimedInvocation,
    function: &Function,
) {
    let ClaimedInvocation {
        record,
        epoch,
        attempt,
        ..
    } = claimed;
    shared.events.publish(EventKind::InvocationStarted {
        project: record.project_id.to_string(),
        function: record.function.clone(),
        agent: record.agent_id.map(|agent| agent.to_string()),
        invocation: record.id.to_string(),
        attempt,
    });
    let report = tokio::select! {
        report = runner.run(&record, function) => report,
        () = keep_lease(shared, &record, epoch) => {
            tracing::warn!(invocation = %record.id, attempt, "lost the lease; the attempt was dropped");
            return;
        }
    };
    let id = record.id;
    let finished = shared
        .finishes
        .submit(Finish {
            id,
            epoch,
            report,
            jitter: jitter(),
        })
        .await;
    match finished {
        Ok(Finished::Done(record)) => shared.events.publish(EventKind::InvocationFinished {
            project: record.project_id.to_string(),
            function: record.function.clone(),
            agent: record.agent_id.map(|agent| agent.to_string()),
            invocation: Some(record.id.to_string()),
            status: record
                .result
                .as_ref()
                .and_then(|result| u16::try_from(result.status).ok())
                .unwrap_or(0),
            version: None,
            target: None,
            duration_us: None,
            node: None,
        }),
        Ok(Finished::Dead(record)) => shared.publish_dead(&record),
        Ok(Finished::Retrying { run_at }) => {
            shared
                .metrics
                .retried(&record.project_id.to_string(), &record.function);
            tracing::debug!(invocation = %id, attempt, %run_at, "retrying");
        }
        Ok(Finished::Stale) => {
            tracing::warn!(invocation = %id, attempt, "the result came after the lease was lost; refused");
        }
        Err(error) => {
            tracing::warn!(%error, invocation = %id, "could not record the outcome; the attempt will be retried");
        }
    }
}

/// Records a batch of outcomes in one transaction, taking the rows in id order (so that two
/// batches cannot deadlock); answers in the batch's order.
pub(super) async fn commit_finishes(
    shared: &Shared,
    finishes: Vec<Finish>,
) -> Result<Vec<Finished>, ApiError> {
    let mut order: Vec<usize> = (0..finishes.len()).collect();
    order.sort_unstable_by_key(|&index| finishes[index].id);
    let finished = shared
        .store
        .with_retry_row_locking(|tx| {
            let (finishes, order) = (&finishes, &order);
            Box::pin(async move {
                let mut finished = Vec::with_capacity(finishes.len());
                for &index in order {
                    let finish = &finishes[index];
                    let outcome = tx
                        .finish_invocation(finish.id, finish.epoch, &finish.report, finish.jitter)
                        .await?;
                    finished.push((index, outcome));
                }
                Ok(finished)
            })
        })
        .await?;
    let mut answers: Vec<Option<Finished>> = vec![None; finishes.len()];
    for (index, outcome) in finished {
        answers[index] = Some(outcome);
    }
    Ok(answers.into_iter().flatten().collect())
}

/// Renews the claim's lease every third of its length; returns when it is lost.
async fn keep_lease(shared: &Shared, record: &InvocationRecord, epoch: i64) {
    let (id, lease) = (record.id, shared.config.lease);
    loop {
        tokio::time::sleep(lease / 3).await;
        let extended = shared
            .store
            .with_retry_row_locking(|tx| {
                Box::pin(async move { tx.extend_invocation_lease(id, epoch, lease).await })
            })
            .await;
        match extended {
            Ok(true) => {}
            Ok(false) => return,
            // The lease may still hold; try again at the next renewal.
            Err(error) => tracing::warn!(%error, invocation = %id, "could not renew the lease"),
        }
    }
}

/// Re-announces due invocations and retries attempts whose lease expired (or moves them to
/// the dead letters), all the time, and deletes finished invocations past their retention now
/// and then: on the leader only.
async fn sweep(shared: Arc<Shared>, leadership: Leadership) {
    let mut every = tokio::time::interval(shared.config.sweep_every);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_retention: Option<tokio::time::Instant> = None;
    loop {
        every.tick().await;
        if !leadership.is_leader() {
            continue;
        }
        if last_retention.is_none_or(|at| at.elapsed() >= RETENTION_EVERY) {
            last_retention = Some(tokio::time::Instant::now());
            delete_expired(&shared).await;
        }
        // Read first, then write row by row in small transactions: one scan that also wrote
        // would conflict with every claim and accept meanwhile.
        let sweepable = shared
            .store
            .with_retry(|tx| Box::pin(async move { tx.sweepable_invocations(SWEEP_LIMIT).await }))
            .await;
        let sweepable = match sweepable {
            Ok(sweepable) => sweepable,
            Err(error) => {
                tracing::warn!(%error, "the invocation sweep could not read");
                continue;
            }
        };
        let chunks = sweepable
            .expired
            .chunks(SWEEP_CHUNK)
            .map(|expired| Sweepable {
                expired: expired.to_vec(),
                due: Vec::new(),
            })
            .chain(sweepable.due.chunks(SWEEP_CHUNK).map(|due| Sweepable {
                expired: Vec::new(),
                due: due.to_vec(),
            }));
        for chunk in chunks {
            let (redeliver_after, jitter) = (shared.config.redeliver_after, jitter());
            let reaped = shared
                .store
                .with_retry_row_locking(|tx| {
                    let chunk = &chunk;
                    Box::pin(
                        async move { tx.reap_invocations(chunk, redeliver_after, jitter).await },
                    )
                })
                .await;
            match reaped {
                Ok(reaped) => {
                    for record in &reaped.dead {
                        shared.publish_dead(record);
                    }
                    shared.announce(reaped.announce).await;
                }
                Err(error) => tracing::warn!(%error, "the invocation sweep could not write"),
            }
        }
    }
}

/// Deletes the invocations that ended longer ago than the retention, a chunk per transaction.
async fn delete_expired(shared: &Shared) {
    let retention = TimeDelta::from_std(shared.config.retention).unwrap_or(TimeDelta::MAX);
    let Some(before) = Utc::now().checked_sub_signed(retention) else {
        return;
    };
    loop {
        let deleted = shared
            .store
            .with_retry_row_locking(|tx| {
                Box::pin(async move { tx.delete_finished_invocations(before, SWEEP_LIMIT).await })
            })
            .await;
        match deleted {
            Ok(deleted) if deleted < u64::from(SWEEP_LIMIT) => return,
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "could not delete finished invocations past their retention");
                return;
            }
        }
    }
}

fn jitter() -> f64 {
    f64::from(getrandom::u32().unwrap_or(0)) / f64::from(u32::MAX)
}

impl Runner {
    /// Runs one attempt of `record` of `function` (as read with the claim) and judges it.
    async fn run(&self, record: &InvocationRecord, function: &Function) -> AttemptReport {
        // The attempt continues the trace of the request that queued it.
        let span = tracing::info_span!(
            "attempt",
            otel.name = %format_args!("attempt {}", record.function),
            otel.kind = "consumer",
            faas.trigger = "pubsub",
            faas.invocation_id = %record.id,
            nexus.attempt = record.attempts,
        );
        nexus_telemetry::trace::set_parent(&span, &decode_headers(&record.request.headers));
        let (logs, output) = LogSink::channel();
        let mut report = self.report(record, function, logs).instrument(span).await;
        // The guest's output follows its response; an instance that outlives the response is
        // not waited for long.
        if let Ok(Ok(log)) = tokio::time::timeout(OUTPUT_WAIT, output).await
            && !log.is_empty()
        {
            report.output = Some(GuestOutput {
                stdout: String::from_utf8_lossy(&log.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&log.stderr).into_owned(),
                truncated: log.truncated,
            });
        }
        report
    }

    async fn report(
        &self,
        record: &InvocationRecord,
        function: &Function,
        logs: LogSink,
    ) -> AttemptReport {
        match tokio::time::timeout(MAX_ATTEMPT, self.answer(record, function, logs)).await {
            Ok(Ok(response)) => judge(response).await,
            Ok(Err(error)) => AttemptReport {
                verdict: if retryable(error.status) {
                    Verdict::Retry
                } else {
                    Verdict::Failed
                },
                node: None,
                result: None,
                error: Some(format!("{}: {}", error.code, error.message)),
                output: None,
            },
            Err(_) => AttemptReport {
                verdict: Verdict::Retry,
                node: None,
                result: None,
                error: Some(format!("timed_out: the attempt took over {MAX_ATTEMPT:?}")),
                output: None,
            },
        }
    }

    async fn answer(
        &self,
        record: &InvocationRecord,
        function: &Function,
        logs: LogSink,
    ) -> Result<Response<Body>, ApiError> {
        let stored = &record.request;
        let method = Method::from_bytes(stored.method.as_bytes())
            .map_err(|_| ApiError::bad_request("the stored method is not an HTTP method"))?;
        let mut request = Request::builder()
            .method(method)
            .uri(stored.uri.as_str())
            .body(Body::from(stored.body.clone()))
            .map_err(|_| ApiError::bad_request("the stored request is not an HTTP request"))?;
        *request.headers_mut() = decode_headers(&stored.headers);
        request
            .extensions_mut()
            .insert(AsyncInvocationId(record.id.to_string()));
        // Found by the dispatch that observes every invocation, which hands the output on.
        request.extensions_mut().insert(logs);
        let client = stored
            .client
            .parse()
            .unwrap_or(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)));
        if let Some(agent) = record.agent_id {
            let project = record.project_id;
            let project = self
                .agents
                .store()
                .with_retry(|tx| Box::pin(async move { tx.get_project(project).await }))
                .await?;
            return self.agents.send(&project, agent, request, client).await;
        }
        let target = self.triggers.target_of(function, record.version).await?;
        self.dispatch
            .invoke(Invocation {
                target,
                prefix: stored.prefix.clone(),
                client,
                request,
                agent: None,
                logs: None,
            })
            .await
    }
}

/// Whether an attempt that ended with `status` may succeed when tried again: server errors,
/// timeouts, throttling and conflicts (a suspended agent) are; other client errors are not.
fn retryable(status: StatusCode) -> bool {
    !status.is_client_error()
        || matches!(
            status,
            StatusCode::REQUEST_TIMEOUT | StatusCode::CONFLICT | StatusCode::TOO_MANY_REQUESTS
        )
}

/// Reads the function's response (keeping its first [`MAX_RESULT_BYTES`]) and judges it.
async fn judge(response: Response<Body>) -> AttemptReport {
    let (parts, mut body) = response.into_parts();
    let node = Some(
        parts
            .headers
            .get(NODE_HEADER)
            .and_then(|value| value.to_str().ok())
            .unwrap_or("local")
            .to_owned(),
    );
    let mut kept = Vec::new();
    let mut size: u64 = 0;
    let mut broke_off = None;
    while size < MAX_COUNTED_BYTES {
        match body.frame().await {
            None => break,
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    size += data.len() as u64;
                    let room = MAX_RESULT_BYTES.saturating_sub(kept.len());
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
            }
            Some(Err(error)) => {
                broke_off = Some(error.to_string());
                break;
            }
        }
    }
    let status = parts.status;
    let result = Some(StoredResult {
        status: i32::from(status.as_u16()),
        headers: encode_headers(&parts.headers),
        body: kept,
        size: i64::try_from(size).unwrap_or(i64::MAX),
    });
    if let Some(error) = broke_off {
        return AttemptReport {
            verdict: Verdict::Retry,
            node,
            result,
            error: Some(format!("the function's response broke off: {error}")),
            output: None,
        };
    }
    let (verdict, error) =
        if status.is_success() || status.is_redirection() || status.is_informational() {
            (Verdict::Succeeded, None)
        } else if retryable(status) {
            (
                Verdict::Retry,
                Some(format!("the function answered {status}")),
            )
        } else {
            (
                Verdict::Failed,
                Some(format!("the function answered {status}")),
            )
        };
    AttemptReport {
        verdict,
        node,
        result,
        error,
        output: None,
    }
}
