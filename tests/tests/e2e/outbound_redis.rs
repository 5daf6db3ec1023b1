//! Spin outbound Redis from guests, both interface versions (`/redis-probe`:
//! `fermyon:spin/redis@2.0.0`, `/p3/redis-probe`: `spin:redis/redis@3.0.0`), against the real
//! Redis on 127.0.0.1:6379, the one Redis address the probes' `allowed_outbound_hosts` allow.
//! Every test works under its own key prefix and removes its keys.

use futures::StreamExt as _;
use http::StatusCode;
use nexus_tests::{TestPlatform, TestResponse};
use redis::AsyncCommands as _;

use crate::counting_listener::CountingListener;

/// The Redis the probes may reach.
const REDIS: &str = "redis://127.0.0.1:6379";

const PROBES: [&str; 2] = ["/redis-probe", "/p3/redis-probe"];

/// The test's own client of the same Redis, to check what the guests did.
async fn redis_client() -> redis::aio::MultiplexedConnection {
    let connect = async {
        redis::Client::open(REDIS)?
            .get_multiplexed_async_connection()
            .await
    };
    connect.await.unwrap_or_else(|error| {
        panic!(
            "Redis is not reachable at {REDIS} ({error}); start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save \"\" --appendonly no"
        )
    })
}

/// A key prefix no other test (or run) uses.
fn unique_prefix() -> String {
    format!("nexus-test:{}:", uuid::Uuid::new_v4())
}

/// Deletes every key under `prefix`.
async fn clean_up(redis: &mut redis::aio::MultiplexedConnection, prefix: &str) {
    let keys: Vec<String> = redis.keys(format!("{prefix}*")).await.unwrap();
    if !keys.is_empty() {
        let _: u64 = redis.del(keys).await.unwrap();
    }
}

async fn call(platform: &TestPlatform, probe: &str, params: &[(&str, &str)]) -> TestResponse {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    platform.get(&format!("{probe}?{query}")).await
}

/// Runs `params` against Redis through `probe` and returns the `200` body.
async fn ok(platform: &TestPlatform, probe: &str, params: &[(&str, &str)]) -> String {
    let response = call(platform, probe, &with_address(params)).await;
    assert_eq!(
        response.status,
        StatusCode::OK,
        "{probe} {params:?}: {}",
        response.text()
    );
    response.text()
}

/// Runs `params` through `probe` and returns the `500` body: the guest's error, `Debug`.
async fn error(platform: &TestPlatform, probe: &str, params: &[(&str, &str)]) -> String {
    let response = call(platform, probe, params).await;
    assert_eq!(
        response.status,
        StatusCode::INTERNAL_SERVER_ERROR,
        "{probe} {params:?}: {}",
        response.text()
    );
    response.text()
}

fn with_address<'a>(params: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = vec![("address", REDIS)];
    all.extend_from_slice(params);
    all
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[tokio::test]
async fn get_set_incr_and_del_round_trip_through_real_redis() {
    let mut redis = redis_client().await;
    let platform = TestPlatform::builder().start().await;
    for probe in PROBES {
        let prefix = unique_prefix();
        let greeting = format!("{prefix}greeting");
        let counter = format!("{prefix}counter");
        let preset = format!("{prefix}preset");

        assert_eq!(
            ok(
                &platform,
                probe,
                &[("op", "set"), ("key", &greeting), ("value", "héllo")]
            )
            .await,
            "ok"
        );
        let stored: Vec<u8> = redis.get(&greeting).await.unwrap();
        assert_eq!(stored, "héllo".as_bytes(), "{probe}");
        assert_eq!(
            ok(&platform, probe, &[("op", "get"), ("key", &greeting)]).await,
            format!("binary:{}", hex("héllo".as_bytes()))
        );
        let missing = format!("{prefix}missing");
        assert_eq!(
            ok(&platform, probe, &[("op", "get"), ("key", &missing)]).await,
            "nil"
        );

        assert_eq!(
            ok(&platform, probe, &[("op", "incr"), ("key", &counter)]).await,
            "1"
        );
        assert_eq!(
            ok(&platform, probe, &[("op", "incr"), ("key", &counter)]).await,
            "2"
        );
        let () = redis.set(&preset, 41).await.unwrap();
        assert_eq!(
            ok(&platform, probe, &[("op", "incr"), ("key", &preset)]).await,
            "42"
        );

        let deleted = ok(
            &platform,
            probe,
            &[
                ("op", "del"),
                ("key", &greeting),
                ("key", &counter),
                ("key", &missing),
            ],
        )
        .await;
        assert_eq!(deleted, "2", "{probe}");
        let exists: bool = redis.exists(&greeting).await.unwrap();
        assert!(!exists, "{probe}");
        clean_up(&mut redis, &prefix).await;
    }
}

#[tokio::test]
async fn set_commands_round_trip_through_real_redis() {
    let mut redis = redis_client().await;
    let platform = TestPlatform::builder().start().await;
    for probe in PROBES {
        let prefix = unique_prefix();
        let set = format!("{prefix}set");
        let add = [
            ("op", "sadd"),
            ("key", set.as_str()),
            ("value", "b"),
            ("value", "a"),
            ("value", "b"),
        ];
        assert_eq!(ok(&platform, probe, &add).await, "2", "{probe}");
        let members: Vec<String> = redis.smembers(&set).await.unwrap();
        assert_eq!(members.len(), 2, "{probe}");
        assert_eq!(
            ok(&platform, probe, &[("op", "smembers"), ("key", &set)]).await,
            "a\nb"
        );
        let remove = [
            ("op", "srem"),
            ("key", set.as_str()),
            ("value", "a"),
            ("value", "zz"),
        ];
        assert_eq!(ok(&platform, probe, &remove).await, "1", "{probe}");
        assert_eq!(
            ok(&platform, probe, &[("op", "smembers"), ("key", &set)]).await,
            "b"
        );
        clean_up(&mut redis, &prefix).await;
    }
}

#[tokio::test]
async fn execute_converts_parameters_and_results_like_spin() {
    let mut redis = redis_client().await;
    let platform = TestPlatform::builder().start().await;
    for probe in PROBES {
        let prefix = unique_prefix();
        let number = format!("{prefix}number");
        let bytes = format!("{prefix}bytes");
        let list = format!("{prefix}list");
        let missing = format!("{prefix}missing");
        let execute = |command: &'static str, args: Vec<String>| {
            let platform = &platform;
            async move {
                let mut params = vec![
                    ("op", "execute".to_owned()),
                    ("command", command.to_owned()),
                ];
                params.extend(args.into_iter().map(|arg| ("arg", arg)));
                let params: Vec<(&str, &str)> = params
                    .iter()
                    .map(|(name, value)| (*name, value.as_str()))
                    .collect();
                ok(platform, probe, &params).await
            }
        };

        // An int64 parameter goes over the wire as its decimal text; OK is a status.
        assert_eq!(
            execute("SET", vec![format!("text:{number}"), "int:42".into()]).await,
            "status:OK"
        );
        let stored: String = redis.get(&number).await.unwrap();
        assert_eq!(stored, "42", "{probe}");
        // A bulk string is binary; an integer reply is int64.
        assert_eq!(
            execute("GET", vec![format!("text:{number}")]).await,
            format!("binary:{}", hex(b"42"))
        );
        assert_eq!(
            execute("INCRBY", vec![format!("text:{number}"), "int:-50".into()]).await,
            "int64:-8"
        );
        // A missing value is nil; a simple string other than OK is a status too.
        assert_eq!(execute("GET", vec![format!("text:{missing}")]).await, "nil");
        assert_eq!(execute("PING", vec![]).await, "status:PONG");

        // Binary parameters and results are byte-exact, invalid UTF-8 included.
        assert_eq!(
            execute("SET", vec![format!("text:{bytes}"), "hex:00ff80".into()]).await,
            "status:OK"
        );
        let stored: Vec<u8> = redis.get(&bytes).await.unwrap();
        assert_eq!(stored, [0x00, 0xff, 0x80], "{probe}");
        assert_eq!(
            execute("GET", vec![format!("text:{bytes}")]).await,
            "binary:00ff80"
        );

        // Arrays are flattened into the result list, nils kept in place.
        assert_eq!(
            execute(
                "RPUSH",
                vec![format!("text:{list}"), "text:a".into(), "int:7".into()]
            )
            .await,
            "int64:2"
        );
        assert_eq!(
            execute(
                "LRANGE",
                vec![format!("text:{list}"), "int:0".into(), "int:-1".into()]
            )
            .await,
            format!("binary:{}\nbinary:{}", hex(b"a"), hex(b"7"))
        );
        assert_eq!(
            execute(
                "MGET",
                vec![format!("text:{number}"), format!("text:{missing}")]
            )
            .await,
            format!("binary:{}\nnil", hex(b"-8"))
        );
        clean_up(&mut redis, &prefix).await;
    }
}

#[tokio::test]
async fn publish_reaches_a_real_subscriber() {
    let platform = TestPlatform::builder().start().await;
    for probe in PROBES {
        let channel = format!("{}events", unique_prefix());
        let client = redis::Client::open(REDIS).unwrap();
        let mut subscriber = client.get_async_pubsub().await.unwrap_or_else(|error| {
            panic!("Redis is not reachable at {REDIS} ({error}); start it with: redis-server --daemonize yes --bind 127.0.0.1 --port 6379")
        });
        subscriber.subscribe(&channel).await.unwrap();
        let mut messages = subscriber.on_message();

        let payload = format!("hello from {probe}");
        let published = [
            ("op", "publish"),
            ("channel", channel.as_str()),
            ("payload", payload.as_str()),
        ];
        assert_eq!(ok(&platform, probe, &published).await, "ok");

        let message = tokio::time::timeout(std::time::Duration::from_secs(10), messages.next())
            .await
            .expect("the published message did not arrive")
            .expect("the subscription ended");
        assert_eq!(message.get_channel_name(), channel);
        assert_eq!(message.get_payload_bytes(), payload.as_bytes());
    }
}

#[tokio::test]
async fn bad_commands_are_other_errors_with_the_server_message() {
    let mut redis = redis_client().await;
    let platform = TestPlatform::builder().start().await;
    for probe in PROBES {
        let prefix = unique_prefix();
        let text = format!("{prefix}text");
        let () = redis.set(&text, "not a number").await.unwrap();

        let unknown = error(
            &platform,
            probe,
            &with_address(&[("op", "execute"), ("command", "NO-SUCH-COMMAND")]),
        )
        .await;
        assert!(
            unknown.contains("Other(") && unknown.contains("unknown command"),
            "{probe}: {unknown}"
        );

        let not_a_number = error(
            &platform,
            probe,
            &with_address(&[("op", "incr"), ("key", &text)]),
        )
        .await;
        assert!(
            not_a_number.contains("Other(") && not_a_number.contains("not an integer"),
            "{probe}: {not_a_number}"
        );

        // Spin answers `other` (not `type-error`) for the server's WRONGTYPE.
        let wrong_type = error(
            &platform,
            probe,
            &with_address(&[("op", "sadd"), ("key", &text), ("value", "a")]),
        )
        .await;
        assert!(
            wrong_type.contains("Other(") && wrong_type.contains("WRONGTYPE"),
            "{probe}: {wrong_type}"
        );
        clean_up(&mut redis, &prefix).await;
    }
}

#[tokio::test]
async fn addresses_outside_allowed_outbound_hosts_are_invalid_address_before_any_connection() {
    let listener = CountingListener::bind().await;
    let platform = TestPlatform::builder().start().await;
    let port = listener.port();
    for probe in PROBES {
        for address in [
            format!("redis://127.0.0.1:{port}"),
            format!("redis://localhost:{port}"),
            format!("redis://user:secret@127.0.0.1:{port}/0"),
            format!("127.0.0.1:{port}"),
            // The allowed host, but under another name, scheme or port.
            "redis://localhost:6379".to_owned(),
            "rediss://127.0.0.1:6379".to_owned(),
            "redis://127.0.0.1:6380".to_owned(),
        ] {
            let body = error(
                &platform,
                probe,
                &[
                    ("address", &address),
                    ("op", "execute"),
                    ("command", "PING"),
                ],
            )
            .await;
            assert!(body.contains("InvalidAddress"), "{probe} {address}: {body}");
        }
    }
    listener.assert_never_connected().await;
}

#[tokio::test]
async fn allowed_but_malformed_addresses_are_invalid_address() {
    let platform = TestPlatform::builder().start().await;
    for probe in PROBES {
        for address in ["redis://127.0.0.1:6379/not-a-database", "127.0.0.1:6379"] {
            let body = error(&platform, probe, &[("address", address)]).await;
            assert!(body.contains("InvalidAddress"), "{probe} {address}: {body}");
        }
    }
}
