//! Opens each backend fresh for one test (a SQLite file in a temporary directory, or a new
//! Postgres database) and removes it afterwards, even when the test fails.

use std::future::Future;

use nexus_store::{Backend, Store};
use nexus_tests::postgres::FreshDatabase;
use sqlx::AssertSqlSafe;
use sqlx::postgres::PgPool;
use sqlx::sqlite::SqlitePool;
use tempfile::TempDir;

/// A migrated store under test, and a second pool on the same database for what the store
/// deliberately cannot do (editing an audit row by hand).
#[derive(Clone)]
pub struct TestDb {
    pub store: Store,
    raw: Raw,
    url: String,
}

#[derive(Clone)]
enum Raw {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// What must be removed after the test.
pub enum Leftover {
    Directory(TempDir),
    Database(FreshDatabase),
}

impl TestDb {
    /// Runs one statement behind the store's back; returns the rows it changed.
    pub async fn execute(&self, sql: &str) -> u64 {
        let sql = AssertSqlSafe(sql.to_owned());
        match &self.raw {
            Raw::Sqlite(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
            Raw::Postgres(pool) => sqlx::query(sql)
                .execute(pool)
                .await
                .map(|r| r.rows_affected()),
        }
        .unwrap_or_else(|error| panic!("raw statement failed: {error}"))
    }

    /// A second store on the same database (another "process").
    pub async fn reconnect(&self) -> Store {
        Store::connect(&self.url)
            .await
            .expect("failed to reconnect")
    }
}

/// A store on a fresh file, in a directory that does not exist yet (`connect` creates it).
pub async fn sqlite() -> (TestDb, Leftover) {
    let directory = tempfile::tempdir().expect("failed to create a temporary directory");
    let path = directory
        .path()
        .join("nested")
        .join(".nexus")
        .join("nexus.db");
    let url = format!("sqlite://{}", path.display());
    let store = Store::connect(&url)
        .await
        .unwrap_or_else(|error| panic!("failed to open {url}: {error}"));
    assert_eq!(store.backend(), Backend::Sqlite);
    store.migrate().await.expect("sqlite migrations failed");
    let raw = SqlitePool::connect(&url)
        .await
        .expect("failed to open raw pool");
    (
        TestDb {
            store,
            raw: Raw::Sqlite(raw),
            url,
        },
        Leftover::Directory(directory),
    )
}

/// A store on a new database named `nexus_test_<uuid>`, migrated.
pub async fn postgres() -> (TestDb, Leftover) {
    let database = FreshDatabase::create().await;
    let url = database.url().to_owned();
    let store = Store::connect(&url)
        .await
        .unwrap_or_else(|error| panic!("failed to open {url}: {error}"));
    assert_eq!(store.backend(), Backend::Postgres);
    store.migrate().await.expect("postgres migrations failed");
    let raw = PgPool::connect(&url)
        .await
        .expect("failed to open raw pool");
    (
        TestDb {
            store,
            raw: Raw::Postgres(raw),
            url,
        },
        Leftover::Database(database),
    )
}

async fn clean_up(db: TestDb, leftover: Leftover) {
    db.store.close().await;
    match db.raw {
        Raw::Sqlite(pool) => pool.close().await,
        Raw::Postgres(pool) => pool.close().await,
    }
    match leftover {
        Leftover::Directory(directory) => drop(directory),
        Leftover::Database(database) => drop(database),
    }
}

/// Runs `check` against a fresh database, then removes it, then reports the check's panic.
pub async fn run<Check, Fut>((db, leftover): (TestDb, Leftover), check: Check)
where
    Check: FnOnce(TestDb) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let outcome = tokio::spawn(check(db.clone())).await;
    clean_up(db, leftover).await;
    if let Err(error) = outcome {
        std::panic::resume_unwind(error.into_panic());
    }
}
