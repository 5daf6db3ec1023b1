//! Asynchronous invocations: enqueue with idempotency keys, claims under epochs, retries,
//! lost leases, the dead-letter list.

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use nexus_store::{
    AsyncRetry, AttemptReport, Claim, ClaimedInvocation, DeadFilter, Enqueued, Finished,
    GuestOutput, HolderId, InvocationId, InvocationStatus, NewInvocation, Reaped, Store,
    StoredRequest, StoredResult, Verdict,
};

use crate::harness::TestDb;
use crate::projects::create_project;
use crate::users::create_user;

const LEASE: Duration = Duration::from_secs(60);

struct Fixture {
    project: nexus_store::Project,
    function: nexus_store::Function,
}

async fn fixture(store: &Store, slug: &'static str) -> Fixture {
    let owner = create_user(store, "owner@example.com").await;
    let project = create_project(store, slug, owner.id).await;
    let function = store
        .with_retry(|tx| Box::pin(async move { tx.create_function(project.id, "worker").await }))
        .await
        .unwrap();
    Fixture { project, function }
}

fn new_invocation(fixture: &Fixture, key: Option<&str>, retry: AsyncRetry) -> NewInvocation {
    NewInvocation {
        id: InvocationId::new(),
        project_id: fixture.project.id,
        function_id: fixture.function.id,
        version: 1,
        agent_id: None,
        idempotency_key: key.map(str::to_owned),
        retry,
        request: StoredRequest {
            method: "POST".to_owned(),
            uri: "/p/worker/jobs?x=1".to_owned(),
            prefix: "/p/worker".to_owned(),
            headers: b"content-type: text/plain\r\nx-bin: \xff\r\n".to_vec(),
            body: vec![0, 1, 2, 255],
            client: "127.0.0.1:4000".to_owned(),
        },
    }
}

async fn enqueue(store: &Store, new: &NewInvocation) -> Enqueued {
    let fresh_since = Utc::now() - TimeDelta::hours(24);
    store
        .with_retry(|tx| {
            Box::pin(async move { tx.enqueue_invocation(new, fresh_since, Utc::now()).await })
        })
        .await
        .unwrap()
}

/// Claims, outcomes and the sweep's writes run as the coordinator runs them: locking the rows
/// they change (READ COMMITTED on Postgres).
async fn claim(store: &Store, id: InvocationId, holder: HolderId, lease: Duration) -> Claim {
    store
        .with_retry_row_locking(|tx| {
            Box::pin(async move { tx.claim_invocation(id, holder, lease).await })
        })
        .await
        .unwrap()
}

fn claimed(claim: Claim) -> ClaimedInvocation {
    match claim {
        Claim::Claimed(claimed) => claimed,
        other => panic!("expected a claim, got {other:?}"),
    }
}

async fn finish(store: &Store, id: InvocationId, epoch: i64, report: &AttemptReport) -> Finished {
    store
        .with_retry_row_locking(|tx| {
            Box::pin(async move { tx.finish_invocation(id, epoch, report, 0.0).await })
        })
        .await
        .unwrap()
}

/// One sweep as a coordinator runs it: read, then write.
async fn sweep(store: &Store) -> Reaped {
    let sweepable = store
        .with_retry(|tx| Box::pin(async move { tx.sweepable_invocations(100).await }))
        .await
        .unwrap();
    store
        .with_retry_row_locking(|tx| {
            let sweepable = &sweepable;
            Box::pin(async move {
                tx.reap_invocations(sweepable, Duration::from_secs(30), 0.0)
                    .await
            })
        })
        .await
        .unwrap()
}

fn answered(status: i32) -> AttemptReport {
    AttemptReport {
        verdict: if status < 400 {
            Verdict::Succeeded
        } else {
            Verdict::Retry
        },
        node: Some("node-a".to_owned()),
        output: Some(GuestOutput {
            stdout: format!("answered {status}\n"),
            stderr: String::new(),
            truncated: false,
        }),
        result: Some(StoredResult {
            status,
            headers: b"content-type: text/plain\r\n".to_vec(),
            body: b"done".to_vec(),
            size: 4,
        }),
        error: (status >= 400).then(|| format!("the function answered {status}")),
    }
}

pub async fn an_invocation_is_claimed_once_and_keeps_its_request_and_result(db: TestDb) {
    let store = &db.store;
    let fixture = fixture(store, "claims").await;
    let new = new_invocation(&fixture, None, AsyncRetry::default());
    let enqueued = enqueue(store, &new).await;
    assert_eq!(enqueued.id, new.id);
    assert!(enqueued.created);

    // Two workers handed the same id: one attempt.
    let first = claimed(claim(store, new.id, HolderId::new(), LEASE).await);
    assert_eq!((first.epoch, first.attempt), (1, 1));
    assert_eq!(first.record.request, new.request, "bytes survive as given");
    assert_eq!(
        claim(store, new.id, HolderId::new(), LEASE).await,
        Claim::Gone
    );

    let report = answered(201);
    let Finished::Done(record) = finish(store, new.id, first.epoch, &report).await else {
        panic!("a 201 finishes the invocation");
    };
    assert_eq!(record.status, InvocationStatus::Succeeded);
    assert_eq!(record.result, report.result);
    assert!(record.finished_at.is_some());
    let attempts = store
        .with_retry(|tx| Box::pin(async move { tx.list_invocation_attempts(new.id).await }))
        .await
        .unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status, "succeeded");
    assert_eq!(attempts[0].node.as_deref(), Some("node-a"));
    assert_eq!(attempts[0].http_status, Some(201));
    // Finished is final: nothing more to claim.
    assert_eq!(
        claim(store, new.id, HolderId::new(), LEASE).await,
        Claim::Gone
    );
}

pub async fn the_same_idempotency_key_names_the_first_invocation_for_a_day(db: TestDb) {
    let store = &db.store;
    let fixture = fixture(store, "keys").await;
    let first = new_invocation(&fixture, Some("order-7"), AsyncRetry::default());
    let again = new_invocation(&fixture, Some("order-7"), AsyncRetry::default());
    assert!(enqueue(store, &first).await.created);
    let replay = enqueue(store, &again).await;
    assert_eq!((replay.id, replay.created), (first.id, false));

    // Past the window the key is forgotten and names a new invocation.
    let later = new_invocation(&fixture, Some("order-7"), AsyncRetry::default());
    let fresh_since = Utc::now() + TimeDelta::seconds(1);
    let enqueued = store
        .with_retry(|tx| {
            let later = &later;
            Box::pin(async move { tx.enqueue_invocation(later, fresh_since, Utc::now()).await })
        })
        .await
        .unwrap();
    assert_eq!((enqueued.id, enqueued.created), (later.id, true));
    let forgotten = store
        .with_retry(|tx| Box::pin(async move { tx.get_invocation(first.id).await }))
        .await
        .unwrap();
    assert_eq!(forgotten.idempotency_key, None);

    // In one batch: a new key used twice names the first of the two; a known key names its
    // invocation; rows without a key are each new.
    let batch = [
        new_invocation(&fixture, Some("order-8"), AsyncRetry::default()),
        new_invocation(&fixture, None, AsyncRetry::default()),
        new_invocation(&fixture, Some("order-8"), AsyncRetry::default()),
        new_invocation(&fixture, Some("order-7"), AsyncRetry::default()),
        new_invocation(&fixture, None, AsyncRetry::default()),
    ];
    let fresh_since = Utc::now() - TimeDelta::hours(24);
    let answers = store
        .with_retry(|tx| {
            let batch: Vec<&NewInvocation> = batch.iter().collect();
            Box::pin(async move {
                tx.enqueue_invocations(&batch, fresh_since, Utc::now())
                    .await
            })
        })
        .await
        .unwrap();
    let answered: Vec<(InvocationId, bool)> = answers
        .iter()
        .map(|enqueued| (enqueued.id, enqueued.created))
        .collect();
    assert_eq!(
        answered,
        [
            (batch[0].id, true),
            (batch[1].id, true),
            (batch[0].id, false),
            (later.id, false),
            (batch[4].id, true),
        ]
    );
    for new in [&batch[0], &batch[1], &batch[4]] {
        let stored = store
            .with_retry(|tx| Box::pin(async move { tx.get_invocation(new.id).await }))
            .await
            .unwrap();
        assert_eq!(stored.request, new.request);
        assert_eq!(stored.idempotency_key, new.idempotency_key);
    }
}

pub async fn a_result_from_a_lost_lease_is_refused(db: TestDb) {
    let store = &db.store;
    let fixture = fixture(store, "epochs").await;
    let new = new_invocation(
        &fixture,
        None,
        AsyncRetry {
            backoff_ms: 0,
            ..AsyncRetry::default()
        },
    );
    enqueue(store, &new).await;
    let lost = claimed(claim(store, new.id, HolderId::new(), Duration::ZERO).await);

    // The sweep finds the lease expired: the attempt is lost and the invocation queued again.
    let reaped = sweep(store).await;
    assert_eq!(reaped.lost, 1);
    // With no backoff, the next sweep announces it.
    assert!(sweep(store).await.announce.contains(&new.id));
    let current = claimed(claim(store, new.id, HolderId::new(), LEASE).await);
    assert_eq!((current.epoch, current.attempt), (2, 2));

    // The first worker comes back with its result: refused, nothing changes.
    assert_eq!(
        finish(store, new.id, lost.epoch, &answered(200)).await,
        Finished::Stale
    );
    let extended = store
        .with_retry(|tx| {
            let epoch = lost.epoch;
            Box::pin(async move { tx.extend_invocation_lease(new.id, epoch, LEASE).await })
        })
        .await
        .unwrap();
    assert!(!extended, "a lost lease cannot be extended");
    let record = store
        .with_retry(|tx| Box::pin(async move { tx.get_invocation(new.id).await }))
        .await
        .unwrap();
    assert_eq!(record.status, InvocationStatus::Running);
    assert_eq!(record.result, None);

    assert!(matches!(
        finish(store, new.id, current.epoch, &answered(200)).await,
        Finished::Done(_)
    ));
    let attempts = store
        .with_retry(|tx| Box::pin(async move { tx.list_invocation_attempts(new.id).await }))
        .await
        .unwrap();
    let statuses: Vec<_> = attempts.iter().map(|a| a.status.as_str()).collect();
    assert_eq!(statuses, ["lost", "succeeded"]);
}

pub async fn failures_retry_with_backoff_then_go_to_the_dead_letters(db: TestDb) {
    let store = &db.store;
    let fixture = fixture(store, "dead").await;
    let retry = AsyncRetry {
        max_attempts: 2,
        max_age_ms: 60_000,
        backoff_ms: 60_000,
    };
    let new = new_invocation(&fixture, None, retry);
    enqueue(store, &new).await;
    let first = claimed(claim(store, new.id, HolderId::new(), LEASE).await);
    let Finished::Retrying { run_at } = finish(store, new.id, first.epoch, &answered(503)).await
    else {
        panic!("one attempt is left");
    };
    assert!(
        run_at > Utc::now() + TimeDelta::seconds(25),
        "backoff: {run_at}"
    );
    assert_eq!(
        claim(store, new.id, HolderId::new(), LEASE).await,
        Claim::NotDue
    );
    // Announcements wait for the retry time.
    let reaped = sweep(store).await;
    assert!(!reaped.announce.contains(&new.id));

    // With a backoff of nothing, the second attempt is due at once; it fails too: dead.
    let quick = new_invocation(
        &fixture,
        None,
        AsyncRetry {
            backoff_ms: 0,
            ..retry
        },
    );
    enqueue(store, &quick).await;
    for attempt in 1..=2 {
        let claimed = claimed(claim(store, quick.id, HolderId::new(), LEASE).await);
        assert_eq!(claimed.attempt, attempt);
        let finished = finish(store, quick.id, claimed.epoch, &answered(500)).await;
        if attempt == 2 {
            let Finished::Dead(record) = finished else {
                panic!("no attempt left: {finished:?}");
            };
            assert_eq!(record.status, InvocationStatus::Dead);
            assert_eq!(record.error.as_deref(), Some("the function answered 500"));
        }
    }
    let dead = store
        .with_retry(|tx| {
            let project = fixture.project.id;
            Box::pin(async move {
                tx.list_invocations(project, Some(InvocationStatus::Dead), None, None, 10)
                    .await
            })
        })
        .await
        .unwrap();
    assert_eq!(
        dead.iter().map(|record| record.id).collect::<Vec<_>>(),
        [quick.id]
    );

    // Redrive: queued again with a fresh budget from the function's policy now; purge: gone.
    let project = fixture.project.id;
    let function = fixture.function.id;
    let policy = AsyncRetry {
        backoff_ms: 0,
        ..AsyncRetry::default()
    };
    store
        .with_retry(|tx| {
            Box::pin(async move { tx.set_function_async_retry(function, policy).await })
        })
        .await
        .unwrap();
    let redriven = store
        .with_retry(|tx| {
            Box::pin(async move {
                tx.redrive_invocations(project, &DeadFilter::default(), 100, Utc::now())
                    .await
            })
        })
        .await
        .unwrap();
    assert_eq!(redriven, [quick.id]);
    // The function's policy (three attempts) counts from here.
    for attempt in 3..=5 {
        let claimed = claimed(claim(store, quick.id, HolderId::new(), LEASE).await);
        assert_eq!(claimed.attempt, attempt);
        assert_eq!(
            claimed.record.max_attempts, 5,
            "attempts made + the function's budget"
        );
        let finished = finish(store, quick.id, claimed.epoch, &answered(500)).await;
        assert_eq!(
            matches!(finished, Finished::Dead(_)),
            attempt == 5,
            "{finished:?}"
        );
    }
    let only_other = DeadFilter {
        ids: Some(vec![new.id]),
        ..DeadFilter::default()
    };
    let purged = store
        .with_retry(|tx| {
            let filter = &only_other;
            Box::pin(async move { tx.purge_invocations(project, filter, 100).await })
        })
        .await
        .unwrap();
    assert_eq!(purged, 0, "the filter takes only dead invocations it names");
    let purged = store
        .with_retry(|tx| {
            Box::pin(async move {
                tx.purge_invocations(project, &DeadFilter::default(), 100)
                    .await
            })
        })
        .await
        .unwrap();
    assert_eq!(purged, 1);
    let gone = store
        .with_retry(|tx| Box::pin(async move { tx.get_invocation(quick.id).await }))
        .await;
    assert!(matches!(gone, Err(nexus_store::Error::NotFound { .. })));
}

pub async fn an_invocation_past_its_max_age_dies_instead_of_running(db: TestDb) {
    let store = &db.store;
    let fixture = fixture(store, "aged").await;
    let new = new_invocation(
        &fixture,
        None,
        AsyncRetry {
            max_age_ms: 0,
            ..AsyncRetry::default()
        },
    );
    enqueue(store, &new).await;
    let Claim::Expired(record) = claim(store, new.id, HolderId::new(), LEASE).await else {
        panic!("too old to run");
    };
    assert_eq!(record.status, InvocationStatus::Dead);
    assert_eq!(record.attempts, 0);
}

pub async fn queued_invocations_are_announced_again_when_due(db: TestDb) {
    let store = &db.store;
    let fixture = fixture(store, "sweep").await;
    let new = new_invocation(&fixture, None, AsyncRetry::default());
    enqueue(store, &new).await;
    assert_eq!(sweep(store).await.announce, [new.id]);
    assert!(
        sweep(store).await.announce.is_empty(),
        "announced again only after the redelivery time"
    );
}

pub async fn finished_invocations_are_deleted_after_their_retention(db: TestDb) {
    let store = &db.store;
    let fixture = fixture(store, "retention").await;
    let once = AsyncRetry {
        max_attempts: 1,
        ..AsyncRetry::default()
    };
    let [succeeded, failed, dead, queued] = [(); 4].map(|()| new_invocation(&fixture, None, once));
    for new in [&succeeded, &failed, &dead, &queued] {
        enqueue(store, new).await;
    }
    let before_any_ended = Utc::now() - TimeDelta::seconds(1);
    let holder = HolderId::new();
    let refused = AttemptReport {
        verdict: Verdict::Failed,
        ..answered(400)
    };
    for (new, report) in [
        (&succeeded, answered(200)),
        (&failed, refused),
        (&dead, answered(500)),
    ] {
        let epoch = claimed(claim(store, new.id, holder, LEASE).await).epoch;
        finish(store, new.id, epoch, &report).await;
    }
    let delete = |before, limit| {
        store.with_retry_row_locking(move |tx| {
            Box::pin(async move { tx.delete_finished_invocations(before, limit).await })
        })
    };

    assert_eq!(delete(before_any_ended, 100).await.unwrap(), 0);
    let now_and_then = Utc::now() + TimeDelta::seconds(1);
    assert_eq!(delete(now_and_then, 1).await.unwrap(), 1);
    assert_eq!(delete(now_and_then, 100).await.unwrap(), 1);
    assert_eq!(delete(now_and_then, 100).await.unwrap(), 0);

    for (new, kept) in [
        (&succeeded, None),
        (&failed, None),
        (&dead, Some(InvocationStatus::Dead)),
        (&queued, Some(InvocationStatus::Queued)),
    ] {
        let id = new.id;
        let found = store
            .with_retry(|tx| Box::pin(async move { tx.get_invocation(id).await }))
            .await;
        match kept {
            Some(status) => assert_eq!(found.unwrap().status, status),
            None => assert!(
                matches!(found, Err(nexus_store::Error::NotFound { .. })),
                "{found:?}"
            ),
        }
    }
    let id = succeeded.id;
    let attempts = store
        .with_retry(|tx| Box::pin(async move { tx.list_invocation_attempts(id).await }))
        .await
        .unwrap();
    assert!(attempts.is_empty(), "{attempts:?}");
}
