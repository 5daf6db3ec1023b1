//! `increment` and `compare_and_swap`, alone and under concurrency.

use std::sync::Arc;
use std::time::{Duration, Instant};

use nexus_context::{ContextStore, Error, Namespace, Ttl};

use crate::expiry::assert_long_ttl;

const CONCURRENT_INCREMENTS: i64 = 200;
const CONCURRENT_SWAPPERS: i64 = 50;
/// A swapper that loses this often is not losing to other swappers but to a bug.
const MAX_SWAP_ATTEMPTS: usize = 10_000;

fn app() -> Namespace {
    Namespace::new(["app", "default"])
}

async fn value(store: &dyn ContextStore, namespace: &Namespace, key: &str) -> Option<String> {
    let bytes = store.get(namespace, key).await.unwrap()?;
    Some(String::from_utf8(bytes).unwrap())
}

pub async fn increment_treats_missing_as_zero(store: Arc<dyn ContextStore>) {
    let namespace = app();
    assert_eq!(store.increment(&namespace, "n", 5).await.unwrap(), 5);
    // Stored as decimal text, which is what `get` returns.
    assert_eq!(value(&*store, &namespace, "n").await.as_deref(), Some("5"));
    assert_eq!(store.increment(&namespace, "n", -7).await.unwrap(), -2);
    assert_eq!(value(&*store, &namespace, "n").await.as_deref(), Some("-2"));
    assert_eq!(store.ttl(&namespace, "n").await.unwrap(), Ttl::Persistent);

    assert_eq!(store.increment(&namespace, "zero", 0).await.unwrap(), 0);
    assert_eq!(
        value(&*store, &namespace, "zero").await.as_deref(),
        Some("0")
    );
}

pub async fn increment_reads_decimal_text(store: Arc<dyn ContextStore>) {
    let namespace = app();
    store.set(&namespace, "n", b"41", None).await.unwrap();
    assert_eq!(store.increment(&namespace, "n", 1).await.unwrap(), 42);
    store
        .set(&namespace, "n", b"-9223372036854775808", None)
        .await
        .unwrap();
    assert_eq!(
        store.increment(&namespace, "n", 1).await.unwrap(),
        i64::MIN + 1
    );
}

pub async fn increment_refuses_non_integers(store: Arc<dyn ContextStore>) {
    let namespace = app();
    // Redis' rules, which every backend follows so that guests cannot tell them apart.
    for text in [
        "abc",
        "",
        "1.5",
        " 1",
        "1 ",
        "+1",
        "01",
        "-0",
        "9223372036854775808",
    ] {
        store
            .set(&namespace, "n", text.as_bytes(), None)
            .await
            .unwrap();
        let result = store.increment(&namespace, "n", 1).await;
        assert!(
            matches!(result, Err(Error::NotAnInteger)),
            "{text:?}: {result:?}"
        );
        assert_eq!(value(&*store, &namespace, "n").await.as_deref(), Some(text));
    }
}

pub async fn increment_refuses_overflow(store: Arc<dyn ContextStore>) {
    let namespace = app();
    let max = i64::MAX.to_string();
    store
        .set(&namespace, "n", max.as_bytes(), None)
        .await
        .unwrap();
    let result = store.increment(&namespace, "n", 1).await;
    assert!(matches!(result, Err(Error::Overflow)), "{result:?}");
    assert_eq!(value(&*store, &namespace, "n").await, Some(max));

    let min = i64::MIN.to_string();
    store
        .set(&namespace, "n", min.as_bytes(), None)
        .await
        .unwrap();
    let result = store.increment(&namespace, "n", -1).await;
    assert!(matches!(result, Err(Error::Overflow)), "{result:?}");
    assert_eq!(value(&*store, &namespace, "n").await, Some(min));
}

pub async fn increment_keeps_the_ttl(store: Arc<dyn ContextStore>) {
    let namespace = app();
    store
        .set(&namespace, "n", b"1", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(store.increment(&namespace, "n", 1).await.unwrap(), 2);
    assert_long_ttl(&*store, &namespace, "n").await;
}

pub async fn swap_expecting_none_only_creates(store: Arc<dyn ContextStore>) {
    let namespace = app();
    assert!(
        store
            .compare_and_swap(&namespace, "k", None, b"first")
            .await
            .unwrap()
    );
    assert_eq!(
        value(&*store, &namespace, "k").await.as_deref(),
        Some("first")
    );
    assert!(
        !store
            .compare_and_swap(&namespace, "k", None, b"second")
            .await
            .unwrap()
    );
    assert_eq!(
        value(&*store, &namespace, "k").await.as_deref(),
        Some("first")
    );
}

pub async fn swap_compares_the_current_value(store: Arc<dyn ContextStore>) {
    let namespace = app();
    // Expecting a value on a missing key fails and creates nothing, even for an empty value.
    assert!(
        !store
            .compare_and_swap(&namespace, "k", Some(b""), b"x")
            .await
            .unwrap()
    );
    assert!(!store.exists(&namespace, "k").await.unwrap());

    store.set(&namespace, "k", b"one", None).await.unwrap();
    assert!(
        !store
            .compare_and_swap(&namespace, "k", Some(b"two"), b"x")
            .await
            .unwrap()
    );
    assert!(
        !store
            .compare_and_swap(&namespace, "k", Some(b"on"), b"x")
            .await
            .unwrap()
    );
    assert_eq!(
        value(&*store, &namespace, "k").await.as_deref(),
        Some("one")
    );
    assert!(
        store
            .compare_and_swap(&namespace, "k", Some(b"one"), b"two")
            .await
            .unwrap()
    );
    assert_eq!(
        value(&*store, &namespace, "k").await.as_deref(),
        Some("two")
    );

    store.set(&namespace, "empty", b"", None).await.unwrap();
    assert!(
        store
            .compare_and_swap(&namespace, "empty", Some(b""), b"full")
            .await
            .unwrap()
    );
    assert_eq!(
        value(&*store, &namespace, "empty").await.as_deref(),
        Some("full")
    );
}

pub async fn swap_makes_the_key_persistent(store: Arc<dyn ContextStore>) {
    let namespace = app();
    store
        .set(&namespace, "k", b"v", Some(Duration::from_secs(60)))
        .await
        .unwrap();
    assert!(
        store
            .compare_and_swap(&namespace, "k", Some(b"v"), b"w")
            .await
            .unwrap()
    );
    assert_eq!(store.ttl(&namespace, "k").await.unwrap(), Ttl::Persistent);
}

pub async fn concurrent_increments_are_atomic(store: Arc<dyn ContextStore>) {
    let namespace = app();
    let started = Instant::now();
    let tasks: Vec<_> = (0..CONCURRENT_INCREMENTS)
        .map(|_| {
            let store = store.clone();
            let namespace = namespace.clone();
            tokio::spawn(async move { store.increment(&namespace, "hits", 1).await.unwrap() })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    eprintln!(
        "{CONCURRENT_INCREMENTS} concurrent increments took {:?}",
        started.elapsed()
    );
    // Each increment saw a distinct total: none was lost or applied twice.
    results.sort_unstable();
    assert_eq!(results, (1..=CONCURRENT_INCREMENTS).collect::<Vec<_>>());
    let total = CONCURRENT_INCREMENTS.to_string();
    assert_eq!(value(&*store, &namespace, "hits").await, Some(total));
}

pub async fn concurrent_swap_loops_are_atomic(store: Arc<dyn ContextStore>) {
    let namespace = app();
    let tasks: Vec<_> = (0..CONCURRENT_SWAPPERS)
        .map(|_| {
            let store = store.clone();
            let namespace = namespace.clone();
            tokio::spawn(async move {
                for _ in 0..MAX_SWAP_ATTEMPTS {
                    let current = store.get(&namespace, "counter").await.unwrap();
                    let count: i64 = match &current {
                        Some(bytes) => std::str::from_utf8(bytes).unwrap().parse().unwrap(),
                        None => 0,
                    };
                    let next = (count + 1).to_string();
                    if store
                        .compare_and_swap(
                            &namespace,
                            "counter",
                            current.as_deref(),
                            next.as_bytes(),
                        )
                        .await
                        .unwrap()
                    {
                        return;
                    }
                }
                panic!("lost {MAX_SWAP_ATTEMPTS} compare-and-swap races in a row");
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let total = CONCURRENT_SWAPPERS.to_string();
    assert_eq!(value(&*store, &namespace, "counter").await, Some(total));
}
