//! What only the tiered store promises: reads come from Redis, every write is in Postgres
//! before it returns, so losing Redis (or the process) loses nothing. A real Redis restart is
//! in `tests/tests/e2e/context.rs`.

use nexus_context::{ContextStore, Namespace, TieredStore};

use crate::harness::{connect_postgres, connect_redis, delete_redis_prefix, fresh_redis_prefix};

#[tokio::test]
async fn a_written_value_survives_losing_the_cache_and_the_store() {
    let prefix = fresh_redis_prefix();
    let (record, schema) = connect_postgres().await;
    let namespace = Namespace::new(["project", "agents", "a", "default"]);
    let store = TieredStore::new(connect_redis(&prefix).await, record.clone());
    store.set(&namespace, "k", b"kept", None).await.unwrap();
    assert_eq!(store.increment(&namespace, "n", 41).await.unwrap(), 41);

    // Redis loses everything, as a restart of a server that keeps nothing on disk does.
    delete_redis_prefix(&prefix).await;
    assert_eq!(
        store.get(&namespace, "k").await.unwrap().as_deref(),
        Some(&b"kept"[..])
    );
    // Another process (a restarted node) over the same record sees the same.
    let other = TieredStore::new(connect_redis(&fresh_redis_prefix()).await, record);
    assert_eq!(other.increment(&namespace, "n", 1).await.unwrap(), 42);
    delete_redis_prefix(&prefix).await;
    crate::harness::drop_schema(&schema).await;
}

#[tokio::test]
async fn reads_are_answered_by_the_cache() {
    let prefix = fresh_redis_prefix();
    let (record, schema) = connect_postgres().await;
    let namespace = Namespace::new(["project", "default"]);
    let store = TieredStore::new(connect_redis(&prefix).await, record.clone());
    store.set(&namespace, "k", b"cached", None).await.unwrap();
    assert_eq!(store.get(&namespace, "missing").await.unwrap(), None);

    // Changed behind the cache's back: the cache still answers what was written through it,
    // and a missing key stays missing, without asking the record.
    record.set(&namespace, "k", b"changed", None).await.unwrap();
    record
        .set(&namespace, "missing", b"now here", None)
        .await
        .unwrap();
    assert_eq!(
        store.get(&namespace, "k").await.unwrap().as_deref(),
        Some(&b"cached"[..])
    );
    assert!(!store.exists(&namespace, "missing").await.unwrap());
    // A write through the store replaces the entry.
    store.set(&namespace, "k", b"new", None).await.unwrap();
    assert_eq!(
        store.get(&namespace, "k").await.unwrap().as_deref(),
        Some(&b"new"[..])
    );
    delete_redis_prefix(&prefix).await;
    crate::harness::drop_schema(&schema).await;
}
