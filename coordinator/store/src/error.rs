//! The store's one error type.

use sqlx::error::ErrorKind;

/// What a store operation can fail with. Variants are the cases callers branch on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The row the operation needs does not exist.
    #[error("{what} not found")]
    NotFound {
        /// What was looked for (`"user"`, `"project member"`, …).
        what: &'static str,
    },
    /// A uniqueness rule (or another rule the store enforces, such as "a project keeps an
    /// owner") refused the write.
    #[error("conflict: {message}")]
    Conflict {
        /// The database's or the store's description of the conflict.
        message: String,
    },
    /// The transaction kept hitting serialization failures and was given up.
    #[error("transaction abandoned after {attempts} attempts: {last}")]
    RetryExhausted {
        /// Attempts made, the first included.
        attempts: u32,
        /// The failure of the last attempt.
        #[source]
        last: Box<Error>,
    },
    /// A value was refused before it reached the database.
    #[error("invalid {what}: {reason}")]
    Invalid {
        /// The field or argument.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The database URL is neither `sqlite:`, a file path, nor `postgres://`.
    #[error(
        "unsupported database url {url:?}: expected sqlite://PATH, a file path or postgres://…"
    )]
    UnsupportedUrl {
        /// The URL, as given.
        url: String,
    },
    /// A stored value cannot be read back as its type.
    #[error("corrupt row in {table}: {reason}")]
    Corrupt {
        /// The table the row came from.
        table: &'static str,
        /// What was wrong with it.
        reason: String,
    },
    /// Applying migrations failed.
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Creating the directory of a SQLite file failed.
    #[error("failed to create {path}")]
    CreateDirectory {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// Any other database failure.
    #[error("database error")]
    Database(#[source] sqlx::Error),
}

/// `Result` with the store's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// SQLSTATE of a serialization failure (Postgres and CockroachDB).
const SERIALIZATION_FAILURE: &str = "40001";
/// SQLSTATE of a detected deadlock (Postgres); retrying is the documented remedy.
const DEADLOCK_DETECTED: &str = "40P01";
/// Primary SQLite result codes: another connection holds the lock, or a table is locked.
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(database_error) = &error
            && matches!(database_error.kind(), ErrorKind::UniqueViolation)
        {
            return Self::Conflict {
                message: database_error.message().to_owned(),
            };
        }
        Self::Database(error)
    }
}

impl Error {
    /// Whether running the whole transaction again may succeed: a serialization failure or a
    /// deadlock on Postgres/CockroachDB, a busy or locked database on SQLite.
    pub fn is_retryable(&self) -> bool {
        let Self::Database(sqlx::Error::Database(database_error)) = self else {
            return false;
        };
        let Some(code) = database_error.code() else {
            return false;
        };
        if database_error
            .try_downcast_ref::<sqlx::sqlite::SqliteError>()
            .is_some()
        {
            // SQLite reports extended codes; the primary code is the low byte.
            return code
                .parse::<i32>()
                .is_ok_and(|extended| matches!(extended & 0xff, SQLITE_BUSY | SQLITE_LOCKED));
        }
        code == SERIALIZATION_FAILURE || code == DEADLOCK_DETECTED
    }

    pub(crate) fn not_found(what: &'static str) -> Self {
        Self::NotFound { what }
    }

    pub(crate) fn corrupt(table: &'static str, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            table,
            reason: reason.into(),
        }
    }
}
