//! The node's outbox: what its ingress accepted while serving on its own (asynchronous
//! invocations) and what it did (finished calls), in SQLite on the node's disk until the
//! [forwarder](super::forward) has handed it to the coordinator.
//!
//! One writer task owns the only connection and takes whatever commands wait into one
//! transaction (group commit), so a burst of accepts costs one fsync, not one each. WAL with
//! `synchronous = FULL`: an answered accept survives power loss. `AUTOINCREMENT` never reuses a
//! seq after deletes; the outbox id, made with the file, tells the coordinator when a wiped disk
//! started the numbers over. The bound is on queued payload bytes, not on the file's size.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nexus_proto::node::v1::{FinishedInvocation, OutboxEntry, QueuedInvocation, outbox_entry};
use prost::Message as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions as _, Connection as _, Sqlite, Transaction};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::Instrument as _;
use uuid::Uuid;

/// How long an idempotency key replays the invocation first accepted with it, whether or not
/// that one has been forwarded since.
pub const IDEMPOTENCY_WINDOW: Duration = Duration::from_secs(24 * 60 * 60);
/// The largest entry the outbox takes: any one must fit in a `Forward` call under the
/// coordinator's 4 MiB message limit.
pub const MAX_ENTRY_BYTES: usize = 3 * 1024 * 1024;
/// Most commands one transaction takes.
const GROUP_MAX: usize = 256;
/// Commands waiting for the writer: accepts wait for room, events find none and are dropped.
const QUEUE_CAPACITY: usize = 4096;
/// How often keys past the window are deleted (lookups ignore them before).
const PRUNE_EVERY: Duration = Duration::from_secs(10 * 60);
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS meta (singleton INTEGER PRIMARY KEY CHECK (singleton = 1),
        id TEXT NOT NULL);
    CREATE TABLE IF NOT EXISTS entries (seq INTEGER PRIMARY KEY AUTOINCREMENT,
        payload BLOB NOT NULL, bytes INTEGER NOT NULL);
    CREATE TABLE IF NOT EXISTS idempotency_keys (project_id TEXT NOT NULL, key TEXT NOT NULL,
        invocation_id TEXT NOT NULL, accepted_at_ms INTEGER NOT NULL,
        PRIMARY KEY (project_id, key)) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS idempotency_keys_by_age ON idempotency_keys (accepted_at_ms);
";

/// The oldest entries, at most `?1`, stopping before their bytes pass `?2` but at least one.
/// The running sum reads only `seq` and `bytes`, of the first `?1` rows.
const BATCH: &str = "
    SELECT seq, payload FROM entries WHERE seq <= (
        SELECT MAX(seq) FROM (
            SELECT seq, SUM(bytes) OVER (ORDER BY seq) AS running,
                ROW_NUMBER() OVER (ORDER BY seq) AS position
            FROM (SELECT seq, bytes FROM entries ORDER BY seq LIMIT ?1)
        ) WHERE position = 1 OR running <= ?2
    ) ORDER BY seq
";

/// Why the outbox did not do what was asked.
#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    /// Queuing the entry would pass the byte bound: retry once the coordinator is back.
    #[error("the outbox is full")]
    Full,
    /// The entry's encoded size (carried) is over [`MAX_ENTRY_BYTES`]: retrying never helps.
    #[error("an entry of {0} bytes is larger than the outbox takes")]
    TooLarge(usize),
    /// [`Outbox::close`] was called.
    #[error("the outbox is closed")]
    Closed,
    /// The file holds an id that is not a UUID.
    #[error("the outbox id {0:?} is not a UUID")]
    InvalidId(String),
    /// Creating the file's directory failed.
    #[error("creating the outbox directory: {0}")]
    Directory(#[from] std::io::Error),
    /// SQLite failed; a failed transaction fails every command it held.
    #[error("outbox storage failed: {0}")]
    Storage(Arc<sqlx::Error>),
}

impl From<sqlx::Error> for OutboxError {
    fn from(error: sqlx::Error) -> Self {
        Self::Storage(Arc::new(error))
    }
}

/// An accepted invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// Its id, or on a replay the id first accepted with the same idempotency key.
    pub id: String,
    /// Whether the key had been seen, so that nothing new was queued.
    pub replay: bool,
}

/// What the outbox holds (as on disk), and what this process saw it do.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Entries waiting to be forwarded.
    pub entries: u64,
    /// Their payload bytes, which `max_bytes` bounds.
    pub bytes: u64,
    /// Events dropped because the outbox was full or its writer far behind.
    pub dropped: u64,
    /// Entries the coordinator acknowledged.
    pub forwarded: u64,
}

/// A bounded queue on disk of what waits for the coordinator; see the module documentation.
pub struct Outbox {
    id: Uuid,
    commands: mpsc::Sender<Command>,
    shared: Arc<Shared>,
}

/// What the writer and the handle share.
struct Shared {
    /// Entries and bytes as committed, published after each commit.
    queued: watch::Sender<Queued>,
    dropped: AtomicU64,
    forwarded: AtomicU64,
    /// Transactions committed, so that tests see accepts share them.
    commits: AtomicU64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Queued {
    entries: u64,
    bytes: u64,
}

type Answer<T> = oneshot::Sender<Result<T, OutboxError>>;

enum Command {
    Write(Write),
    Batch(usize, usize, Answer<Vec<OutboxEntry>>),
    Close(oneshot::Sender<()>),
}

enum Write {
    /// The invocation id, `(project_id, idempotency_key)` when there is a key, the payload.
    Accept(String, Option<(String, String)>, Vec<u8>, Answer<Accepted>),
    Record(Vec<u8>),
    Acknowledge(u64, Answer<()>),
}

impl Outbox {
    /// Opens the outbox in the SQLite file at `path`, creating it (with a new id) when missing,
    /// and starts its writer task. Accepts are refused once queued payloads would pass
    /// `max_bytes`.
    pub async fn open(path: &Path, max_bytes: u64) -> Result<Arc<Self>, OutboxError> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            tokio::fs::create_dir_all(parent).await?;
        }
        let mut connection = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT)
            .connect()
            .await?;
        let mut transaction = connection.begin().await?;
        sqlx::raw_sql(SCHEMA).execute(&mut *transaction).await?;
        sqlx::query("INSERT OR IGNORE INTO meta VALUES (1, ?1)")
            .bind(Uuid::new_v4().to_string())
            .execute(&mut *transaction)
            .await?;
        let id: String = sqlx::query_scalar("SELECT id FROM meta")
            .fetch_one(&mut *transaction)
            .await?;
        let (entries, bytes): (i64, i64) =
            sqlx::query_as("SELECT COUNT(*), COALESCE(SUM(bytes), 0) FROM entries")
                .fetch_one(&mut *transaction)
                .await?;
        transaction.commit().await?;
        let id = Uuid::parse_str(&id).map_err(|_| OutboxError::InvalidId(id))?;
        let queued = Queued {
            entries: to_u64(entries),
            bytes: to_u64(bytes),
        };
        let shared = Arc::new(Shared {
            queued: watch::Sender::new(queued),
            dropped: AtomicU64::new(0),
            forwarded: AtomicU64::new(0),
            commits: AtomicU64::new(0),
        });
        let shared_with_writer = Arc::clone(&shared);
        let mut writer = Writer {
            connection,
            shared: shared_with_writer,
            max_bytes,
            queued,
            pruned_at: Instant::now(),
        };
        writer.prune().await?;
        let (commands, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(writer.run(receiver).in_current_span());
        let path = path.display();
        tracing::debug!(%path, outbox = %id, queued.entries, queued.bytes, "opened the outbox");
        Ok(Arc::new(Self {
            id,
            commands,
            shared,
        }))
    }

    /// The outbox's id, made with its file.
    pub fn id(&self) -> Uuid {
        self.id
    }

    /// Queues `invocation`, returning once it is committed to disk. When its idempotency key
    /// was accepted for the same project within [`IDEMPOTENCY_WINDOW`], queues nothing and
    /// returns the first invocation's id.
    pub async fn accept(&self, invocation: QueuedInvocation) -> Result<Accepted, OutboxError> {
        let id = invocation.id.clone();
        let key = Some((
            invocation.project_id.clone(),
            invocation.idempotency_key.clone(),
        ))
        .filter(|(_, key)| !key.is_empty());
        let payload = encode(outbox_entry::Entry::Invocation(invocation))?;
        self.ask(|answer| Command::Write(Write::Accept(id, key, payload, answer)))
            .await
    }

    /// Queues `finished` for the next commit without waiting for it; when the outbox is full
    /// (or its writer far behind) the event is dropped and counted.
    pub fn record(&self, finished: FinishedInvocation) {
        let payload = encode(outbox_entry::Entry::Finished(finished));
        let queued = payload.map(|payload| {
            let command = Command::Write(Write::Record(payload));
            self.commands.try_send(command)
        });
        if !matches!(queued, Ok(Ok(()))) {
            self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The oldest committed entries, in `seq` order, at most `max_entries` and stopping before
    /// their payloads pass `max_bytes`, but at least one when there is any.
    pub async fn batch(
        &self,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<OutboxEntry>, OutboxError> {
        self.ask(|answer| Command::Batch(max_entries, max_bytes, answer))
            .await
    }

    /// Forgets the entries up to `seq` `through`, which the coordinator has recorded.
    pub async fn acknowledge(&self, through: u64) -> Result<(), OutboxError> {
        self.ask(|answer| Command::Write(Write::Acknowledge(through, answer)))
            .await
    }

    async fn ask<T>(&self, command: impl FnOnce(Answer<T>) -> Command) -> Result<T, OutboxError> {
        let (answer, answered) = oneshot::channel();
        let sent = self.commands.send(command(answer)).await;
        sent.map_err(|_| OutboxError::Closed)?;
        answered.await.map_err(|_| OutboxError::Closed)?
    }

    /// Returns once there is at least one entry to forward.
    pub async fn wait_for_entries(&self) {
        self.wait_for(|queued| queued.entries > 0).await;
    }

    /// Returns once every entry has been acknowledged, for instance to drain before exiting.
    pub async fn wait_until_empty(&self) {
        self.wait_for(|queued| queued.entries == 0).await;
    }

    async fn wait_for(&self, condition: impl FnMut(&Queued) -> bool) {
        // A watch checks the current value before it sleeps, so no commit is missed; it never
        // fails, as `self.shared` holds the sender.
        let _ = self.shared.queued.subscribe().wait_for(condition).await;
    }

    /// Entries and bytes waiting; events dropped and entries forwarded since the outbox opened.
    pub fn stats(&self) -> OutboxStats {
        let queued = *self.shared.queued.borrow();
        OutboxStats {
            entries: queued.entries,
            bytes: queued.bytes,
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            forwarded: self.shared.forwarded.load(Ordering::Relaxed),
        }
    }

    /// Commits what was asked before, then closes the file; later calls fail with
    /// [`OutboxError::Closed`]. Dropping the outbox closes the file too, without waiting.
    pub async fn close(&self) {
        let (answer, closed) = oneshot::channel();
        if self.commands.send(Command::Close(answer)).await.is_ok() {
            let _ = closed.await;
        }
    }
}

fn encode(entry: outbox_entry::Entry) -> Result<Vec<u8>, OutboxError> {
    // The seq is the row's, set when the entry is read back.
    let entry = OutboxEntry {
        seq: 0,
        entry: Some(entry),
    };
    let payload = entry.encode_to_vec();
    match payload.len() {
        bytes if bytes > MAX_ENTRY_BYTES => Err(OutboxError::TooLarge(bytes)),
        _ => Ok(payload),
    }
}

/// The task that owns the connection.
struct Writer {
    connection: SqliteConnection,
    shared: Arc<Shared>,
    max_bytes: u64,
    /// As committed.
    queued: Queued,
    pruned_at: Instant,
}

/// A group's effect, until it commits.
#[derive(Default)]
struct Tally {
    queued: Queued,
    forwarded: u64,
    records: u64,
}

/// Answers a command once its transaction has committed (`Ok`) or failed.
type Reply = Box<dyn FnOnce(Result<(), OutboxError>) + Send>;

impl Writer {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        let mut group = Vec::with_capacity(GROUP_MAX);
        let mut closing = Vec::new();
        while closing.is_empty() && commands.recv_many(&mut group, GROUP_MAX).await > 0 {
            let mut writes = Vec::new();
            let mut reads = Vec::new();
            for command in group.drain(..) {
                match command {
                    Command::Write(write) => writes.push(write),
                    Command::Batch(entries, bytes, answer) => reads.push((entries, bytes, answer)),
                    Command::Close(answer) => closing.push(answer),
                }
            }
            if !writes.is_empty() {
                self.commit(writes).await;
            }
            // After the commit: only what is on disk may be forwarded.
            for (max_entries, max_bytes, answer) in reads {
                let _ = answer.send(self.batch(max_entries, max_bytes).await);
            }
            if self.pruned_at.elapsed() >= PRUNE_EVERY
                && let Err(error) = self.prune().await
            {
                tracing::warn!(%error, "pruning the outbox's idempotency keys failed");
            }
        }
        commands.close();
        while let Ok(command) = commands.try_recv() {
            if let Command::Write(Write::Record(_)) = command {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        if let Err(error) = self.connection.close().await {
            tracing::warn!(%error, "closing the outbox failed");
        }
        for answer in closing {
            let _ = answer.send(());
        }
    }

    /// Applies `writes` in one transaction, then answers each.
    async fn commit(&mut self, writes: Vec<Write>) {
        let mut tally = Tally {
            queued: self.queued,
            ..Tally::default()
        };
        let mut replies = Vec::with_capacity(writes.len());
        let shared = Arc::clone(&self.shared);
        let failed = match self.apply(writes, &mut tally, &mut replies).await {
            Ok(()) => {
                self.queued = tally.queued;
                shared
                    .forwarded
                    .fetch_add(tally.forwarded, Ordering::Relaxed);
                shared.commits.fetch_add(1, Ordering::Relaxed);
                shared.queued.send_replace(tally.queued);
                None
            }
            Err(error) => {
                tracing::warn!(%error, "an outbox transaction failed");
                shared.dropped.fetch_add(tally.records, Ordering::Relaxed);
                Some(Arc::new(error))
            }
        };
        for reply in replies {
            reply(match &failed {
                None => Ok(()),
                Some(error) => Err(OutboxError::Storage(Arc::clone(error))),
            });
        }
    }

    async fn apply(
        &mut self,
        writes: Vec<Write>,
        tally: &mut Tally,
        replies: &mut Vec<Reply>,
    ) -> Result<(), sqlx::Error> {
        let max_bytes = self.max_bytes;
        let now = now_ms();
        let mut transaction = self.connection.begin().await?;
        for write in writes {
            match write {
                Write::Accept(id, key, payload, answer) => {
                    let outcome = match replayed(&mut transaction, key.as_ref(), now).await? {
                        Some(first) => Ok(Accepted {
                            id: first,
                            replay: true,
                        }),
                        None if !fits(tally, &payload, max_bytes) => Err(OutboxError::Full),
                        None => {
                            insert(&mut transaction, &payload, tally).await?;
                            remember(&mut transaction, key.as_ref(), &id, now).await?;
                            Ok(Accepted { id, replay: false })
                        }
                    };
                    replies.push(Box::new(move |committed| {
                        let _ = answer.send(committed.and(outcome));
                    }));
                }
                Write::Record(payload) if fits(tally, &payload, max_bytes) => {
                    insert(&mut transaction, &payload, tally).await?;
                    tally.records += 1;
                }
                Write::Record(_) => {
                    self.shared.dropped.fetch_add(1, Ordering::Relaxed);
                }
                Write::Acknowledge(through, answer) => {
                    let deleted: Vec<i64> =
                        sqlx::query_scalar("DELETE FROM entries WHERE seq <= ?1 RETURNING bytes")
                            .bind(to_i64(through))
                            .fetch_all(&mut *transaction)
                            .await?;
                    let bytes: i64 = deleted.iter().sum();
                    tally.queued.entries =
                        tally.queued.entries.saturating_sub(deleted.len() as u64);
                    tally.queued.bytes = tally.queued.bytes.saturating_sub(to_u64(bytes));
                    tally.forwarded += deleted.len() as u64;
                    replies.push(Box::new(move |committed| {
                        let _ = answer.send(committed);
                    }));
                }
            }
        }
        transaction.commit().await
    }

    async fn batch(
        &mut self,
        max_entries: usize,
        max_bytes: usize,
    ) -> Result<Vec<OutboxEntry>, OutboxError> {
        let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(BATCH)
            .bind(to_i64(max_entries as u64))
            .bind(to_i64(max_bytes as u64))
            .fetch_all(&mut self.connection)
            .await?;
        Ok(rows.into_iter().map(decode).collect())
    }

    async fn prune(&mut self) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM idempotency_keys WHERE accepted_at_ms <= ?1")
            .bind(now_ms() - window_ms())
            .execute(&mut self.connection)
            .await?;
        self.pruned_at = Instant::now();
        Ok(())
    }
}

/// The invocation first accepted with `key` within the window, if any.
async fn replayed(
    transaction: &mut Transaction<'_, Sqlite>,
    key: Option<&(String, String)>,
    now: i64,
) -> Result<Option<String>, sqlx::Error> {
    let Some((project_id, key)) = key else {
        return Ok(None);
    };
    sqlx::query_scalar(
        "SELECT invocation_id FROM idempotency_keys \
         WHERE project_id = ?1 AND key = ?2 AND accepted_at_ms > ?3",
    )
    .bind(project_id)
    .bind(key)
    .bind(now - window_ms())
    .fetch_optional(&mut **transaction)
    .await
}

async fn remember(
    transaction: &mut Transaction<'_, Sqlite>,
    key: Option<&(String, String)>,
    invocation_id: &str,
    now: i64,
) -> Result<(), sqlx::Error> {
    if let Some((project_id, key)) = key {
        // Replaces a key past the window, which `replayed` ignored.
        sqlx::query("INSERT OR REPLACE INTO idempotency_keys VALUES (?1, ?2, ?3, ?4)")
            .bind(project_id)
            .bind(key)
            .bind(invocation_id)
            .bind(now)
            .execute(&mut **transaction)
            .await?;
    }
    Ok(())
}

fn fits(tally: &Tally, payload: &[u8], max_bytes: u64) -> bool {
    tally.queued.bytes + payload.len() as u64 <= max_bytes
}

async fn insert(
    transaction: &mut Transaction<'_, Sqlite>,
    payload: &[u8],
    tally: &mut Tally,
) -> Result<(), sqlx::Error> {
    let bytes = payload.len() as u64;
    sqlx::query("INSERT INTO entries (payload, bytes) VALUES (?1, ?2)")
        .bind(payload)
        .bind(to_i64(bytes))
        .execute(&mut **transaction)
        .await?;
    tally.queued.entries += 1;
    tally.queued.bytes += bytes;
    Ok(())
}

/// An entry read back. One that no longer decodes goes out empty, as would an entry of a kind
/// the coordinator does not know, rather than holding up the rest for ever.
fn decode((seq, payload): (i64, Vec<u8>)) -> OutboxEntry {
    let seq = to_u64(seq);
    match OutboxEntry::decode(payload.as_slice()) {
        Ok(entry) => OutboxEntry { seq, ..entry },
        Err(error) => {
            tracing::error!(%error, seq, "an outbox entry does not decode; forwarding it empty");
            OutboxEntry { seq, entry: None }
        }
    }
}

fn to_u64(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn window_ms() -> i64 {
    to_i64(IDEMPOTENCY_WINDOW.as_secs() * 1000)
}

/// Wall-clock milliseconds, so that key ages survive a restart.
fn now_ms() -> i64 {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH);
    since_epoch.map_or(0, |since| to_i64(since.as_millis() as u64))
}

#[cfg(test)]
mod tests;
