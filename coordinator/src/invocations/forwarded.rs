//! Asynchronous invocations an edge node accepted on its own ingress (while it could not
//! reach a coordinator, or simply because a client called it directly), forwarded from the
//! node's outbox in order. A batch is recorded with the outbox's mark in one transaction, so a
//! batch sent again (its answer was lost) records nothing twice, and each invocation keeps the
//! id the node gave its client.

use std::collections::HashMap;

use nexus_store::{AsyncRetry, FunctionId, NewInvocation, OutboxId};

use super::InvocationService;
use crate::error::ApiError;

/// One invocation from a node's outbox.
#[derive(Debug, Clone)]
pub struct ForwardedInvocation {
    /// Its place in the outbox.
    pub seq: u64,
    /// The invocation; its retry policy is the function's when it is recorded.
    pub new: NewInvocation,
    /// The function's name, for its `invocation_queued` event.
    pub function: String,
}

/// A batch from a node's outbox.
#[derive(Debug, Clone)]
pub struct ForwardedBatch {
    /// The outbox.
    pub outbox: OutboxId,
    /// The node it is on.
    pub node_name: String,
    /// The batch's last entry.
    pub through: u64,
    /// Its invocations (the other entries are events).
    pub invocations: Vec<ForwardedInvocation>,
}

impl InvocationService {
    /// Records the invocations of `batch` the outbox had not forwarded before, and moves its
    /// mark to the batch's end; returns the mark as it was, so the caller knows which of the
    /// batch's other entries are new too. An invocation of a function deleted meanwhile is
    /// dropped, with a warning.
    pub async fn accept_forwarded(&self, batch: &ForwardedBatch) -> Result<u64, ApiError> {
        let (fresh_since, redeliver_at) = self.shared.windows();
        let (before, created, dropped) = self
            .shared
            .store
            .with_retry(|tx| {
                Box::pin(async move {
                    let before = tx.outbox_forwarded_through(batch.outbox).await?;
                    let mut retries: HashMap<FunctionId, Option<AsyncRetry>> = HashMap::new();
                    let mut news = Vec::new();
                    let mut dropped = 0_usize;
                    for forwarded in batch.invocations.iter().filter(|f| f.seq > before) {
                        let function_id = forwarded.new.function_id;
                        let retry = match retries.get(&function_id) {
                            Some(retry) => *retry,
                            None => {
                                let retry = match tx.get_function_by_id(function_id).await {
                                    Ok(function) => Some(function.async_retry),
                                    Err(nexus_store::Error::NotFound { .. }) => None,
                                    Err(error) => return Err(error),
                                };
                                retries.insert(function_id, retry);
                                retry
                            }
                        };
                        let Some(retry) = retry else {
                            dropped += 1;
                            continue;
                        };
                        let mut new = forwarded.new.clone();
                        new.retry = retry;
                        news.push((new, forwarded.function.as_str()));
                    }
                    let refs: Vec<&NewInvocation> = news.iter().map(|(new, _)| new).collect();
                    let enqueued = tx
                        .enqueue_invocations(&refs, fresh_since, redeliver_at)
                        .await?;
                    tx.set_outbox_forwarded_through(batch.outbox, &batch.node_name, batch.through)
                        .await?;
                    let created: Vec<(NewInvocation, String)> = news
                        .into_iter()
                        .zip(enqueued)
                        .filter(|(_, enqueued)| enqueued.created)
                        .map(|((new, function), _)| (new, function.to_owned()))
                        .collect();
                    Ok((before, created, dropped))
                })
            })
            .await?;
        if dropped > 0 {
            tracing::warn!(
                node = batch.node_name,
                dropped,
                "invocations a node accepted for functions deleted since were dropped"
            );
        }
        let mut ids = Vec::with_capacity(created.len());
        for (new, function) in created {
            self.shared.publish_queued(&new, function);
            ids.push(new.id);
        }
        self.shared.announce(ids).await;
        Ok(before)
    }
}
