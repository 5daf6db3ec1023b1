//! The event bus of a cluster: one Redis Stream that every coordinator replica appends to and
//! reads from, so a listener on any replica sees every replica's events, in the stream's one
//! order, under the stream's ids.
//!
//! Publishing hands the event to a writer task (in order, without waiting for Redis); it
//! retries while Redis is away and keeps up to [`MAX_UNSENT`] events meanwhile. The stream is
//! trimmed to about `retained` entries. A listener reads with `XREAD BLOCK` on a connection of
//! its own, from the id it last saw, so a reconnect loses nothing the stream still holds; one
//! that asks for an id older than what was trimmed is told once ([`MissedEvents::TooOld`]).

use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use futures::{FutureExt as _, StreamExt as _};
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::{StreamReadOptions, StreamReadReply};
use redis::{AsyncCommands as _, Client, RedisResult};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{Event, EventBus, EventId, EventKind, Listener, MissedEvents};

/// Events published while Redis does not answer, kept for when it does; beyond this new
/// events are dropped (and logged).
pub const MAX_UNSENT: usize = 100_000;
/// How long one `XREAD` waits for new entries before asking again.
const BLOCK: Duration = Duration::from_secs(1);
/// Entries one `XREAD` returns at most.
const BATCH: usize = 256;
/// The wait before trying Redis again after a failure.
const RETRY: Duration = Duration::from_millis(200);
/// The stream entry's field holding the event.
const FIELD: &str = "event";

/// An event as the stream holds it: everything but the id, which is the entry's.
#[derive(Serialize, Deserialize)]
struct Stored {
    /// RFC 3339.
    at: String,
    #[serde(flatten)]
    kind: EventKind,
}

/// A connection for commands that block up to `block` (`XREAD BLOCK`): the client's default
/// response timeout (half a second) would cut them off.
pub(crate) async fn blocking_connection(
    client: &Client,
    block: Duration,
) -> RedisResult<MultiplexedConnection> {
    let config = redis::AsyncConnectionConfig::new()
        .set_response_timeout(Some(block + Duration::from_secs(5)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
}

/// A bus on one Redis Stream.
pub struct RedisBus {
    client: Client,
    key: String,
    unsent: mpsc::Sender<EventKind>,
}

impl RedisBus {
    /// A bus on the stream `key` of the Redis at `url`, trimmed to about `retained` entries.
    /// Fails when Redis cannot be reached now.
    pub async fn connect(url: &str, key: &str, retained: usize) -> RedisResult<Self> {
        let client = Client::open(url)?;
        let connection = ConnectionManager::new(client.clone()).await?;
        let (unsent, pending) = mpsc::channel(MAX_UNSENT);
        tokio::spawn(write(connection, key.to_owned(), retained, pending));
        Ok(Self {
            client,
            key: key.to_owned(),
            unsent,
        })
    }
}

/// Appends each event to the stream, in order, retrying until Redis takes it.
async fn write(
    mut connection: ConnectionManager,
    key: String,
    retained: usize,
    mut pending: mpsc::Receiver<EventKind>,
) {
    while let Some(kind) = pending.recv().await {
        let stored = Stored {
            at: Utc::now().to_rfc3339(),
            kind,
        };
        let Ok(json) = serde_json::to_string(&stored) else {
            continue;
        };
        loop {
            let appended: RedisResult<String> = redis::cmd("XADD")
                .arg(&key)
                .arg("MAXLEN")
                .arg("~")
                .arg(retained)
                .arg("*")
                .arg(FIELD)
                .arg(&json)
                .query_async(&mut connection)
                .await;
            match appended {
                Ok(_) => break,
                Err(error) => {
                    tracing::warn!(%error, "the event stream did not take an event; retrying");
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
}

/// What a listener knows between reads.
struct Reader {
    client: Client,
    key: String,
    connection: Option<MultiplexedConnection>,
    /// The id after which to read; `None` until "now" has been read from the stream.
    last: Option<String>,
    /// The id a resuming listener asked for, checked against what was trimmed once.
    resume_check: Option<EventId>,
    /// Read but not yet handed out.
    ready: std::collections::VecDeque<Result<Event, MissedEvents>>,
}

impl Reader {
    async fn connection(&mut self) -> RedisResult<&mut MultiplexedConnection> {
        if self.connection.is_none() {
            self.connection = Some(blocking_connection(&self.client, BLOCK).await?);
        }
        self.connection
            .as_mut()
            .ok_or_else(|| redis::RedisError::from((redis::ErrorKind::Io, "not connected")))
    }

    /// Starts reading after the stream's newest entry (`0-0` when it has none).
    async fn start_now(&mut self) -> RedisResult<()> {
        let key = self.key.clone();
        let newest: Vec<(String, Vec<(String, String)>)> = redis::cmd("XREVRANGE")
            .arg(&key)
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(1)
            .query_async(self.connection().await?)
            .await?;
        self.last = Some(
            newest
                .first()
                .map_or_else(|| "0-0".to_owned(), |(id, _)| id.clone()),
        );
        Ok(())
    }

    /// Reads the next batch into `ready`; on a Redis error, drops the connection.
    async fn fill(&mut self) -> RedisResult<()> {
        let key = self.key.clone();
        if self.last.is_none() {
            self.start_now().await?;
        }
        if let Some(after) = self.resume_check.take() {
            let info: redis::Value = redis::cmd("XINFO")
                .arg("STREAM")
                .arg(&key)
                .query_async(self.connection().await?)
                .await
                .unwrap_or(redis::Value::Nil);
            // Entries were trimmed (more were ever added than are kept), and the oldest kept
            // one is newer than `after`: some of what followed `after` may be gone. (When
            // exactly `after` was the last one trimmed, nothing is, but that cannot be told.)
            let trimmed = info_int(&info, "entries-added") > info_int(&info, "length");
            if let Some(oldest) = info_first_entry(&info)
                && trimmed
                && oldest > after
            {
                self.ready
                    .push_back(Err(MissedEvents::TooOld { after, oldest }));
            }
        }
        let last = self.last.clone().unwrap_or_else(|| "0-0".to_owned());
        let options = StreamReadOptions::default()
            .block(usize::try_from(BLOCK.as_millis()).unwrap_or(1000))
            .count(BATCH);
        let reply: Option<StreamReadReply> = self
            .connection()
            .await?
            .xread_options(&[&key], &[&last], &options)
            .await?;
        for entry in reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|stream| stream.ids)
        {
            self.last = Some(entry.id.clone());
            let Ok(id) = entry.id.parse::<EventId>() else {
                continue;
            };
            let Some(json) = entry.get::<String>(FIELD) else {
                continue;
            };
            let parsed = serde_json::from_str::<Stored>(&json)
                .map_err(|error| error.to_string())
                .and_then(|stored| {
                    let at = DateTime::parse_from_rfc3339(&stored.at)
                        .map_err(|error| error.to_string())?;
                    Ok((at.with_timezone(&Utc), stored.kind))
                });
            match parsed {
                Ok((at, kind)) => self.ready.push_back(Ok(Event { id, at, kind })),
                Err(error) => {
                    tracing::warn!(%error, %id, "skipped an event this version cannot read")
                }
            }
        }
        Ok(())
    }
}

/// A number of an `XINFO STREAM` reply (a flat map of fields and values); 0 when absent.
fn info_int(info: &redis::Value, name: &str) -> i64 {
    let redis::Value::Array(items) = info else {
        return 0;
    };
    items
        .chunks(2)
        .find_map(|pair| match pair {
            [redis::Value::BulkString(field), redis::Value::Int(value)]
                if field == name.as_bytes() =>
            {
                Some(*value)
            }
            _ => None,
        })
        .unwrap_or(0)
}

/// The id of the `first-entry` of an `XINFO STREAM` reply.
fn info_first_entry(info: &redis::Value) -> Option<EventId> {
    let redis::Value::Array(items) = info else {
        return None;
    };
    items.chunks(2).find_map(|pair| match pair {
        [redis::Value::BulkString(field), redis::Value::Array(entry)]
            if field == b"first-entry" =>
        {
            entry
                .first()
                .and_then(|id| redis::from_redis_value::<String>(id.clone()).ok())
                .and_then(|id| id.parse().ok())
        }
        _ => None,
    })
}

impl EventBus for RedisBus {
    fn publish(&self, kind: EventKind) {
        if self.unsent.try_send(kind).is_err() {
            tracing::error!(
                "the event stream is unreachable and {MAX_UNSENT} events wait; dropped one"
            );
        }
    }

    fn subscribe(&self, after: Option<EventId>) -> BoxFuture<'static, Listener> {
        let mut reader = Reader {
            client: self.client.clone(),
            key: self.key.clone(),
            connection: None,
            last: after.map(|after| after.to_string()),
            resume_check: after,
            ready: std::collections::VecDeque::new(),
        };
        async move {
            // "Now" is read before the listener is handed out; when Redis does not answer, the
            // first read does it.
            if reader.last.is_none()
                && let Err(error) = reader.start_now().await
            {
                tracing::warn!(%error, "could not read the event stream's newest entry");
                reader.connection = None;
            }
            futures::stream::unfold(reader, |mut reader| async move {
                loop {
                    if let Some(next) = reader.ready.pop_front() {
                        return Some((next, reader));
                    }
                    if let Err(error) = reader.fill().await {
                        tracing::warn!(%error, "reading the event stream failed; reconnecting");
                        reader.connection = None;
                        tokio::time::sleep(RETRY).await;
                    }
                }
            })
            .boxed()
        }
        .boxed()
    }
}
