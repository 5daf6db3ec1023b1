//! Reads, writes, listing, namespace isolation and limits.

use std::collections::BTreeMap;
use std::sync::Arc;

use nexus_context::{ContextStore, Error, MAX_KEY_BYTES, MAX_VALUE_BYTES, Namespace};

fn app() -> Namespace {
    Namespace::new(["app", "default"])
}

async fn sorted_keys(store: &dyn ContextStore, namespace: &Namespace) -> Vec<String> {
    let mut keys = store.keys(namespace).await.unwrap();
    keys.sort();
    keys
}

fn sorted(keys: &[&str]) -> Vec<String> {
    let mut keys: Vec<String> = keys.iter().map(|key| (*key).to_owned()).collect();
    keys.sort();
    keys
}

pub async fn get_returns_what_set_stored(store: Arc<dyn ContextStore>) {
    let namespace = app();
    assert_eq!(store.get(&namespace, "greeting").await.unwrap(), None);

    store
        .set(&namespace, "greeting", b"hello", None)
        .await
        .unwrap();
    assert_eq!(
        store.get(&namespace, "greeting").await.unwrap().as_deref(),
        Some(&b"hello"[..])
    );

    store
        .set(&namespace, "greeting", b"bye", None)
        .await
        .unwrap();
    assert_eq!(
        store.get(&namespace, "greeting").await.unwrap().as_deref(),
        Some(&b"bye"[..])
    );

    // An empty value is a value, not a missing key.
    store.set(&namespace, "empty", b"", None).await.unwrap();
    assert_eq!(
        store.get(&namespace, "empty").await.unwrap(),
        Some(Vec::new())
    );
    assert!(store.exists(&namespace, "empty").await.unwrap());

    let every_byte: Vec<u8> = (0..=255).collect();
    store
        .set(&namespace, "binary", &every_byte, None)
        .await
        .unwrap();
    assert_eq!(
        store.get(&namespace, "binary").await.unwrap(),
        Some(every_byte)
    );
}

pub async fn delete_reports_whether_key_existed(store: Arc<dyn ContextStore>) {
    let namespace = app();
    assert!(!store.delete(&namespace, "k").await.unwrap());

    store.set(&namespace, "k", b"v", None).await.unwrap();
    assert!(store.delete(&namespace, "k").await.unwrap());
    assert_eq!(store.get(&namespace, "k").await.unwrap(), None);
    assert!(!store.delete(&namespace, "k").await.unwrap());
}

pub async fn exists_follows_set_and_delete(store: Arc<dyn ContextStore>) {
    let namespace = app();
    assert!(!store.exists(&namespace, "k").await.unwrap());
    store.set(&namespace, "k", b"v", None).await.unwrap();
    assert!(store.exists(&namespace, "k").await.unwrap());
    store.delete(&namespace, "k").await.unwrap();
    assert!(!store.exists(&namespace, "k").await.unwrap());
}

pub async fn keys_lists_exactly_the_namespace_keys(store: Arc<dyn ContextStore>) {
    let namespace = app();
    assert!(store.keys(&namespace).await.unwrap().is_empty());

    // Keys that are separators or glob syntax in some backend's encoding.
    let tricky = [
        "plain",
        "with:colon",
        "with/slash",
        "glob*?[a-z]\\",
        "*",
        "ünïcödé ✓",
        "nul\0byte",
        " spaced ",
    ];
    for key in tricky {
        store
            .set(&namespace, key, key.as_bytes(), None)
            .await
            .unwrap();
    }
    // Neighbours whose names start like, or extend, the namespace under test.
    for neighbour in [
        Namespace::new(["app"]),
        Namespace::new(["app", "default2"]),
        Namespace::new(["app", "default", "nested"]),
        Namespace::new(["app", "defaul"]),
    ] {
        store
            .set(&neighbour, "neighbour", b"x", None)
            .await
            .unwrap();
    }

    assert_eq!(sorted_keys(&*store, &namespace).await, sorted(&tricky));

    store.delete(&namespace, "with:colon").await.unwrap();
    let remaining: Vec<&str> = tricky
        .into_iter()
        .filter(|key| *key != "with:colon")
        .collect();
    assert_eq!(sorted_keys(&*store, &namespace).await, sorted(&remaining));
    assert!(
        store
            .keys(&Namespace::new(["nobody"]))
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn namespaces_are_isolated(store: Arc<dyn ContextStore>) {
    // Pairs that collide under a naive `namespace + separator + key` encoding.
    let pairs = [
        ("a", "b:c"),
        ("a:b", "c"),
        ("a", "b/c"),
        ("a/b", "c"),
        ("x", "y\0z"),
        ("x\0y", "z"),
        // Glob syntax in a namespace must match itself literally when listing keys.
        ("n*", "k1"),
        ("nx", "k2"),
        ("[ab]", "k"),
        ("a\\b", "k"),
        ("1", "1:2"),
        ("1:1", "2"),
        ("", "k"),
    ];
    for (namespace, key) in pairs {
        let value = format!("{namespace}|{key}");
        store
            .set(&Namespace::new([namespace]), key, value.as_bytes(), None)
            .await
            .unwrap();
    }
    let mut expected_keys: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (namespace, key) in pairs {
        let expected = format!("{namespace}|{key}").into_bytes();
        assert_eq!(
            store.get(&Namespace::new([namespace]), key).await.unwrap(),
            Some(expected),
            "{namespace:?} {key:?}"
        );
        expected_keys.entry(namespace).or_default().push(key);
    }
    for (namespace, keys) in expected_keys {
        assert_eq!(
            sorted_keys(&*store, &Namespace::new([namespace])).await,
            sorted(&keys),
            "keys of {namespace:?}"
        );
    }
    assert!(store.delete(&Namespace::new(["a:b"]), "c").await.unwrap());
    assert!(store.exists(&Namespace::new(["a"]), "b:c").await.unwrap());
    assert!(!store.exists(&Namespace::new(["a"]), "c").await.unwrap());
    assert!(!store.exists(&Namespace::new(["b"]), "b:c").await.unwrap());
}

pub async fn invalid_keys_are_refused_and_nothing_is_written(store: Arc<dyn ContextStore>) {
    let namespace = app();
    let too_long = "k".repeat(MAX_KEY_BYTES + 1);
    // 128 two-byte characters: the limit counts bytes, not characters.
    let too_long_in_bytes = "é".repeat(128);
    for key in ["", too_long.as_str(), too_long_in_bytes.as_str()] {
        let refused = |result: Result<(), Error>| {
            assert!(
                matches!(result, Err(Error::InvalidKey { len }) if len == key.len()),
                "key of {} bytes: {result:?}",
                key.len()
            );
        };
        refused(store.set(&namespace, key, b"v", None).await);
        refused(store.get(&namespace, key).await.map(drop));
        refused(store.delete(&namespace, key).await.map(drop));
        refused(store.exists(&namespace, key).await.map(drop));
        refused(store.increment(&namespace, key, 1).await.map(drop));
        refused(
            store
                .compare_and_swap(&namespace, key, None, b"v")
                .await
                .map(drop),
        );
        refused(store.ttl(&namespace, key).await.map(drop));
    }
    assert!(store.keys(&namespace).await.unwrap().is_empty());

    let longest = "k".repeat(MAX_KEY_BYTES);
    store.set(&namespace, &longest, b"v", None).await.unwrap();
    assert_eq!(store.keys(&namespace).await.unwrap(), vec![longest]);
}

pub async fn oversized_values_are_refused_and_nothing_is_written(store: Arc<dyn ContextStore>) {
    let namespace = app();
    let too_large = vec![7_u8; MAX_VALUE_BYTES + 1];
    let refused = |result: Result<(), Error>| {
        assert!(
            matches!(result, Err(Error::ValueTooLarge { len }) if len == MAX_VALUE_BYTES + 1),
            "{result:?}"
        );
    };

    refused(store.set(&namespace, "new", &too_large, None).await);
    refused(
        store
            .compare_and_swap(&namespace, "new", None, &too_large)
            .await
            .map(drop),
    );
    assert!(!store.exists(&namespace, "new").await.unwrap());

    store.set(&namespace, "old", b"kept", None).await.unwrap();
    refused(store.set(&namespace, "old", &too_large, None).await);
    refused(
        store
            .compare_and_swap(&namespace, "old", Some(b"kept"), &too_large)
            .await
            .map(drop),
    );
    assert_eq!(
        store.get(&namespace, "old").await.unwrap().as_deref(),
        Some(&b"kept"[..])
    );

    let largest = vec![9_u8; MAX_VALUE_BYTES];
    store
        .set(&namespace, "largest", &largest, None)
        .await
        .unwrap();
    assert_eq!(
        store.get(&namespace, "largest").await.unwrap(),
        Some(largest)
    );
}
