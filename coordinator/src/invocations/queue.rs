//! The queue that announces invocations to workers: one trait, [`InvocationQueue`], an
//! in-process queue for the embedded platform and [`super::RedisQueue`] (a Redis Stream read
//! by a consumer group) for coordinators that share their work.
//!
//! A queue only carries ids, at least once: the invocation's row decides what runs
//! ([`nexus_store::Tx::claim_invocation`]), and an id a queue lost is announced again by the
//! sweep once its row is due. So a queue may drop, repeat or reorder without losing work.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use futures::future::BoxFuture;
use nexus_store::InvocationId;
use tokio::sync::Notify;

/// How long a `pull` waits for an announcement before answering with none.
pub const PULL_WAIT: Duration = Duration::from_secs(1);

/// One announcement, as a worker received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The invocation.
    pub id: InvocationId,
    /// The queue's own handle on it (a stream entry id), for [`InvocationQueue::ack`].
    pub(crate) tag: Option<String>,
}

/// A queue that could not be reached or answered nonsense.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invocation queue: {0}")]
pub struct QueueError(pub String);

/// Announces invocations to workers.
pub trait InvocationQueue: Send + Sync {
    /// Announces that `ids` are ready to run.
    fn push(&self, ids: Vec<InvocationId>) -> BoxFuture<'_, Result<(), QueueError>>;

    /// Up to `max` announcements; none after [`PULL_WAIT`] without one.
    fn pull(&self, max: usize) -> BoxFuture<'_, Result<Vec<Delivery>, QueueError>>;

    /// Marks `deliveries` handled, so that they are not delivered again.
    fn ack(&self, deliveries: Vec<Delivery>) -> BoxFuture<'_, Result<(), QueueError>>;
}

/// Ids an [`InProcessQueue`] holds at most; beyond, announcements are dropped (the sweep makes
/// them again when the rows are due).
pub const MAX_IN_PROCESS: usize = 1_000_000;

/// The embedded platform's queue: ids in memory, in order.
#[derive(Debug, Default)]
pub struct InProcessQueue {
    ids: Mutex<VecDeque<InvocationId>>,
    arrived: Notify,
}

impl InProcessQueue {
    fn take(&self, max: usize) -> Vec<Delivery> {
        let mut ids = self
            .ids
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let count = ids.len().min(max);
        ids.drain(..count)
            .map(|id| Delivery { id, tag: None })
            .collect()
    }
}

impl InvocationQueue for InProcessQueue {
    fn push(&self, new: Vec<InvocationId>) -> BoxFuture<'_, Result<(), QueueError>> {
        {
            let mut ids = self
                .ids
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let room = MAX_IN_PROCESS.saturating_sub(ids.len());
            if new.len() > room {
                tracing::warn!(
                    dropped = new.len() - room,
                    "the in-process invocation queue is full; the sweep announces the rest when due"
                );
            }
            ids.extend(new.into_iter().take(room));
        }
        self.arrived.notify_one();
        Box::pin(async { Ok(()) })
    }

    fn pull(&self, max: usize) -> BoxFuture<'_, Result<Vec<Delivery>, QueueError>> {
        Box::pin(async move {
            let taken = self.take(max);
            if !taken.is_empty() {
                return Ok(taken);
            }
            // A push between `take` and here leaves a permit, so this returns at once.
            let _ = tokio::time::timeout(PULL_WAIT, self.arrived.notified()).await;
            Ok(self.take(max))
        })
    }

    fn ack(&self, _deliveries: Vec<Delivery>) -> BoxFuture<'_, Result<(), QueueError>> {
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_come_out_in_order_and_a_pull_waits_for_a_push() {
        let queue = std::sync::Arc::new(InProcessQueue::default());
        let ids: Vec<InvocationId> = (0..3).map(|_| InvocationId::new()).collect();
        queue.push(ids.clone()).await.unwrap();
        let pulled: Vec<_> = queue
            .pull(2)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(pulled, ids[..2]);
        let pulled: Vec<_> = queue
            .pull(2)
            .await
            .unwrap()
            .into_iter()
            .map(|d| d.id)
            .collect();
        assert_eq!(pulled, ids[2..]);

        let waiting = tokio::spawn({
            let queue = std::sync::Arc::clone(&queue);
            async move { queue.pull(10).await }
        });
        let late = InvocationId::new();
        queue.push(vec![late]).await.unwrap();
        let pulled = waiting.await.unwrap().unwrap();
        assert_eq!(pulled.into_iter().map(|d| d.id).collect::<Vec<_>>(), [late]);
    }
}
