//! `with_retry`: conflicts are retried, the limit holds, failures roll back.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use nexus_store::{Error, NewProject, ProjectId, ProjectUpdate, RetryPolicy, Store};
use tokio::sync::Barrier;

use crate::harness::TestDb;
use crate::projects::create_project;
use crate::users::{create_user, new_user};

const CONCURRENT_INCREMENTS: u32 = 4;

/// A counter kept in a project's name, so that the check uses only the store's public API.
async fn counter(store: &Store) -> ProjectId {
    let owner = create_user(store, "counter@example.com").await;
    let project = create_project(store, "counter", owner.id).await;
    let id = project.id;
    let zero = &ProjectUpdate {
        name: Some("0".to_owned()),
    };
    store
        .with_retry(|tx| Box::pin(async move { tx.update_project(id, zero).await }))
        .await
        .unwrap();
    id
}

/// Reads the counter, waits at `overlap` on its first run (so that every transaction has read
/// before any writes), then writes the value + 1. Counts its runs in `runs`.
async fn increment(
    store: &Store,
    id: ProjectId,
    overlap: &Barrier,
    runs: &AtomicU32,
) -> nexus_store::Result<()> {
    store
        .with_retry(|tx| {
            Box::pin(async move {
                let run = runs.fetch_add(1, Ordering::SeqCst);
                let value: u32 = tx.get_project(id).await?.name.parse().unwrap();
                if run < CONCURRENT_INCREMENTS {
                    overlap.wait().await;
                }
                let next = &ProjectUpdate {
                    name: Some((value + 1).to_string()),
                };
                tx.update_project(id, next).await.map(drop)
            })
        })
        .await
}

async fn run_concurrently(
    store: &Store,
    id: ProjectId,
    runs: Arc<AtomicU32>,
) -> Vec<nexus_store::Result<()>> {
    let overlap = Arc::new(Barrier::new(CONCURRENT_INCREMENTS as usize));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENT_INCREMENTS {
        let (store, overlap, runs) = (store.clone(), overlap.clone(), runs.clone());
        tasks.push(tokio::spawn(async move {
            increment(&store, id, &overlap, &runs).await
        }));
    }
    let mut outcomes = Vec::new();
    for task in tasks {
        outcomes.push(task.await.unwrap());
    }
    outcomes
}

async fn value(store: &Store, id: ProjectId) -> u32 {
    store
        .with_retry(|tx| Box::pin(async move { tx.get_project(id).await }))
        .await
        .unwrap()
        .name
        .parse()
        .unwrap()
}

pub async fn conflicting_transactions_are_retried_until_all_commit(db: TestDb) {
    let store = &db.store;
    let id = counter(store).await;
    let runs = Arc::new(AtomicU32::new(0));
    let outcomes = run_concurrently(store, id, runs.clone()).await;
    for outcome in &outcomes {
        assert!(outcome.is_ok(), "{outcome:?}");
    }
    // Every increment counted: no lost update.
    assert_eq!(value(store, id).await, CONCURRENT_INCREMENTS);
    // All read 0 before any wrote, so all but one conflicted and ran again.
    let total_runs = runs.load(Ordering::SeqCst);
    assert!(
        total_runs >= 2 * CONCURRENT_INCREMENTS - 1,
        "{total_runs} runs for {CONCURRENT_INCREMENTS} increments: conflicts were not retried"
    );
}

pub async fn retries_stop_at_the_attempt_limit(db: TestDb) {
    let store = db.store.clone().with_retry_policy(RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    });
    let id = counter(&store).await;
    let runs = Arc::new(AtomicU32::new(0));
    let outcomes = run_concurrently(&store, id, runs.clone()).await;

    let committed = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(committed, 1, "{outcomes:#?}");
    for outcome in outcomes.iter().filter(|outcome| outcome.is_err()) {
        match outcome {
            Err(Error::RetryExhausted { attempts: 1, last }) => {
                assert!(last.is_retryable(), "{last:?}")
            }
            other => panic!("expected RetryExhausted after one attempt, got {other:?}"),
        }
    }
    assert_eq!(runs.load(Ordering::SeqCst), CONCURRENT_INCREMENTS);
    assert_eq!(value(&store, id).await, 1);
}

pub async fn failed_work_is_rolled_back_and_not_retried(db: TestDb) {
    let store = &db.store;
    let runs = &AtomicU32::new(0);
    let new = &new_user("rollback@example.com");
    let result: nexus_store::Result<()> = store
        .with_retry(|tx| {
            Box::pin(async move {
                runs.fetch_add(1, Ordering::SeqCst);
                let user = tx.create_user(new).await?;
                let project = &NewProject {
                    slug: "rolled-back".to_owned(),
                    name: "Rolled back".to_owned(),
                };
                tx.create_project(project, user.id).await?;
                Err(Error::Conflict {
                    message: "the caller changed its mind".to_owned(),
                })
            })
        })
        .await;
    assert!(matches!(result, Err(Error::Conflict { .. })), "{result:?}");
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    let found = store
        .with_retry(|tx| {
            Box::pin(async move { tx.find_user_by_email("rollback@example.com").await })
        })
        .await
        .unwrap();
    assert_eq!(found, None);
    let project = store
        .with_retry(|tx| Box::pin(async move { tx.get_project_by_slug("rolled-back").await }))
        .await;
    assert!(
        matches!(project, Err(Error::NotFound { .. })),
        "{project:?}"
    );
}
