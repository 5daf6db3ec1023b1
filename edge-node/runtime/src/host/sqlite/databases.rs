//! Where each app's SQLite databases live: files under the state directory, or in-memory
//! databases kept for the runtime's lifetime.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::ConnectOptions as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use tokio::sync::OnceCell;

/// Numbers the runtimes of this process, so that their in-memory databases never meet.
static NEXT_RUNTIME: AtomicU64 = AtomicU64::new(0);

/// The SQLite databases of every app a runtime runs.
pub struct SqliteDatabases {
    storage: Storage,
}

enum Storage {
    /// `<state dir>/sqlite`.
    Files(PathBuf),
    Memory {
        runtime: u64,
        databases: Mutex<HashMap<(String, String), Arc<MemoryDatabase>>>,
    },
}

/// Where one database is.
#[derive(Clone)]
pub(super) enum Location {
    File(PathBuf),
    Memory(Arc<MemoryDatabase>),
}

/// A database in SQLite's `memdb` VFS: a name starting with `/` is shared by every connection
/// of the process that opens it, and lives while one is open. The keeper is that connection.
pub(super) struct MemoryDatabase {
    name: String,
    keeper: OnceCell<Mutex<SqliteConnection>>,
}

impl SqliteDatabases {
    /// Databases as files under `<state_dir>/sqlite`, or in memory when `state_dir` is `None`.
    pub fn new(state_dir: Option<&Path>) -> Self {
        let storage = match state_dir {
            Some(state_dir) => Storage::Files(state_dir.join("sqlite")),
            None => Storage::Memory {
                runtime: NEXT_RUNTIME.fetch_add(1, Ordering::Relaxed),
                databases: Mutex::default(),
            },
        };
        Self { storage }
    }

    /// Where `app`'s database `label` is, or `None` when `label` cannot name a database.
    pub(super) fn location(&self, app: &str, label: &str) -> Option<Location> {
        if !is_database_label(label) {
            return None;
        }
        Some(match &self.storage {
            Storage::Files(root) => {
                Location::File(root.join(app_directory(app)).join(format!("{label}.db")))
            }
            Storage::Memory { runtime, databases } => {
                let mut databases = databases
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
                let count = databases.len();
                let database = databases
                    .entry((app.to_owned(), label.to_owned()))
                    .or_insert_with(|| {
                        Arc::new(MemoryDatabase {
                            name: format!("/nexus-sqlite-{runtime}-{count}"),
                            keeper: OnceCell::new(),
                        })
                    });
                Location::Memory(Arc::clone(database))
            }
        })
    }
}

impl Location {
    /// Opens a new connection to the database, creating it (and its directory) if needed.
    pub(super) async fn connect(&self) -> Result<SqliteConnection, sqlx::Error> {
        match self {
            Self::File(path) => {
                if let Some(directory) = path.parent() {
                    tokio::fs::create_dir_all(directory).await?;
                }
                options().filename(path).connect().await
            }
            Self::Memory(database) => {
                let memory_options = || options().filename(&database.name).vfs("memdb");
                database
                    .keeper
                    .get_or_try_init(|| async { memory_options().connect().await.map(Mutex::new) })
                    .await?;
                memory_options().connect().await
            }
        }
    }
}

/// A connection as rusqlite's `Connection::open` makes one: created if missing, SQLite's
/// defaults (sqlx would turn foreign keys on), a five-second busy timeout. Guest SQL is not
/// logged.
fn options() -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .create_if_missing(true)
        .foreign_keys(false)
        .busy_timeout(std::time::Duration::from_secs(5))
        .disable_statement_logging()
}

/// Whether `label` can name a database file: ASCII letters, digits, `-` and `_`.
fn is_database_label(label: &str) -> bool {
    !label.is_empty()
        && label
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}

/// The directory name of `app`: ASCII letters, digits, `-` and `_` as they are, every other
/// byte as `%XX`, and the empty name as `%`. No two names map to the same directory, and none
/// to `.` or `..`.
fn app_directory(app: &str) -> String {
    if app.is_empty() {
        return "%".to_owned();
    }
    let mut directory = String::with_capacity(app.len());
    for byte in app.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            directory.push(char::from(byte));
        } else {
            let _ = write!(directory, "%{byte:02X}");
        }
    }
    directory
}

#[cfg(test)]
mod tests {
    use super::{app_directory, is_database_label};

    #[test]
    fn app_directories_are_distinct_and_safe() {
        for (app, directory) in [
            ("nexus-examples", "nexus-examples"),
            ("my_app", "my_app"),
            ("my app", "my%20app"),
            ("..", "%2E%2E"),
            ("a/b", "a%2Fb"),
            ("a%2Fb", "a%252Fb"),
            ("", "%"),
            ("ü", "%C3%BC"),
        ] {
            assert_eq!(app_directory(app), directory, "{app:?}");
        }
    }

    #[test]
    fn only_plain_labels_name_databases() {
        for label in ["default", "orders", "my-db", "my_db", "DB2"] {
            assert!(is_database_label(label), "{label}");
        }
        for label in ["", "../default", "a/b", "a.db", "a b", "ü"] {
            assert!(!is_database_label(label), "{label}");
        }
    }
}
