//! The cluster's invocation queue: one Redis Stream, read by one consumer group that every
//! coordinator replica joins, so each announcement goes to one replica. Entries a replica
//! took and never acknowledged (it died) are claimed by another after [`CLAIM_IDLE`]; the
//! sweep announces again whatever the stream lost.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use nexus_store::InvocationId;
use redis::aio::{ConnectionManager, MultiplexedConnection};
use redis::streams::{
    StreamAutoClaimOptions, StreamAutoClaimReply, StreamId, StreamMaxlen, StreamReadOptions,
    StreamReadReply,
};
use redis::{AsyncCommands as _, Client, RedisResult};
use tokio::sync::Mutex;

use super::queue::{Delivery, InvocationQueue, PULL_WAIT, QueueError};
use crate::events::blocking_connection;

/// The consumer group of every coordinator.
pub const GROUP: &str = "nexus-workers";
/// The stream entry's field holding the invocation id.
const FIELD: &str = "id";
/// Entries kept at most (about): announcements, so a trim loses nothing the sweep cannot redo.
const MAX_ENTRIES: usize = 1_000_000;
/// How long an entry a consumer took may stay unacknowledged before another claims it.
pub const CLAIM_IDLE: Duration = Duration::from_secs(30);
/// How often a consumer looks for such entries.
const CLAIM_EVERY: Duration = Duration::from_secs(5);

/// An invocation queue on a Redis Stream.
pub struct RedisQueue {
    key: String,
    consumer: String,
    client: Client,
    commands: ConnectionManager,
    /// Blocking reads get a connection of their own, so that they do not hold up pushes.
    reader: Mutex<Reader>,
}

struct Reader {
    connection: Option<MultiplexedConnection>,
    last_claim: Instant,
}

impl RedisQueue {
    /// The queue on stream `key` of the Redis at `url`, read as `consumer` (unique per
    /// process). Creates the stream and the group when missing; fails when Redis cannot be
    /// reached now.
    pub async fn connect(url: &str, key: &str, consumer: &str) -> RedisResult<Self> {
        let client = Client::open(url)?;
        let mut commands = ConnectionManager::new(client.clone()).await?;
        // From the start of the stream: announcements made before the group existed count.
        let created: RedisResult<()> = commands.xgroup_create_mkstream(key, GROUP, "0").await;
        if let Err(error) = created
            && error.code() != Some("BUSYGROUP")
        {
            return Err(error);
        }
        Ok(Self {
            key: key.to_owned(),
            consumer: consumer.to_owned(),
            client,
            commands,
            reader: Mutex::new(Reader {
                connection: None,
                last_claim: Instant::now(),
            }),
        })
    }

    async fn read(&self, max: usize) -> RedisResult<Vec<Delivery>> {
        let mut reader = self.reader.lock().await;
        let connection = match &mut reader.connection {
            Some(connection) => connection.clone(),
            None => {
                let connection = blocking_connection(&self.client, PULL_WAIT).await?;
                reader.connection = Some(connection.clone());
                connection
            }
        };
        let mut connection = connection;
        if reader.last_claim.elapsed() >= CLAIM_EVERY {
            reader.last_claim = Instant::now();
            let claimed: StreamAutoClaimReply = connection
                .xautoclaim_options(
                    &self.key,
                    GROUP,
                    &self.consumer,
                    u64::try_from(CLAIM_IDLE.as_millis()).unwrap_or(u64::MAX),
                    "0-0",
                    StreamAutoClaimOptions::default().count(max),
                )
                .await?;
            if !claimed.claimed.is_empty() {
                return Ok(self.deliveries(claimed.claimed).await);
            }
        }
        let options = StreamReadOptions::default()
            .group(GROUP, &self.consumer)
            .block(usize::try_from(PULL_WAIT.as_millis()).unwrap_or(1000))
            .count(max);
        let reply: RedisResult<Option<StreamReadReply>> = connection
            .xread_options(&[&self.key], &[">"], &options)
            .await;
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => {
                reader.connection = None;
                return Err(error);
            }
        };
        let entries = reply
            .into_iter()
            .flat_map(|reply| reply.keys)
            .flat_map(|stream| stream.ids)
            .collect();
        Ok(self.deliveries(entries).await)
    }

    /// The deliveries among `entries`; entries that name no invocation are acknowledged and
    /// dropped.
    async fn deliveries(&self, entries: Vec<StreamId>) -> Vec<Delivery> {
        let mut deliveries = Vec::with_capacity(entries.len());
        let mut unreadable = Vec::new();
        for entry in entries {
            let id = entry
                .get::<String>(FIELD)
                .and_then(|text| text.parse().ok())
                .map(InvocationId);
            match id {
                Some(id) => deliveries.push(Delivery {
                    id,
                    tag: Some(entry.id),
                }),
                None => unreadable.push(Delivery {
                    id: InvocationId(uuid::Uuid::nil()),
                    tag: Some(entry.id),
                }),
            }
        }
        if !unreadable.is_empty() {
            tracing::warn!(count = unreadable.len(), "dropped unreadable queue entries");
            if let Err(error) = self.acknowledge(unreadable).await {
                tracing::warn!(%error, "could not drop unreadable queue entries");
            }
        }
        deliveries
    }

    async fn acknowledge(&self, deliveries: Vec<Delivery>) -> RedisResult<()> {
        let tags: Vec<String> = deliveries.into_iter().filter_map(|d| d.tag).collect();
        if tags.is_empty() {
            return Ok(());
        }
        let mut commands = self.commands.clone();
        redis::pipe()
            .xack(&self.key, GROUP, &tags)
            .ignore()
            .xdel(&self.key, &tags)
            .ignore()
            .query_async::<()>(&mut commands)
            .await
    }
}

fn queue_error(error: &redis::RedisError) -> QueueError {
    QueueError(error.to_string())
}

impl InvocationQueue for RedisQueue {
    fn push(&self, ids: Vec<InvocationId>) -> BoxFuture<'_, Result<(), QueueError>> {
        Box::pin(async move {
            if ids.is_empty() {
                return Ok(());
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.xadd_maxlen(
                    &self.key,
                    StreamMaxlen::Approx(MAX_ENTRIES),
                    "*",
                    &[(FIELD, id.to_string())],
                )
                .ignore();
            }
            let mut commands = self.commands.clone();
            pipe.query_async::<()>(&mut commands)
                .await
                .map_err(|error| queue_error(&error))
        })
    }

    fn pull(&self, max: usize) -> BoxFuture<'_, Result<Vec<Delivery>, QueueError>> {
        Box::pin(async move { self.read(max).await.map_err(|error| queue_error(&error)) })
    }

    fn ack(&self, deliveries: Vec<Delivery>) -> BoxFuture<'_, Result<(), QueueError>> {
        Box::pin(async move {
            self.acknowledge(deliveries)
                .await
                .map_err(|error| queue_error(&error))
        })
    }
}
