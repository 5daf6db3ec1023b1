//! [`Store`]: a pool on SQLite or Postgres/CockroachDB, and [`Tx`], one transaction on it.

use std::marker::PhantomData;
use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Postgres, Sqlite, Transaction};

use crate::retry::RetryPolicy;
use crate::{Error, Result};

/// Where `nexus up` keeps its database: a file under `./.nexus/`.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://.nexus/nexus.db";

/// Connections in a SQLite pool. SQLite has one writer at a time; more connections only help
/// concurrent readers.
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// How long a SQLite statement waits for another connection's lock before `SQLITE_BUSY`.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections in a Postgres pool.
const POSTGRES_MAX_CONNECTIONS: u32 = 10;
/// How long an operation waits for a free connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

/// How a transaction is isolated from concurrent ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isolation {
    /// The default: serializable, as CockroachDB always is.
    Serializable,
    /// Read committed on Postgres, where each read of a row that is then written locks it
    /// (`FOR UPDATE`). See [`Store::with_retry_row_locking`].
    RowLocking,
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An embedded SQLite file.
    Sqlite,
    /// Postgres or CockroachDB.
    Postgres,
}

/// The coordinator's record. Cheap to clone (it is a pool).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) pool: Pool,
    pub(crate) retry: RetryPolicy,
}

#[derive(Debug, Clone)]
pub(crate) enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// One open transaction. Repository functions are its methods; [`Store::with_retry`] begins,
/// commits or rolls it back. `'env` is the lifetime of what the retried closure borrows.
#[derive(Debug)]
pub struct Tx<'env> {
    pub(crate) inner: TxInner,
    _env: PhantomData<&'env ()>,
}

#[derive(Debug)]
pub(crate) enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
}

/// Runs `$body` with `$conn` bound to the transaction's connection, whichever the backend.
///
/// `$body` is compiled once per backend, so each statement is written once and type-checked
/// against both drivers; it must evaluate to the same type in both arms.
macro_rules! on_tx {
    ($tx:expr, $conn:ident => $body:expr) => {
        match &mut $tx.inner {
            $crate::store::TxInner::Sqlite(transaction) => {
                let $conn = &mut **transaction;
                $body
            }
            $crate::store::TxInner::Postgres(transaction) => {
                let $conn = &mut **transaction;
                $body
            }
        }
    };
}
pub(crate) use on_tx;

impl Store {
    /// Opens the database at `url` and checks that it answers. Does not migrate: call
    /// [`Store::migrate`].
    ///
    /// - `postgres://…` or `postgresql://…`: Postgres or CockroachDB. Every connection runs
    ///   with `default_transaction_isolation = 'serializable'` (CockroachDB's only level), so
    ///   both behave alike and [`Store::with_retry`] sees the same conflicts.
    /// - `sqlite://PATH`, `sqlite:PATH` or a plain file path: SQLite, creating the file and its
    ///   parent directories. WAL journal, `synchronous = NORMAL`, foreign keys on.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Pool::Postgres(connect_postgres(url).await?)
        } else if url.starts_with("sqlite:") {
            let options =
                SqliteConnectOptions::from_str(url).map_err(|_| Error::UnsupportedUrl {
                    url: url.to_owned(),
                })?;
            Pool::Sqlite(connect_sqlite(options).await?)
        } else if !url.is_empty() && !url.contains("://") {
            Pool::Sqlite(connect_sqlite(SqliteConnectOptions::new().filename(url)).await?)
        } else {
            return Err(Error::UnsupportedUrl {
                url: url.to_owned(),
            });
        };
        Ok(Self {
            pool,
            retry: RetryPolicy::default(),
        })
    }

    /// The same store with another retry policy.
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The same database through a pool of its own of at most `connections`, opened as they
    /// are needed: for a writer whose commits must not queue behind everyone else's. On
    /// SQLite, which has one writer whatever the pool, this is the same pool.
    pub fn with_own_pool(&self, connections: u32) -> Self {
        let pool = match &self.pool {
            Pool::Sqlite(_) => self.pool.clone(),
            Pool::Postgres(pool) => Pool::Postgres(
                PgPoolOptions::new()
                    .max_connections(connections.max(1))
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_lazy_with(PgConnectOptions::clone(&pool.connect_options())),
            ),
        };
        Self {
            pool,
            retry: self.retry,
        }
    }

    /// Which database this store talks to.
    pub fn backend(&self) -> Backend {
        match &self.pool {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Closes every connection; waits for borrowed ones to come back.
    pub async fn close(&self) {
        match &self.pool {
            Pool::Sqlite(pool) => pool.close().await,
            Pool::Postgres(pool) => pool.close().await,
        }
    }

    /// Whether the database answers a trivial query (for `/readyz`).
    pub async fn ping(&self) -> Result<()> {
        match &self.pool {
            Pool::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
            Pool::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(drop)?,
        }
        Ok(())
    }

    /// Begins a transaction. Prefer [`Store::with_retry`], which also commits and retries.
    pub(crate) async fn begin<'env>(&self, isolation: Isolation) -> Result<Tx<'env>> {
        let inner = match (&self.pool, isolation) {
            (Pool::Sqlite(pool), _) => TxInner::Sqlite(pool.begin().await?),
            (Pool::Postgres(pool), Isolation::Serializable) => {
                TxInner::Postgres(pool.begin().await?)
            }
            (Pool::Postgres(pool), Isolation::RowLocking) => TxInner::Postgres(
                pool.begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
                    .await?,
            ),
        };
        Ok(Tx {
            inner,
            _env: PhantomData,
        })
    }
}

impl Tx<'_> {
    /// Which database this transaction runs on.
    pub fn backend(&self) -> Backend {
        match &self.inner {
            TxInner::Sqlite(_) => Backend::Sqlite,
            TxInner::Postgres(_) => Backend::Postgres,
        }
    }

    pub(crate) async fn commit(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(transaction) => transaction.commit().await?,
            TxInner::Postgres(transaction) => transaction.commit().await?,
        }
        Ok(())
    }

    pub(crate) async fn rollback(self) -> Result<()> {
        match self.inner {
            TxInner::Sqlite(transaction) => transaction.rollback().await?,
            TxInner::Postgres(transaction) => transaction.rollback().await?,
        }
        Ok(())
    }
}

async fn connect_postgres(url: &str) -> Result<PgPool> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|_| Error::UnsupportedUrl {
            url: url.to_owned(),
        })?
        .options([("default_transaction_isolation", "serializable")]);
    let pool = PgPoolOptions::new()
        .max_connections(POSTGRES_MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    Ok(pool)
}

async fn connect_sqlite(options: SqliteConnectOptions) -> Result<SqlitePool> {
    create_parent_directory(options.get_filename()).await?;
    let options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(SQLITE_BUSY_TIMEOUT);
    let pool = SqlitePoolOptions::new()
        .max_connections(SQLITE_MAX_CONNECTIONS)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .connect_with(options)
        .await?;
    Ok(pool)
}

async fn create_parent_directory(path: &Path) -> Result<()> {
    let Some(parent) = path
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
    else {
        return Ok(());
    };
    tokio::fs::create_dir_all(parent)
        .await
        .map_err(|source| Error::CreateDirectory {
            path: parent.to_owned(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_of_other_databases_are_refused_before_connecting() {
        for url in ["mysql://root@127.0.0.1/db", "redis://127.0.0.1", ""] {
            let result = Store::connect(url).await;
            assert!(
                matches!(&result, Err(Error::UnsupportedUrl { url: refused }) if refused == url),
                "{url}: {result:?}"
            );
        }
    }

    #[test]
    fn the_default_database_is_a_file_under_dot_nexus() {
        let options = SqliteConnectOptions::from_str(DEFAULT_DATABASE_URL).unwrap();
        assert_eq!(options.get_filename(), Path::new(".nexus/nexus.db"));
    }
}
