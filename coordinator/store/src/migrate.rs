//! Migrations, serialised by a lock row instead of sqlx's advisory lock.
//!
//! sqlx's migrator takes `pg_advisory_lock`, which CockroachDB rejects, so it runs with
//! `set_locking(false)` and the store takes its own lock first: a row in
//! `nexus_migration_lock`, inserted with `ON CONFLICT DO NOTHING` and deleted afterwards. The
//! row carries a lease, so a process that died while migrating blocks the others only until
//! the lease runs out. The same lock guards SQLite, where two processes could otherwise both
//! try to apply a migration.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::migrate::Migrator;
use uuid::Uuid;

use crate::store::Pool;
use crate::time::now;
use crate::{Error, Result, Store};

/// How long a migration lock is honoured without being released.
const LOCK_LEASE: Duration = Duration::from_secs(600);
/// How long `migrate` waits for another process's migration before failing.
const LOCK_WAIT: Duration = Duration::from_secs(120);
const LOCK_POLL: Duration = Duration::from_millis(100);

const CREATE_LOCK_TABLE_POSTGRES: &str = "CREATE TABLE IF NOT EXISTS nexus_migration_lock (
    id INTEGER PRIMARY KEY, holder UUID NOT NULL, expires_at TIMESTAMPTZ NOT NULL)";
const CREATE_LOCK_TABLE_SQLITE: &str = "CREATE TABLE IF NOT EXISTS nexus_migration_lock (
    id INTEGER PRIMARY KEY, holder BLOB NOT NULL, expires_at TEXT NOT NULL) STRICT";

fn migrator(pool: &Pool) -> Migrator {
    let mut migrator = match pool {
        Pool::Sqlite(_) => sqlx::migrate!("../../migrations/sqlite"),
        Pool::Postgres(_) => sqlx::migrate!("../../migrations/postgres"),
    };
    migrator.set_locking(false);
    migrator
}

impl Store {
    /// Applies every pending migration of this backend's set. Safe to call from several
    /// processes at once: one migrates, the others wait for it (up to two minutes).
    pub async fn migrate(&self) -> Result<()> {
        let holder = Uuid::new_v4();
        self.acquire_migration_lock(holder).await?;
        let migrator = migrator(&self.pool);
        let outcome = match &self.pool {
            Pool::Sqlite(pool) => migrator.run(pool).await,
            Pool::Postgres(pool) => migrator.run(pool).await,
        };
        let released = self.release_migration_lock(holder).await;
        outcome?;
        released
    }

    async fn acquire_migration_lock(&self, holder: Uuid) -> Result<()> {
        let deadline = tokio::time::Instant::now() + LOCK_WAIT;
        loop {
            match self.try_acquire_migration_lock(holder).await {
                Ok(true) => return Ok(()),
                Ok(false) => {}
                // Two processes creating the lock table at once can collide in the catalog.
                Err(error) if error.is_retryable() || matches!(error, Error::Conflict { .. }) => {
                    tracing::debug!(%error, "migration lock contended");
                }
                Err(error) => return Err(error),
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Conflict {
                    message: format!(
                        "another process holds the migration lock (waited {LOCK_WAIT:?})"
                    ),
                });
            }
            tokio::time::sleep(LOCK_POLL).await;
        }
    }

    /// Takes the lock if it is free or its lease ran out.
    async fn try_acquire_migration_lock(&self, holder: Uuid) -> Result<bool> {
        let now = now();
        let expires_at: DateTime<Utc> = now + LOCK_LEASE;
        const DELETE_EXPIRED: &str =
            "DELETE FROM nexus_migration_lock WHERE id = 1 AND expires_at < $1";
        const INSERT: &str = "INSERT INTO nexus_migration_lock (id, holder, expires_at) \
             VALUES (1, $1, $2) ON CONFLICT DO NOTHING";
        let inserted = match &self.pool {
            Pool::Sqlite(pool) => {
                sqlx::query(CREATE_LOCK_TABLE_SQLITE).execute(pool).await?;
                sqlx::query(DELETE_EXPIRED).bind(now).execute(pool).await?;
                let result = sqlx::query(INSERT)
                    .bind(holder)
                    .bind(expires_at)
                    .execute(pool)
                    .await?;
                result.rows_affected()
            }
            Pool::Postgres(pool) => {
                sqlx::query(CREATE_LOCK_TABLE_POSTGRES)
                    .execute(pool)
                    .await?;
                sqlx::query(DELETE_EXPIRED).bind(now).execute(pool).await?;
                let result = sqlx::query(INSERT)
                    .bind(holder)
                    .bind(expires_at)
                    .execute(pool)
                    .await?;
                result.rows_affected()
            }
        };
        Ok(inserted == 1)
    }

    async fn release_migration_lock(&self, holder: Uuid) -> Result<()> {
        const DELETE: &str = "DELETE FROM nexus_migration_lock WHERE id = 1 AND holder = $1";
        match &self.pool {
            Pool::Sqlite(pool) => sqlx::query(DELETE)
                .bind(holder)
                .execute(pool)
                .await
                .map(drop)?,
            Pool::Postgres(pool) => sqlx::query(DELETE)
                .bind(holder)
                .execute(pool)
                .await
                .map(drop)?,
        }
        Ok(())
    }
}
