//! The Redis Streams event bus against the real Redis: replicas share one stream in one
//! order, listeners resume after an id and are told when it was trimmed away.

use std::time::Duration;

use futures::StreamExt as _;
use nexus_coordinator::events::{Event, EventBus, EventKind, Listener, MissedEvents, RedisBus};

/// Long enough for any event the bus owes a listener.
const DEADLINE: Duration = Duration::from_secs(10);

fn created(name: &str) -> EventKind {
    EventKind::AgentCreated {
        project: "p".to_owned(),
        agent: name.to_owned(),
        name: name.to_owned(),
    }
}

async fn next(events: &mut Listener) -> Event {
    tokio::time::timeout(DEADLINE, events.next())
        .await
        .expect("no event came")
        .expect("the stream ended")
        .expect("events were missed")
}

fn name(event: &Event) -> &str {
    match &event.kind {
        EventKind::AgentCreated { name, .. } => name,
        other => panic!("unexpected event {other:?}"),
    }
}

/// A stream key no other test uses, deleted when dropped.
struct StreamKey(String);

impl StreamKey {
    fn new() -> Self {
        Self(format!("nexus-test:events:{}", uuid::Uuid::new_v4()))
    }

    async fn command(&self, args: &[&str]) {
        let client = redis::Client::open(nexus_tests::redis_url()).unwrap();
        let mut connection = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd(args[0])
            .arg(&args[1..])
            .exec_async(&mut connection)
            .await
            .unwrap();
    }
}

async fn bus(key: &StreamKey) -> RedisBus {
    RedisBus::connect(&nexus_tests::redis_url(), &key.0, 1000)
        .await
        .unwrap_or_else(|error| {
            panic!("Redis is required at {}: {error}", nexus_tests::redis_url())
        })
}

#[tokio::test]
async fn replicas_share_one_stream_in_one_order_and_listeners_resume_after_an_id() {
    let key = StreamKey::new();
    let (first, second) = (bus(&key).await, bus(&key).await);
    let mut listener = second.subscribe(None).await;
    for event in ["a", "b", "c"] {
        first.publish(created(event));
    }
    let a = next(&mut listener).await;
    let b = next(&mut listener).await;
    let c = next(&mut listener).await;
    assert_eq!([name(&a), name(&b), name(&c)], ["a", "b", "c"]);
    assert!(a.id < b.id && b.id < c.id);
    // Another replica's events join the same order.
    second.publish(created("d"));
    let d = next(&mut listener).await;
    assert_eq!(name(&d), "d");
    assert!(d.id > c.id);

    let mut resumed = first.subscribe(Some(a.id)).await;
    assert_eq!(next(&mut resumed).await, b);
    assert_eq!(next(&mut resumed).await, c);
    assert_eq!(next(&mut resumed).await, d);
    key.command(&["DEL", &key.0]).await;
}

#[tokio::test]
async fn a_resume_point_trimmed_away_is_reported_then_the_rest_follows() {
    let key = StreamKey::new();
    let bus = bus(&key).await;
    let mut listener = bus.subscribe(None).await;
    for event in ["a", "b", "c"] {
        bus.publish(created(event));
    }
    let a = next(&mut listener).await;
    next(&mut listener).await;
    let c = next(&mut listener).await;
    key.command(&["XTRIM", &key.0, "MAXLEN", "1"]).await;

    let mut resumed = bus.subscribe(Some(a.id)).await;
    match tokio::time::timeout(DEADLINE, resumed.next()).await {
        Ok(Some(Err(MissedEvents::TooOld { after, oldest }))) => {
            assert_eq!((after, oldest), (a.id, c.id));
        }
        other => panic!("expected the gap to be reported, got {other:?}"),
    }
    assert_eq!(next(&mut resumed).await, c);
    key.command(&["DEL", &key.0]).await;
}
