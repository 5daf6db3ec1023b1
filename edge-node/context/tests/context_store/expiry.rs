//! TTLs: reporting them, replacing them, and expired keys behaving as missing everywhere.

use std::sync::Arc;
use std::time::Duration;

use nexus_context::{ContextStore, MAX_TTL, Namespace, Ttl};

use crate::harness::wait_until;

const SHORT_TTL: Duration = Duration::from_millis(50);
const LONG_TTL: Duration = Duration::from_secs(60);

fn app() -> Namespace {
    Namespace::new(["app", "default"])
}

/// Asserts that `key` reports a TTL in `(LONG_TTL - 1 s, LONG_TTL]`.
pub async fn assert_long_ttl(store: &dyn ContextStore, namespace: &Namespace, key: &str) {
    match store.ttl(namespace, key).await.unwrap() {
        Ttl::ExpiresIn(left) => assert!(
            left > LONG_TTL - Duration::from_secs(1) && left <= LONG_TTL,
            "{key}: {left:?} left of {LONG_TTL:?}"
        ),
        other => panic!("{key}: expected a TTL of about {LONG_TTL:?}, got {other:?}"),
    }
}

pub async fn ttl_reports_remaining_time(store: Arc<dyn ContextStore>) {
    let namespace = app();
    assert_eq!(store.ttl(&namespace, "k").await.unwrap(), Ttl::Missing);

    store
        .set(&namespace, "k", b"v", Some(LONG_TTL))
        .await
        .unwrap();
    assert_long_ttl(&*store, &namespace, "k").await;

    store
        .set(&namespace, "persistent", b"v", None)
        .await
        .unwrap();
    assert_eq!(
        store.ttl(&namespace, "persistent").await.unwrap(),
        Ttl::Persistent
    );
}

pub async fn set_replaces_the_ttl(store: Arc<dyn ContextStore>) {
    let namespace = app();
    store
        .set(&namespace, "k", b"v1", Some(LONG_TTL))
        .await
        .unwrap();
    store.set(&namespace, "k", b"v2", None).await.unwrap();
    assert_eq!(store.ttl(&namespace, "k").await.unwrap(), Ttl::Persistent);

    store
        .set(&namespace, "k", b"v3", Some(LONG_TTL))
        .await
        .unwrap();
    assert_long_ttl(&*store, &namespace, "k").await;
}

pub async fn expired_keys_behave_as_missing(store: Arc<dyn ContextStore>) {
    let namespace = app();
    let expiring = [
        "get",
        "delete",
        "increment",
        "swap_none",
        "swap_some",
        "ttl",
    ];
    for key in expiring {
        store
            .set(&namespace, key, b"old", Some(SHORT_TTL))
            .await
            .unwrap();
    }
    store.set(&namespace, "survivor", b"v", None).await.unwrap();

    wait_until("expiry of every short-lived key", || {
        let store = store.clone();
        let namespace = namespace.clone();
        async move {
            for key in expiring {
                if store.exists(&namespace, key).await.unwrap() {
                    return false;
                }
            }
            true
        }
    })
    .await;

    assert_eq!(store.get(&namespace, "get").await.unwrap(), None);
    assert!(!store.delete(&namespace, "delete").await.unwrap());
    assert_eq!(store.ttl(&namespace, "ttl").await.unwrap(), Ttl::Missing);
    assert_eq!(
        store.keys(&namespace).await.unwrap(),
        vec!["survivor".to_owned()]
    );

    // The expired "old" must not be read as a number: the count restarts at 0, persistently.
    assert_eq!(
        store.increment(&namespace, "increment", 1).await.unwrap(),
        1
    );
    assert_eq!(
        store.ttl(&namespace, "increment").await.unwrap(),
        Ttl::Persistent
    );

    assert!(
        store
            .compare_and_swap(&namespace, "swap_none", None, b"new")
            .await
            .unwrap()
    );
    assert_eq!(
        store.get(&namespace, "swap_none").await.unwrap().as_deref(),
        Some(&b"new"[..])
    );
    assert!(
        !store
            .compare_and_swap(&namespace, "swap_some", Some(b"old"), b"new")
            .await
            .unwrap()
    );
    assert!(!store.exists(&namespace, "swap_some").await.unwrap());
}

pub async fn zero_ttl_expires_at_once(store: Arc<dyn ContextStore>) {
    let namespace = app();
    store
        .set(&namespace, "fresh", b"v", Some(Duration::ZERO))
        .await
        .unwrap();
    store.set(&namespace, "existing", b"v", None).await.unwrap();
    store
        .set(&namespace, "existing", b"v2", Some(Duration::ZERO))
        .await
        .unwrap();
    for key in ["fresh", "existing"] {
        assert_eq!(store.get(&namespace, key).await.unwrap(), None, "{key}");
        assert_eq!(
            store.ttl(&namespace, key).await.unwrap(),
            Ttl::Missing,
            "{key}"
        );
    }
    assert!(store.keys(&namespace).await.unwrap().is_empty());
}

pub async fn huge_ttls_are_capped(store: Arc<dyn ContextStore>) {
    let namespace = app();
    store
        .set(&namespace, "k", b"v", Some(Duration::MAX))
        .await
        .unwrap();
    match store.ttl(&namespace, "k").await.unwrap() {
        Ttl::ExpiresIn(left) => assert!(
            left <= MAX_TTL && left > MAX_TTL - Duration::from_secs(60),
            "{left:?} left, cap is {MAX_TTL:?}"
        ),
        other => panic!("expected a capped TTL, got {other:?}"),
    }
}
