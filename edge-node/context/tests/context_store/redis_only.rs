//! What only the Redis backend promises: prefixes isolate stores, errors hide credentials.

use nexus_context::{ContextStore, Error, Namespace, RedisStore};

use crate::harness::{connect_redis, delete_redis_prefix, fresh_redis_prefix};

#[tokio::test]
async fn stores_with_different_prefixes_are_isolated() {
    let prefix = fresh_redis_prefix();
    let first = connect_redis(&format!("{prefix}first:")).await;
    let second = connect_redis(&format!("{prefix}second:")).await;
    let namespace = Namespace::new(["app", "default"]);

    first.set(&namespace, "k", b"first", None).await.unwrap();
    let second_saw = second.get(&namespace, "k").await.unwrap();
    let second_keys = second.keys(&namespace).await.unwrap();
    let first_keys = first.keys(&namespace).await.unwrap();
    delete_redis_prefix(&prefix).await;

    assert_eq!(second_saw, None);
    assert!(second_keys.is_empty());
    assert_eq!(first_keys, ["k"]);
    assert_eq!(first.key_prefix(), format!("{prefix}first:"));
}

#[tokio::test]
async fn connection_errors_do_not_leak_credentials() {
    // A port that was free a moment ago: nothing listens there, so the connection is refused.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);

    let url = format!("redis://admin:hunter2@127.0.0.1:{port}/0");
    match RedisStore::connect(&url, "unused:").await {
        Err(Error::Backend(message)) => {
            assert!(!message.contains("hunter2"), "{message}");
            assert!(!message.contains("admin"), "{message}");
            assert!(message.contains(&format!("127.0.0.1:{port}")), "{message}");
        }
        other => panic!("expected a backend error, got {other:?}"),
    }

    match RedisStore::connect("redis://admin:hunter2@[not a host", "unused:").await {
        Err(Error::Backend(message)) => assert!(!message.contains("hunter2"), "{message}"),
        other => panic!("expected a backend error, got {other:?}"),
    }
}
