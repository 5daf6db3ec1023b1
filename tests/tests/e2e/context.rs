//! The tiered context store (Redis in front of Postgres) across a real restart of Redis.

use std::time::{Duration, Instant};

use nexus_context::{ContextStore, Namespace, PostgresStore, RedisStore, TieredStore};
use nexus_tests::PrivateRedis;
use nexus_tests::postgres::FreshDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_redis_is_down_reads_use_the_record_and_writes_fail_and_after_a_restart_nothing_is_lost()
 {
    let directory = tempfile::tempdir().unwrap();
    let socket = directory.path().join("redis.sock");
    let redis = PrivateRedis::start(&socket);
    let url = redis.url();
    let database = FreshDatabase::create().await;
    let record = PostgresStore::connect(database.url()).await.unwrap();
    let cache = RedisStore::connect(&url, "tiered:").await.unwrap();
    let store = TieredStore::new(cache, record);
    let namespace = Namespace::new(["project", "default"]);
    store.set(&namespace, "k", b"before", None).await.unwrap();
    assert_eq!(
        store.get(&namespace, "k").await.unwrap().as_deref(),
        Some(&b"before"[..])
    );

    redis.kill();
    assert_eq!(
        store.get(&namespace, "k").await.unwrap().as_deref(),
        Some(&b"before"[..]),
        "a read falls back to the record"
    );
    let refused = store.set(&namespace, "k", b"during", None).await;
    assert!(refused.is_err(), "{refused:?}");

    let _restarted = PrivateRedis::start(&socket);
    let deadline = Instant::now() + Duration::from_secs(10);
    // The connection manager reconnects on the next command.
    loop {
        match store.set(&namespace, "k2", b"after", None).await {
            Ok(()) => break,
            Err(error) => assert!(
                Instant::now() < deadline,
                "redis did not come back: {error}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(
        store.get(&namespace, "k").await.unwrap().as_deref(),
        Some(&b"before"[..])
    );
    assert_eq!(
        store.get(&namespace, "k2").await.unwrap().as_deref(),
        Some(&b"after"[..])
    );
}
