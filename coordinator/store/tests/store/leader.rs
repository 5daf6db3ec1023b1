//! Leader leases: singleton work's one holder at a time; and edge outboxes' marks.

use std::time::Duration;

use nexus_store::{HolderId, Lease, LeaseHeld, OutboxId, Store};

use crate::harness::TestDb;

async fn acquire(
    store: &Store,
    name: &'static str,
    holder: HolderId,
    ttl: Duration,
) -> Result<Lease, LeaseHeld> {
    store
        .with_retry(|tx| Box::pin(async move { tx.acquire_leader_lease(name, holder, ttl).await }))
        .await
        .unwrap()
}

pub async fn a_leader_lease_has_one_holder_and_passes_on_when_it_expires_or_is_released(
    db: TestDb,
) {
    let store = &db.store;
    let (first, second) = (HolderId::new(), HolderId::new());
    let long = Duration::from_secs(60);

    let taken = acquire(store, "singletons", first, long).await.unwrap();
    assert_eq!(taken.epoch, 1);
    assert_eq!(
        acquire(store, "singletons", second, long)
            .await
            .unwrap_err()
            .until,
        taken.expires_at
    );
    // Another name is another lease.
    assert_eq!(
        acquire(store, "other", second, long).await.unwrap().epoch,
        1
    );
    let renewed = acquire(store, "singletons", first, long).await.unwrap();
    assert_eq!(renewed.epoch, 1, "the holder renewing keeps its epoch");

    // Run out: the next taker has it, one epoch later, and the old holder is refused.
    acquire(store, "singletons", first, Duration::ZERO)
        .await
        .unwrap();
    let took_over = acquire(store, "singletons", second, long).await.unwrap();
    assert_eq!(took_over.epoch, 2);
    assert!(acquire(store, "singletons", first, long).await.is_err());
    let row = store
        .with_retry(|tx| Box::pin(async move { tx.leader_lease("singletons").await }))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.holder, row.epoch), (second, 2));

    // Released by its holder only; then the next taker gets it at once.
    let release = |holder: HolderId| {
        store.with_retry(move |tx| {
            Box::pin(async move { tx.release_leader_lease("singletons", holder).await })
        })
    };
    assert!(!release(first).await.unwrap());
    assert!(release(second).await.unwrap());
    assert_eq!(
        acquire(store, "singletons", first, long)
            .await
            .unwrap()
            .epoch,
        3
    );
}

pub async fn an_outbox_mark_starts_at_zero_and_only_moves_forward(db: TestDb) {
    let store = &db.store;
    let (outbox, other) = (OutboxId::new(), OutboxId::new());
    let mark = |outbox: OutboxId| {
        store.with_retry(move |tx| {
            Box::pin(async move { tx.outbox_forwarded_through(outbox).await })
        })
    };
    let set = |outbox: OutboxId, through: u64| {
        store.with_retry(move |tx| {
            Box::pin(async move {
                tx.set_outbox_forwarded_through(outbox, "edge-1", through)
                    .await
            })
        })
    };
    assert_eq!(mark(outbox).await.unwrap(), 0);
    set(outbox, 40).await.unwrap();
    assert_eq!(mark(outbox).await.unwrap(), 40);
    set(outbox, 12).await.unwrap();
    assert_eq!(
        mark(outbox).await.unwrap(),
        40,
        "a late, smaller mark is ignored"
    );
    set(outbox, 41).await.unwrap();
    assert_eq!(mark(outbox).await.unwrap(), 41);
    assert_eq!(
        mark(other).await.unwrap(),
        0,
        "each outbox has its own mark"
    );
}
