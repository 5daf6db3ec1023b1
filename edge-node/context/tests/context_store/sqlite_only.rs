//! What only the SQLite backend promises: its data survives a restart.

use nexus_context::{ContextStore, Namespace, SqliteStore, Ttl};

use crate::expiry::assert_long_ttl;

#[tokio::test]
async fn reopened_store_keeps_its_data() {
    let directory = tempfile::tempdir().unwrap();
    let path = directory.path().join("context.db");
    let namespace = Namespace::new(["app", "default"]);

    let store = SqliteStore::open(&path).await.unwrap();
    store
        .set(&namespace, "persistent", b"kept", None)
        .await
        .unwrap();
    store
        .set(
            &namespace,
            "expiring",
            b"kept too",
            Some(std::time::Duration::from_secs(60)),
        )
        .await
        .unwrap();
    store.increment(&namespace, "counter", 3).await.unwrap();
    store.close().await;
    drop(store);

    let reopened = SqliteStore::open(&path).await.unwrap();
    assert_eq!(
        reopened
            .get(&namespace, "persistent")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"kept"[..])
    );
    assert_eq!(
        reopened
            .get(&namespace, "expiring")
            .await
            .unwrap()
            .as_deref(),
        Some(&b"kept too"[..])
    );
    assert_long_ttl(&reopened, &namespace, "expiring").await;
    assert_eq!(
        reopened.ttl(&namespace, "persistent").await.unwrap(),
        Ttl::Persistent
    );
    assert_eq!(
        reopened.increment(&namespace, "counter", 1).await.unwrap(),
        4
    );
    let mut keys = reopened.keys(&namespace).await.unwrap();
    keys.sort();
    assert_eq!(keys, ["counter", "expiring", "persistent"]);
    reopened.close().await;
}

#[tokio::test]
async fn purge_expired_reclaims_only_expired_rows() {
    let directory = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(directory.path().join("context.db"))
        .await
        .unwrap();
    let namespace = Namespace::new(["app"]);
    store
        .set(&namespace, "gone", b"v", Some(std::time::Duration::ZERO))
        .await
        .unwrap();
    store.set(&namespace, "kept", b"v", None).await.unwrap();
    assert_eq!(store.purge_expired().await.unwrap(), 1);
    assert_eq!(store.purge_expired().await.unwrap(), 0);
    assert!(store.exists(&namespace, "kept").await.unwrap());
    store.close().await;
}
