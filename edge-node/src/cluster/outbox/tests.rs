//! The outbox's tests: durability across reopening, order, bounds, idempotency keys, group
//! commit.

use std::collections::HashSet;

use nexus_proto::node::v1::outbox_entry::Entry;
use tempfile::TempDir;

use super::*;

fn invocation(id: &str, key: &str) -> QueuedInvocation {
    QueuedInvocation {
        id: id.to_owned(),
        project_id: "project".to_owned(),
        idempotency_key: key.to_owned(),
        body: vec![7; 100].into(),
        ..QueuedInvocation::default()
    }
}

fn finished(status: u32) -> FinishedInvocation {
    FinishedInvocation {
        status,
        ..FinishedInvocation::default()
    }
}

fn names(entries: &[OutboxEntry]) -> Vec<String> {
    let name = |entry: &OutboxEntry| match &entry.entry {
        Some(Entry::Invocation(invocation)) => invocation.id.clone(),
        Some(Entry::Finished(finished)) => format!("finished {}", finished.status),
        None => "empty".to_owned(),
    };
    entries.iter().map(name).collect()
}

fn seqs(entries: &[OutboxEntry]) -> Vec<u64> {
    entries.iter().map(|entry| entry.seq).collect()
}

async fn open(dir: &TempDir, max_bytes: u64) -> Arc<Outbox> {
    let path = dir.path().join("state").join("outbox.sqlite");
    Outbox::open(&path, max_bytes).await.unwrap()
}

async fn accept_all(outbox: &Outbox, ids: &[&str]) {
    for id in ids {
        outbox.accept(invocation(id, "")).await.unwrap();
    }
}

#[tokio::test]
async fn entries_survive_closing_and_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&dir, 1 << 20).await;
    accept_all(&outbox, &["a", "b"]).await;
    outbox.record(finished(200));
    // Commands are taken in order: once "c" is answered, the event is on disk too.
    accept_all(&outbox, &["c"]).await;
    let entries = outbox.batch(100, usize::MAX).await.unwrap();
    assert_eq!(names(&entries), ["a", "b", "finished 200", "c"]);
    assert_eq!(seqs(&entries), [1, 2, 3, 4]);
    let stats = outbox.stats();
    outbox.close().await;
    let refused = outbox.accept(invocation("d", "")).await;
    assert!(matches!(refused, Err(OutboxError::Closed)), "{refused:?}");

    let reopened = open(&dir, 1 << 20).await;
    assert_eq!(reopened.id(), outbox.id());
    assert_eq!(reopened.stats(), stats);
    assert_eq!(reopened.batch(100, usize::MAX).await.unwrap(), entries);
    let wiped = open(&tempfile::tempdir().unwrap(), 1 << 20).await;
    assert_ne!(wiped.id(), outbox.id());
}

#[tokio::test]
async fn batches_are_oldest_first_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&dir, 1 << 20).await;
    accept_all(&outbox, &["a", "b", "c", "d", "e"]).await;
    let size = usize::try_from(outbox.stats().bytes / 5).unwrap();
    let batch = |entries, bytes| outbox.batch(entries, bytes);
    assert_eq!(names(&batch(3, usize::MAX).await.unwrap()), ["a", "b", "c"]);
    assert_eq!(names(&batch(10, 2 * size).await.unwrap()), ["a", "b"]);
    assert_eq!(names(&batch(10, 2 * size - 1).await.unwrap()), ["a"]);
    assert_eq!(names(&batch(10, 1).await.unwrap()), ["a"]);
}

#[tokio::test]
async fn acknowledge_forgets_only_through_its_seq() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&dir, 1 << 20).await;
    accept_all(&outbox, &["a", "b", "c", "d", "e"]).await;
    let size = outbox.stats().bytes / 5;
    outbox.acknowledge(2).await.unwrap();
    outbox.acknowledge(2).await.unwrap();
    assert_eq!(
        seqs(&outbox.batch(100, usize::MAX).await.unwrap()),
        [3, 4, 5]
    );
    let stats = outbox.stats();
    assert_eq!(
        (stats.entries, stats.bytes, stats.forwarded),
        (3, 3 * size, 2)
    );
    outbox.acknowledge(5).await.unwrap();
    assert_eq!(outbox.stats().entries, 0);
    accept_all(&outbox, &["f"]).await;
    assert_eq!(seqs(&outbox.batch(100, usize::MAX).await.unwrap()), [6]);
}

#[tokio::test]
async fn a_full_outbox_refuses_accepts_and_drops_events() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&dir, 1000).await;
    let mut accepted = 0;
    while outbox.accept(invocation("a", "")).await.is_ok() {
        accepted += 1;
    }
    assert!(accepted > 1);
    // Events are smaller: a few still fit.
    for _ in 0..100 {
        outbox.record(finished(200));
    }
    let refused = outbox.accept(invocation("late", "")).await;
    assert!(matches!(refused, Err(OutboxError::Full)), "{refused:?}");
    let stats = outbox.stats();
    let events_kept = stats.entries - accepted;
    assert!(stats.dropped > 0 && stats.bytes <= 1000, "{stats:?}");
    assert_eq!(stats.dropped, 100 - events_kept);

    outbox.acknowledge(1).await.unwrap();
    outbox.accept(invocation("b", "")).await.unwrap();
    let huge = QueuedInvocation {
        body: vec![0; MAX_ENTRY_BYTES].into(),
        ..invocation("huge", "")
    };
    let refused = outbox.accept(huge).await;
    assert!(
        matches!(refused, Err(OutboxError::TooLarge(_))),
        "{refused:?}"
    );
}

#[tokio::test]
async fn an_idempotency_key_replays_the_first_id_also_once_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&dir, 1 << 20).await;
    let accepted = |id: &str, replay| Accepted {
        id: id.to_owned(),
        replay,
    };
    let first = outbox.accept(invocation("first", "k")).await.unwrap();
    assert_eq!(first, accepted("first", false));
    let again = outbox.accept(invocation("second", "k")).await.unwrap();
    assert_eq!(again, accepted("first", true));
    let other_project = QueuedInvocation {
        project_id: "other".to_owned(),
        ..invocation("third", "k")
    };
    let other = outbox.accept(other_project).await.unwrap();
    assert_eq!(other, accepted("third", false));
    assert_eq!(outbox.stats().entries, 2);

    outbox.acknowledge(u64::MAX).await.unwrap();
    let later = outbox.accept(invocation("fourth", "k")).await.unwrap();
    assert_eq!(later, accepted("first", true));
    assert_eq!(outbox.stats().entries, 0);

    // In one transaction: the second sees the first's key.
    let (one, two) = tokio::join!(
        outbox.accept(invocation("x", "k2")),
        outbox.accept(invocation("y", "k2")),
    );
    let (one, two) = (one.unwrap(), two.unwrap());
    assert_eq!((one.id == two.id, one.replay != two.replay), (true, true));
    assert_eq!(outbox.stats().entries, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_accepts_share_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let outbox = open(&dir, 1 << 20).await;
    let tasks: Vec<_> = (0..200)
        .map(|n| {
            let outbox = Arc::clone(&outbox);
            tokio::spawn(async move { outbox.accept(invocation(&format!("i{n}"), "")).await })
        })
        .collect();
    let mut ids = HashSet::new();
    for task in tasks {
        ids.insert(task.await.unwrap().unwrap().id);
    }
    assert_eq!((ids.len(), outbox.stats().entries), (200, 200));
    let commits = outbox.shared.commits.load(Ordering::Relaxed);
    assert!(commits < 200, "{commits} transactions for 200 accepts");
}
