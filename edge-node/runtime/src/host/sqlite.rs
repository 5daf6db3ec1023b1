//! Spin SQLite: `fermyon:spin/sqlite@2.0.0` (spin-sdk 2–5, `spin_sdk::sqlite`) and
//! `spin:sqlite/sqlite@3.1.0` (spin-sdk 7; it also serves spin-sdk 5's `spin_sdk::sqlite3`,
//! which imports 3.0.0), over sqlx.
//!
//! # Databases
//!
//! Every app has its own databases, never shared with another app. A database is named by a
//! label; the databases an app has are `default` plus every label one of its components lists in
//! `sqlite_databases`. (Spin defines `default` and refuses to start an app that lists a label its
//! runtime config (`[sqlite_database.<label>]`) does not define. SirsiNexus has no runtime
//! config yet, so every listed label gets a database of its own, as if the runtime config
//! defined it as a local file.) With a state directory (`nexus up --state-dir`, default
//! `.nexus`) a database is the file `<state dir>/sqlite/<app>/<label>.db`, where `<app>` is the
//! app's name with every character other than ASCII letters, digits, `-` and `_` written as
//! `%XX`, so that no two names share a directory. Without one it is an in-memory database that
//! lives as long as the [`crate::Runtime`] and is shared by the app's components.
//!
//! # Behaviour, as in Spin's `factor-sqlite` and `sqlite-inproc`
//!
//! - `open` answers `access-denied` for a label the component's `sqlite_databases` does not
//!   list, then `no-such-database` for a label that cannot name a database (only labels of
//!   ASCII letters, digits, `-` and `_` can; the manifest loader accepts no other), then
//!   `io("too many connections opened")` beyond [`MAX_OPEN_CONNECTIONS`] open connections. It
//!   opens nothing yet: the database is opened at the connection's first statement, and a
//!   failure to open is that statement's `io` error.
//! - Each connection is a connection of its own to the database (its own
//!   `last-insert-rowid` and `changes`, both 0 until it runs an `INSERT`), with SQLite's
//!   defaults as rusqlite leaves them: foreign keys not enforced, rollback journal, a five-second
//!   busy timeout.
//! - `execute` runs the *first* statement of the text and ignores the rest, as
//!   `sqlite3_prepare` does. The n-th parameter value binds to parameter index n whatever the
//!   parameter's spelling; a count that does not match is
//!   `io("Wrong number of parameters passed to query. Got G, needed N")` with rusqlite's numbers.
//!   Columns are named as SQLite names them; each value comes back as the type SQLite stored
//!   (integer, real, text, blob, null). Text that is not UTF-8 (SQLite does not check) fails
//!   the statement with `io`; Spin's host panics on it.
//! - Any SQLite failure is `io` with SQLite's message (`sqlite3_errmsg`), for example
//!   `io("no such table: missing")`. Differs from Spin: for an error SQLite reports while
//!   preparing, with a position, rusqlite appends ` in <statement> at offset <n>`; sqlx does not
//!   expose the position, so the message stands alone.
//! - A result set is capped at [`MAX_RESULT_BYTES`] of row data, counted as Spin counts it;
//!   beyond it the statement fails with `io("query result exceeds limit of N bytes")`. (Spin's
//!   cap is 128 MiB; a guest's memory is capped at 128 MiB by default, so a result that size could
//!   never reach the guest.)
//! - `execute-async` (3.1) answers the columns at once, or the error of preparing and binding;
//!   rows then stream as SQLite produces them, and the future carries any later error (a
//!   failing step, the size cap, the deadline).
//!
//! Every statement is bounded by the invocation's deadline: the guest stops waiting at the
//! deadline, and SQLite's progress handler interrupts the statement inside SQLite. Database
//! work runs on sqlx's worker thread (one per open connection), never on the async executor.

use std::sync::Arc;

use tokio::time::Instant;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::state::HostState;

mod connection;
mod databases;
mod statement;
#[cfg(test)]
mod tests;
mod v2;
mod v3;

pub use connection::Connection;
pub use databases::SqliteDatabases;

/// Connections one instance may hold open at once. (Spin allows 256; each open connection here
/// is a thread while it is in use, and instances run by the hundred.)
pub const MAX_OPEN_CONNECTIONS: usize = 16;

/// Cap on the row data of one result set, counted as Spin counts it: each value's in-memory
/// size plus its text or blob bytes.
pub const MAX_RESULT_BYTES: usize = 64 * 1024 * 1024;

/// Which databases a component may open, and where its app's databases live.
pub struct SqliteAccess {
    databases: Arc<SqliteDatabases>,
    app: String,
    allowed_labels: Vec<String>,
}

impl SqliteAccess {
    /// Access for a component of `app` allowed to open `allowed_labels` (its
    /// `sqlite_databases`).
    pub fn new(databases: &Arc<SqliteDatabases>, app: &str, allowed_labels: &[String]) -> Self {
        Self {
            databases: Arc::clone(databases),
            app: app.to_owned(),
            allowed_labels: allowed_labels.to_vec(),
        }
    }
}

/// The per-instance state of this capability.
#[derive(Default)]
pub struct SqliteState {
    open_connections: usize,
}

/// Why an operation failed, before it is mapped to a version's error variant.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// The component may not open this label.
    AccessDenied,
    /// No database has this label.
    NoSuchDatabase,
    /// Anything else, with SQLite's (or the host's) message.
    Io(String),
}

/// A value going into or coming out of SQLite, independent of the interface version.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// A 64-bit signed integer.
    Integer(i64),
    /// A 64-bit float.
    Real(f64),
    /// UTF-8 text.
    Text(String),
    /// Bytes.
    Blob(Vec<u8>),
    /// SQL NULL.
    Null,
}

impl Value {
    /// The bytes this value counts against [`MAX_RESULT_BYTES`], as Spin's
    /// `Value::memory_size` counts them.
    fn memory_size(&self) -> usize {
        size_of::<Self>()
            + match self {
                Self::Text(text) => text.len(),
                Self::Blob(blob) => blob.len(),
                Self::Integer(_) | Self::Real(_) | Self::Null => 0,
            }
    }
}

/// The columns and rows of a result set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueryResult {
    /// The column names, as SQLite names them.
    pub columns: Vec<String>,
    /// The rows, each with one value per column.
    pub rows: Vec<Vec<Value>>,
}

/// What the host functions see of the store data.
pub struct SqliteView<'a> {
    access: &'a SqliteAccess,
    state: &'a mut SqliteState,
    table: &'a mut ResourceTable,
    deadline: Instant,
}

impl SqliteView<'_> {
    /// A new connection to `label`, or why there is none. Opens nothing yet.
    fn open(&mut self, label: &str) -> wasmtime::Result<Result<Resource<Connection>, Failure>> {
        if !self
            .access
            .allowed_labels
            .iter()
            .any(|allowed| allowed == label)
        {
            return Ok(Err(Failure::AccessDenied));
        }
        let Some(location) = self.access.databases.location(&self.access.app, label) else {
            return Ok(Err(Failure::NoSuchDatabase));
        };
        if self.state.open_connections >= MAX_OPEN_CONNECTIONS {
            return Ok(Err(Failure::Io("too many connections opened".to_owned())));
        }
        let handle = self.table.push(Connection::new(location, self.deadline))?;
        self.state.open_connections += 1;
        Ok(Ok(handle))
    }

    fn connection(&self, handle: &Resource<Connection>) -> wasmtime::Result<Connection> {
        Ok(self.table.get(handle)?.clone())
    }

    fn close(&mut self, handle: Resource<Connection>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        self.state.open_connections = self.state.open_connections.saturating_sub(1);
        Ok(())
    }
}

/// Adds both interfaces to `linker`; `spin:sqlite/sqlite@3.1.0` also serves imports of 3.0.0.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v2::add_to_linker(linker)?;
    v3::add_to_linker(linker)?;
    Ok(())
}

/// [`HasData`] marker for this capability.
pub struct Sqlite;

impl HasData for Sqlite {
    type Data<'a> = SqliteView<'a>;
}

impl HostState {
    fn sqlite(&mut self) -> SqliteView<'_> {
        let deadline = self
            .deadline()
            .unwrap_or_else(|| Instant::now() + crate::config::DEFAULT_DEADLINE);
        SqliteView {
            access: &self.env.sqlite,
            state: &mut self.sqlite,
            table: &mut self.table,
            deadline,
        }
    }
}
