//! The event bus: what happened on the platform (an agent created, changed or deleted, a
//! function deployed, a message to an agent answered …), as
//! typed events in one order, for whoever listens. A listener can resume after the last event
//! it saw. One trait, [`EventBus`]: [`InProcessBus`] for the embedded platform, [`RedisBus`]
//! (one Redis Stream) for coordinators that share their events. Ids have the shape of Redis
//! Stream ids (`<milliseconds>-<sequence>`), so the two agree on them.

mod redis_bus;

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use futures::FutureExt as _;
use futures::StreamExt as _;
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize, Serializer};
use tokio::sync::broadcast;
use tokio_stream::wrappers::BroadcastStream;
use tokio_stream::wrappers::errors::BroadcastStreamRecvError;

pub use self::redis_bus::RedisBus;
pub(crate) use self::redis_bus::blocking_connection;

/// Events an [`InProcessBus`] keeps for listeners that resume.
pub const DEFAULT_RETAINED: usize = 10_000;

/// Where an event stands in the bus's one order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EventId {
    /// When it was published, in milliseconds since the Unix epoch (never going back).
    pub millis: u64,
    /// Its place among the events of that millisecond.
    pub seq: u64,
}

impl fmt::Display for EventId {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "{}-{}", self.millis, self.seq)
    }
}

/// Text that is not `<milliseconds>-<sequence>`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("an event id is <milliseconds>-<sequence>, not {0:?}")]
pub struct InvalidEventId(String);

impl FromStr for EventId {
    type Err = InvalidEventId;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid = || InvalidEventId(text.chars().take(64).collect());
        let (millis, seq) = text.split_once('-').ok_or_else(invalid)?;
        Ok(Self {
            millis: millis.parse().map_err(|_| invalid())?,
            seq: seq.parse().map_err(|_| invalid())?,
        })
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// What happened. Ids are the entities' ids (projects by id, since names can change).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// An agent was created.
    AgentCreated {
        project: String,
        agent: String,
        name: String,
    },
    /// An agent's state changed.
    AgentChanged {
        project: String,
        agent: String,
        state: String,
    },
    /// An agent was deleted.
    AgentDeleted { project: String, agent: String },
    /// A version of a function was deployed.
    FunctionDeployed {
        project: String,
        function: String,
        version: i64,
    },
    /// An asynchronous invocation was accepted and waits for its first attempt.
    InvocationQueued {
        project: String,
        function: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        invocation: String,
    },
    /// An attempt of an asynchronous invocation started.
    InvocationStarted {
        project: String,
        function: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        invocation: String,
        attempt: i32,
    },
    /// An invocation finished with the function's `status`: a message to `agent`, or
    /// (without an agent) a call of the function; `invocation` names an asynchronous one.
    InvocationFinished {
        project: String,
        function: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invocation: Option<String>,
        status: u16,
        /// The version that answered, when the call ran now (not asynchronously).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        version: Option<i64>,
        /// Where it ran: `edge`, `aws-lambda`, `azure-functions` or `gcp`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        target: Option<String>,
        /// Microseconds from dispatch to the function's response head.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        duration_us: Option<u64>,
        /// The edge node whose own ingress answered the call, when it did (the event was
        /// forwarded from the node's outbox).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        node: Option<String>,
    },
    /// What a guest wrote to stdout or stderr in one invocation (each stream capped by its
    /// runtime), published once its instance has ended.
    GuestLog {
        project: String,
        function: String,
        version: i64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        /// The id of the request that ran it (`x-request-id`), when it ran now.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        /// The asynchronous invocation, when it was one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invocation: Option<String>,
        /// `stdout` or `stderr`.
        stream: String,
        /// The output, as text (invalid UTF-8 replaced).
        text: String,
        /// Whether the runtime cut the stream at its cap.
        truncated: bool,
    },
    /// An edge node registered with this coordinator (nodes belong to no project).
    NodeJoined {
        node: String,
        name: String,
        region: String,
    },
    /// An edge node was lost: its lease lapsed, its stream broke or a call to it failed.
    NodeLost {
        node: String,
        name: String,
        reason: String,
    },
    /// A rollout moved: on to a step (`weight`, the new version's share in percent, status
    /// `running`), or ended: `completed` (the alias on the new version), `rolled_back` or
    /// `cancelled` (on the old one), with the reason.
    RolloutChanged {
        project: String,
        function: String,
        alias: String,
        rollout: String,
        from_version: i64,
        to_version: i64,
        weight: i32,
        status: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// An asynchronous invocation used up its attempts or its age: it is on the dead-letter
    /// list.
    InvocationDead {
        project: String,
        function: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
        invocation: String,
        error: String,
    },
}

impl EventKind {
    /// A call of `target` that ran now (not asynchronously), for `agent` if any, and answered
    /// `status` after `took` on `ran_on` (see [`crate::dispatch::ran_on`]).
    pub(crate) fn answered(
        target: &crate::dispatch::Target,
        agent: Option<String>,
        status: u16,
        ran_on: &str,
        took: std::time::Duration,
    ) -> Self {
        Self::InvocationFinished {
            project: target.project_id.to_string(),
            function: target.function.clone(),
            agent,
            invocation: None,
            status,
            version: Some(target.version),
            target: Some(ran_on.to_owned()),
            duration_us: Some(u64::try_from(took.as_micros()).unwrap_or(u64::MAX)),
            node: None,
        }
    }
}

/// An event as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// Its place in the bus's order.
    pub id: EventId,
    /// When it was published (RFC 3339).
    #[serde(serialize_with = "rfc3339")]
    pub at: DateTime<Utc>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

fn rfc3339<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(&at.to_rfc3339())
}

/// Why a listener missed events.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MissedEvents {
    /// It asked to resume after an event the bus no longer keeps.
    #[error("events after {after} are no longer kept; the oldest kept is {oldest}")]
    TooOld { after: EventId, oldest: EventId },
    /// It read more slowly than events were published, and `skipped` went by.
    #[error("the listener fell behind and {skipped} events went by")]
    FellBehind { skipped: u64 },
}

/// What a listener reads: events in the bus's order, and any gap.
pub type Listener = BoxStream<'static, Result<Event, MissedEvents>>;

/// Publishes events, and streams them to listeners in one order.
pub trait EventBus: Send + Sync {
    /// Publishes `kind`, stamped now. The bus gives it its id.
    fn publish(&self, kind: EventKind);

    /// With `after`, the kept events that follow it; then every event published from the
    /// moment the returned future completes. A gap is reported once, as an error, and the
    /// stream goes on after it.
    fn subscribe(&self, after: Option<EventId>) -> BoxFuture<'static, Listener>;
}

/// The bus in this process: the last events kept in memory, new ones broadcast.
pub struct InProcessBus {
    state: Mutex<Kept>,
    live: broadcast::Sender<Event>,
}

struct Kept {
    last: EventId,
    events: VecDeque<Event>,
    capacity: usize,
    /// The newest event no longer kept.
    dropped: Option<EventId>,
}

impl InProcessBus {
    /// A bus keeping the last `retained` events for listeners that resume.
    pub fn new(retained: usize) -> Self {
        let retained = retained.max(1);
        Self {
            state: Mutex::new(Kept {
                last: EventId::default(),
                events: VecDeque::with_capacity(retained.min(1024)),
                capacity: retained,
                dropped: None,
            }),
            live: broadcast::channel(retained.min(4096)).0,
        }
    }

    fn kept(&self) -> std::sync::MutexGuard<'_, Kept> {
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Default for InProcessBus {
    fn default() -> Self {
        Self::new(DEFAULT_RETAINED)
    }
}

impl InProcessBus {
    /// Publishes `kind`, stamped now; its id.
    pub fn append(&self, kind: EventKind) -> EventId {
        let at = Utc::now();
        let mut kept = self.kept();
        let millis = u64::try_from(at.timestamp_millis()).unwrap_or(0);
        let id = if millis > kept.last.millis {
            EventId { millis, seq: 0 }
        } else {
            EventId {
                millis: kept.last.millis,
                seq: kept.last.seq + 1,
            }
        };
        kept.last = id;
        let event = Event { id, at, kind };
        if kept.events.len() == kept.capacity {
            kept.dropped = kept.events.pop_front().map(|dropped| dropped.id);
        }
        kept.events.push_back(event.clone());
        // Sent under the lock, so that listeners see the order in which events were kept. No
        // listener is not an error.
        let _ = self.live.send(event);
        id
    }
}

impl EventBus for InProcessBus {
    fn publish(&self, kind: EventKind) {
        self.append(kind);
    }

    fn subscribe(&self, after: Option<EventId>) -> BoxFuture<'static, Listener> {
        let kept = self.kept();
        let live = BroadcastStream::new(self.live.subscribe());
        let mut replay: Vec<Result<Event, MissedEvents>> = Vec::new();
        let mut seen = kept.last;
        if let Some(after) = after {
            seen = after;
            if let (Some(dropped), Some(oldest)) = (kept.dropped, kept.events.front())
                && dropped > after
            {
                replay.push(Err(MissedEvents::TooOld {
                    after,
                    oldest: oldest.id,
                }));
            }
            replay.extend(
                kept.events
                    .iter()
                    .filter(|event| event.id > after)
                    .cloned()
                    .map(Ok),
            );
            seen = seen.max(kept.last);
        }
        drop(kept);
        let live = live.filter_map(move |received| {
            std::future::ready(match received {
                Ok(event) if event.id <= seen => None,
                Ok(event) => Some(Ok(event)),
                Err(BroadcastStreamRecvError::Lagged(skipped)) => {
                    Some(Err(MissedEvents::FellBehind { skipped }))
                }
            })
        });
        let listener = futures::stream::iter(replay).chain(live).boxed();
        futures::future::ready(listener).boxed()
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;

    use super::*;

    fn created(name: &str) -> EventKind {
        EventKind::AgentCreated {
            project: "p".to_owned(),
            agent: name.to_owned(),
            name: name.to_owned(),
        }
    }

    async fn next_name(events: &mut BoxStream<'static, Result<Event, MissedEvents>>) -> String {
        match events.next().await {
            Some(Ok(Event {
                kind: EventKind::AgentCreated { name, .. },
                ..
            })) => name,
            other => panic!("expected an agent_created event, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn listeners_get_new_events_in_order_and_resume_after_the_last_they_saw() {
        let bus = InProcessBus::new(100);
        let mut live = bus.subscribe(None).await;
        let first = bus.append(created("a"));
        let second = bus.append(created("b"));
        assert!(second > first);
        assert_eq!(next_name(&mut live).await, "a");
        assert_eq!(next_name(&mut live).await, "b");

        bus.append(created("c"));
        let mut resumed = bus.subscribe(Some(first)).await;
        assert_eq!(next_name(&mut resumed).await, "b");
        assert_eq!(next_name(&mut resumed).await, "c");
        bus.append(created("d"));
        assert_eq!(next_name(&mut resumed).await, "d");
        assert_eq!(first.to_string().parse::<EventId>(), Ok(first));
    }

    #[tokio::test]
    async fn a_resume_point_older_than_what_is_kept_is_reported_then_the_rest_follows() {
        let bus = InProcessBus::new(2);
        let first = bus.append(created("a"));
        bus.append(created("b"));
        bus.append(created("c"));
        let mut resumed = bus.subscribe(Some(EventId::default())).await;
        assert!(
            matches!(resumed.next().await, Some(Err(MissedEvents::TooOld { oldest, .. })) if oldest > first)
        );
        assert_eq!(next_name(&mut resumed).await, "b");
        assert_eq!(next_name(&mut resumed).await, "c");
    }

    #[tokio::test]
    async fn a_listener_that_falls_behind_is_told_how_many_it_missed() {
        let bus = InProcessBus::new(1);
        let mut slow = bus.subscribe(None).await;
        for name in ["a", "b", "c"] {
            bus.append(created(name));
        }
        assert_eq!(
            slow.next().await,
            Some(Err(MissedEvents::FellBehind { skipped: 2 }))
        );
        assert_eq!(next_name(&mut slow).await, "c");
        assert!("12".parse::<EventId>().is_err());
    }
}
