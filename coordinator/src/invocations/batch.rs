//! Group commit: each caller hands in one item and waits for its answer; a few tasks take
//! whatever is waiting, up to a batch, and commit it in one transaction. The database's commit
//! latency is then paid once per batch rather than once per caller, and batches grow with the
//! load instead of adding to it.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::error::ApiError;

type Waiting<I, O> = (I, oneshot::Sender<Result<O, ApiError>>);

/// Where callers hand in items for the next batch.
pub(super) struct Batcher<I, O> {
    waiting: mpsc::Sender<Waiting<I, O>>,
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts `tasks` tasks, each of which takes up to `max_batch` waiting items at a time and
    /// hands them to `commit`, which answers every item in order or fails them all. At most
    /// `capacity` items wait; beyond that, [`Batcher::submit`] waits for room. The tasks end
    /// when the batcher is dropped.
    pub(super) fn start<C, F>(tasks: usize, max_batch: usize, capacity: usize, commit: C) -> Self
    where
        C: Fn(Vec<I>) -> F + Send + Sync + 'static,
        F: Future<Output = Result<Vec<O>, ApiError>> + Send,
    {
        let (waiting, receiver) = mpsc::channel::<Waiting<I, O>>(capacity.max(1));
        let receiver = Arc::new(Mutex::new(receiver));
        let commit = Arc::new(commit);
        for _ in 0..tasks.max(1) {
            let (receiver, commit) = (Arc::clone(&receiver), Arc::clone(&commit));
            tokio::spawn(async move {
                let mut batch = Vec::new();
                loop {
                    // One task gathers at a time, so a batch takes all that waits rather than
                    // a share of it.
                    let taken = receiver
                        .lock()
                        .await
                        .recv_many(&mut batch, max_batch.max(1))
                        .await;
                    if taken == 0 {
                        return;
                    }
                    let (items, replies): (Vec<I>, Vec<_>) = batch.drain(..).unzip();
                    match commit(items).await {
                        Ok(answers) => {
                            for (reply, answer) in replies.into_iter().zip(answers) {
                                let _ = reply.send(Ok(answer));
                            }
                        }
                        Err(error) => {
                            for reply in replies {
                                let _ = reply.send(Err(error.clone()));
                            }
                        }
                    }
                }
            });
        }
        Self { waiting }
    }

    /// Hands in `item`; its answer once its batch is committed.
    pub(super) async fn submit(&self, item: I) -> Result<O, ApiError> {
        let shutting_down = || ApiError::unavailable("the coordinator is shutting down");
        let (reply, answer) = oneshot::channel();
        self.waiting
            .send((item, reply))
            .await
            .map_err(|_| shutting_down())?;
        answer.await.map_err(|_| shutting_down())?
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[tokio::test]
    async fn concurrent_items_share_batches_and_each_gets_its_own_answer() {
        let (commits, taken) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (counted, took) = (Arc::clone(&commits), Arc::clone(&taken));
        let (gate, opened) = tokio::sync::watch::channel(false);
        let batcher = Arc::new(Batcher::start(1, 64, 1024, move |items: Vec<u32>| {
            counted.fetch_add(1, Ordering::SeqCst);
            took.fetch_add(items.len(), Ordering::SeqCst);
            let mut opened = opened.clone();
            async move {
                // Hold the first commit until every item waits, so the rest make one batch.
                opened
                    .wait_for(|open| *open)
                    .await
                    .map_err(|_| ApiError::unavailable("closed"))?;
                Ok(items.into_iter().map(|item| item * 2).collect())
            }
        }));
        let submitted: Vec<_> = (0..100_u32)
            .map(|item| {
                let batcher = Arc::clone(&batcher);
                tokio::spawn(async move { (item, batcher.submit(item).await) })
            })
            .collect();
        while taken.load(Ordering::SeqCst) + 1024 - batcher.waiting.capacity() < 100 {
            tokio::task::yield_now().await;
        }
        gate.send_replace(true);
        for task in submitted {
            let (item, answer) = task.await.unwrap();
            assert_eq!(answer.unwrap(), item * 2);
        }
        let commits = commits.load(Ordering::SeqCst);
        assert!(
            (2..=3).contains(&commits),
            "{commits} commits for 100 items"
        );
    }

    #[tokio::test]
    async fn a_failed_commit_fails_every_item_of_its_batch() {
        let batcher = Batcher::start(2, 8, 8, |_: Vec<u32>| async {
            Err::<Vec<u32>, _>(ApiError::unavailable("the database is down"))
        });
        let error = batcher.submit(1).await.unwrap_err();
        assert_eq!(error.status, http::StatusCode::SERVICE_UNAVAILABLE);
    }
}
