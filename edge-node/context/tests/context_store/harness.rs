//! Opens each backend fresh for one test and cleans up after it, even when the test fails.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nexus_context::{
    ContextStore, MemoryStore, PostgresStore, RedisStore, SqliteStore, TieredStore,
};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection as _, PgConnection};
use tempfile::TempDir;

/// How long a test waits for something it polls (a TTL to run out) before failing.
pub const POLL_DEADLINE: Duration = Duration::from_secs(5);
const POLL_INTERVAL: Duration = Duration::from_millis(5);

const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6379";
const START_REDIS: &str =
    r#"redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no"#;

/// A store under test and what must be released after it.
pub enum Backend {
    Memory(Arc<MemoryStore>),
    /// The directory holds the database file and is removed on drop.
    Sqlite(Arc<SqliteStore>, TempDir),
    SqliteInMemory(Arc<SqliteStore>),
    /// Every key this test wrote starts with the prefix.
    Redis(Arc<RedisStore>, String),
    /// The table lives in the schema, dropped afterwards.
    Postgres(Arc<PostgresStore>, String),
    /// Cache entries under the prefix, the record in the schema.
    Tiered(Arc<TieredStore>, String, String),
}

impl Backend {
    pub fn store(&self) -> Arc<dyn ContextStore> {
        match self {
            Self::Memory(store) => store.clone(),
            Self::Sqlite(store, _) | Self::SqliteInMemory(store) => store.clone(),
            Self::Redis(store, _) => store.clone(),
            Self::Postgres(store, _) => store.clone(),
            Self::Tiered(store, _, _) => store.clone(),
        }
    }

    async fn clean_up(self) {
        match self {
            Self::Memory(_) | Self::SqliteInMemory(_) => {}
            Self::Sqlite(store, directory) => {
                store.close().await;
                drop(directory);
            }
            Self::Redis(_, prefix) => delete_redis_prefix(&prefix).await,
            Self::Postgres(_, schema) => drop_schema(&schema).await,
            Self::Tiered(_, prefix, schema) => {
                delete_redis_prefix(&prefix).await;
                drop_schema(&schema).await;
            }
        }
    }
}

pub async fn memory() -> Backend {
    Backend::Memory(Arc::new(MemoryStore::new()))
}

/// A store in a fresh file, in a directory that does not exist yet (`open` must create it).
pub async fn sqlite() -> Backend {
    let directory = tempfile::tempdir().expect("failed to create a temporary directory");
    let path = directory.path().join("nested").join("context.db");
    let store = SqliteStore::open(&path)
        .await
        .unwrap_or_else(|error| panic!("failed to open {}: {error}", path.display()));
    Backend::Sqlite(Arc::new(store), directory)
}

pub async fn sqlite_in_memory() -> Backend {
    let store = SqliteStore::in_memory()
        .await
        .expect("failed to open an in-memory sqlite store");
    Backend::SqliteInMemory(Arc::new(store))
}

pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| DEFAULT_REDIS_URL.to_owned())
}

/// A key prefix no other test (or run) uses.
pub fn fresh_redis_prefix() -> String {
    format!("nexus-context-test:{}:", uuid::Uuid::new_v4())
}

/// Connects or fails the test with instructions: these tests never skip.
pub async fn connect_redis(prefix: &str) -> RedisStore {
    let url = redis_url();
    RedisStore::connect(&url, prefix)
        .await
        .unwrap_or_else(|error| {
            panic!(
                "Redis is required by these tests and is unreachable at REDIS_URL \
             (default {DEFAULT_REDIS_URL}): {error}\nStart it with: {START_REDIS}"
            )
        })
}

pub async fn redis() -> Backend {
    let prefix = fresh_redis_prefix();
    let store = connect_redis(&prefix).await;
    Backend::Redis(Arc::new(store), prefix)
}

/// The server's admin database unless `NEXUS_TEST_DATABASE_URL` names another.
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const START_POSTGRES: &str =
    "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";

fn admin_url() -> String {
    std::env::var("NEXUS_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

async fn admin_connection() -> PgConnection {
    PgConnection::connect(&admin_url())
        .await
        .unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is required by these tests and is unreachable at \
                 NEXUS_TEST_DATABASE_URL (default {DEFAULT_ADMIN_URL}): {error}\n\
                 Start it with: {START_POSTGRES}"
            )
        })
}

/// A store whose table lives in a new schema of the admin database; the schema's name.
pub async fn connect_postgres() -> (PostgresStore, String) {
    let schema = format!("nexus_context_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = admin_connection().await;
    sqlx::query(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|error| panic!("failed to create schema {schema}: {error}"));
    admin.close().await.ok();
    let options: PgConnectOptions = admin_url()
        .parse()
        .expect("invalid NEXUS_TEST_DATABASE_URL");
    let store = PostgresStore::connect_with(options.options([("search_path", schema.as_str())]))
        .await
        .unwrap_or_else(|error| panic!("failed to open the postgres store: {error}"));
    (store, schema)
}

pub async fn drop_schema(schema: &str) {
    let mut admin = admin_connection().await;
    sqlx::query(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
        .execute(&mut admin)
        .await
        .unwrap_or_else(|error| panic!("failed to drop schema {schema}: {error}"));
}

pub async fn postgres() -> Backend {
    let (store, schema) = connect_postgres().await;
    Backend::Postgres(Arc::new(store), schema)
}

pub async fn tiered() -> Backend {
    let prefix = fresh_redis_prefix();
    let cache = connect_redis(&prefix).await;
    let (record, schema) = connect_postgres().await;
    Backend::Tiered(Arc::new(TieredStore::new(cache, record)), prefix, schema)
}

/// Deletes every key under `prefix` (which must not contain glob metacharacters).
pub async fn delete_redis_prefix(prefix: &str) {
    let client = redis::Client::open(redis_url()).expect("invalid REDIS_URL");
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .expect("failed to connect to redis for cleanup");
    let mut cursor: u64 = 0;
    loop {
        let (next_cursor, keys): (u64, Vec<Vec<u8>>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut connection)
            .await
            .expect("failed to scan redis for cleanup");
        if !keys.is_empty() {
            redis::cmd("DEL")
                .arg(keys)
                .query_async::<()>(&mut connection)
                .await
                .expect("failed to delete redis test keys");
        }
        if next_cursor == 0 {
            break;
        }
        cursor = next_cursor;
    }
}

/// Runs `check` against the backend's store, then cleans up, then reports the check's panic.
pub async fn run<Check, Fut>(backend: Backend, check: Check)
where
    Check: FnOnce(Arc<dyn ContextStore>) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(check(backend.store())).await;
    backend.clean_up().await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}

/// Polls `condition` until it holds, failing the test after [`POLL_DEADLINE`].
pub async fn wait_until<Condition, Fut>(what: &str, mut condition: Condition)
where
    Condition: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + POLL_DEADLINE;
    while !condition().await {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {POLL_DEADLINE:?}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}
