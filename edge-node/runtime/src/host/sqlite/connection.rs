//! One guest connection: opened at its first statement, on sqlx's worker thread, bounded by the
//! invocation's deadline.

use std::sync::Arc;

use futures::TryStreamExt as _;
use sqlx::sqlite::{SqliteArguments, SqliteRow, SqliteStatement, SqliteValueRef};
use sqlx::{
    Arguments as _, AssertSqlSafe, Column as _, Decode, Either, Executor as _, Row as _,
    SqlSafeStr as _, Sqlite, Statement as _, TypeInfo as _, ValueRef as _,
};
use tokio::sync::{Mutex, OwnedMutexGuard, mpsc, oneshot};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::databases::Location;
use super::statement::{first_statement, numbered_parameters};
use super::{Failure, MAX_RESULT_BYTES, QueryResult, Value};

/// SQLite virtual-machine instructions between two checks of the deadline.
const PROGRESS_CHECK_INTERVAL: i32 = 1_000;
/// Rows `execute-async` produces ahead of the guest's reads.
const STREAM_AHEAD_ROWS: usize = 16;

/// A guest's connection: the resource behind both versions' `connection` handles.
#[derive(Clone)]
pub struct Connection {
    location: Location,
    deadline: Instant,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    /// `None` until the first statement.
    connection: Option<sqlx::SqliteConnection>,
    counters: Counters,
}

/// `sqlite3_last_insert_rowid` and `sqlite3_changes` of the connection, as of its last
/// completed statement.
#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    last_insert_rowid: i64,
    changes: u64,
}

/// A statement ready to run: its columns, the text sqlx runs, and the values to bind.
struct Prepared {
    columns: Vec<String>,
    sql: String,
    arguments: SqliteArguments,
}

/// The result of [`Connection::query_stream`].
pub struct RowStream {
    /// The column names.
    pub columns: Vec<String>,
    /// The rows, as SQLite produces them.
    pub rows: mpsc::Receiver<Vec<Value>>,
    /// How the statement ended, once every row is sent.
    pub outcome: oneshot::Receiver<Result<(), Failure>>,
}

/// Where the rows of a running statement go.
enum Sink {
    Collect(Vec<Vec<Value>>),
    Stream(mpsc::Sender<Vec<Value>>),
}

impl Connection {
    /// A connection to `location` whose statements must end by `deadline`. Opens nothing yet.
    pub(super) fn new(location: Location, deadline: Instant) -> Self {
        Self {
            location,
            deadline,
            state: Arc::default(),
        }
    }

    /// Runs the first statement of `sql` with `parameters` and collects its rows.
    pub async fn query(&self, sql: &str, parameters: Vec<Value>) -> Result<QueryResult, Failure> {
        let work = async {
            let mut state = self.state.lock().await;
            let State {
                connection,
                counters,
            } = &mut *state;
            let connection = self.connect(connection).await?;
            let prepared = prepare(connection, sql, parameters).await?;
            let columns = prepared.columns.clone();
            let rows = match run(connection, prepared, Sink::Collect(Vec::new()), counters).await? {
                Sink::Collect(rows) => rows,
                Sink::Stream(_) => Vec::new(),
            };
            Ok(QueryResult { columns, rows })
        };
        within(self.deadline, work).await
    }

    /// Runs the first statement of `sql` with `parameters`: the columns (or the error of
    /// preparing and binding) now, the rows as they come, and the final outcome after them.
    pub async fn query_stream(
        &self,
        sql: &str,
        parameters: Vec<Value>,
    ) -> Result<RowStream, Failure> {
        let deadline = self.deadline;
        let started = async {
            let mut state = Arc::clone(&self.state).lock_owned().await;
            let connection = self.connect(&mut state.connection).await?;
            let prepared = prepare(connection, sql, parameters).await?;
            Ok::<_, Failure>((state, prepared))
        };
        let (state, prepared) = within(deadline, started).await?;
        let columns = prepared.columns.clone();
        let (rows_sender, rows) = mpsc::channel(STREAM_AHEAD_ROWS);
        let (outcome_sender, outcome) = oneshot::channel();
        tokio::spawn(
            async move {
                let result = within(deadline, stream_rows(state, prepared, rows_sender)).await;
                let _ = outcome_sender.send(result);
            }
            .in_current_span(),
        );
        Ok(RowStream {
            columns,
            rows,
            outcome,
        })
    }

    /// The rowid of the connection's most recent successful `INSERT`, or 0.
    pub async fn last_insert_rowid(&self) -> i64 {
        self.state.lock().await.counters.last_insert_rowid
    }

    /// The rows changed by the connection's most recent `INSERT`, `UPDATE` or `DELETE`, or 0.
    pub async fn changes(&self) -> u64 {
        self.state.lock().await.counters.changes
    }

    /// The open sqlx connection, opening it first if this is the first statement.
    async fn connect<'a>(
        &self,
        connection: &'a mut Option<sqlx::SqliteConnection>,
    ) -> Result<&'a mut sqlx::SqliteConnection, Failure> {
        if let Some(open) = connection {
            return Ok(open);
        }
        let mut opened = self.location.connect().await.map_err(io_failure)?;
        // Interrupts a statement inside SQLite once the deadline has passed, so that a runaway
        // query cannot keep the worker thread (and the database's locks) after the guest is gone.
        let deadline = self.deadline.into_std();
        opened
            .lock_handle()
            .await
            .map_err(io_failure)?
            .set_progress_handler(PROGRESS_CHECK_INTERVAL, move || {
                std::time::Instant::now() < deadline
            });
        Ok(connection.insert(opened))
    }
}

/// Runs `work`, or fails with an `io` error once `deadline` has passed.
async fn within<T>(
    deadline: Instant,
    work: impl Future<Output = Result<T, Failure>>,
) -> Result<T, Failure> {
    tokio::time::timeout_at(deadline, work)
        .await
        .unwrap_or_else(|_| Err(deadline_failure()))
}

fn deadline_failure() -> Failure {
    Failure::Io("interrupted: the invocation's deadline passed".to_owned())
}

/// The `io` failure for an error of sqlx: SQLite's own message when SQLite reported it.
fn io_failure(error: sqlx::Error) -> Failure {
    match error {
        sqlx::Error::Database(database_error) => Failure::Io(database_error.message().to_owned()),
        other => Failure::Io(other.to_string()),
    }
}

/// Prepares the first statement of `sql` and checks `parameters` against it as rusqlite does.
async fn prepare(
    connection: &mut sqlx::SqliteConnection,
    sql: &str,
    parameters: Vec<Value>,
) -> Result<Prepared, Failure> {
    let statement_text = first_statement(sql);
    let statement: SqliteStatement = connection
        .prepare(AssertSqlSafe(statement_text.to_owned()).into_sql_str())
        .await
        .map_err(io_failure)?;
    let needed = match statement.parameters() {
        Some(Either::Right(count)) => count,
        Some(Either::Left(types)) => types.len(),
        None => 0,
    };
    if parameters.len() != needed {
        // rusqlite counts the values it binds and stops one past what the statement needs.
        let got = parameters.len().min(needed + 1);
        return Err(Failure::Io(format!(
            "Wrong number of parameters passed to query. Got {got}, needed {needed}"
        )));
    }
    let columns = statement
        .columns()
        .iter()
        .map(|column| column.name().to_owned())
        .collect();
    let sql = numbered_parameters(statement_text).unwrap_or_else(|| statement_text.to_owned());
    let mut arguments = SqliteArguments::default();
    for parameter in parameters {
        let added = match parameter {
            Value::Integer(integer) => arguments.add(integer),
            Value::Real(real) => arguments.add(real),
            Value::Text(text) => arguments.add(text),
            Value::Blob(blob) => arguments.add(blob),
            Value::Null => arguments.add(None::<i64>),
        };
        added.map_err(|error| Failure::Io(error.to_string()))?;
    }
    Ok(Prepared {
        columns,
        sql,
        arguments,
    })
}

/// Runs a prepared statement, sending its rows to `sink` and recording the connection's
/// counters when it completes.
async fn run(
    connection: &mut sqlx::SqliteConnection,
    prepared: Prepared,
    mut sink: Sink,
    counters: &mut Counters,
) -> Result<Sink, Failure> {
    let mut result_bytes = size_of::<QueryResult>();
    let query = sqlx::query_with(AssertSqlSafe(prepared.sql), prepared.arguments);
    let mut results = connection.fetch_many(query);
    while let Some(result) = results.try_next().await.map_err(io_failure)? {
        match result {
            Either::Left(done) => {
                *counters = Counters {
                    last_insert_rowid: done.last_insert_rowid(),
                    changes: done.rows_affected(),
                };
            }
            Either::Right(row) => {
                let values = row_values(&row)?;
                result_bytes += values.iter().map(Value::memory_size).sum::<usize>();
                if result_bytes > MAX_RESULT_BYTES {
                    return Err(Failure::Io(format!(
                        "query result exceeds limit of {MAX_RESULT_BYTES} bytes"
                    )));
                }
                match &mut sink {
                    Sink::Collect(rows) => rows.push(values),
                    Sink::Stream(sender) => sender
                        .send(values)
                        .await
                        .map_err(|_| Failure::Io("the guest closed the row stream".to_owned()))?,
                }
            }
        }
    }
    Ok(sink)
}

/// The body of `execute-async`'s task: runs the statement on the locked connection.
async fn stream_rows(
    mut state: OwnedMutexGuard<State>,
    prepared: Prepared,
    rows: mpsc::Sender<Vec<Value>>,
) -> Result<(), Failure> {
    let State {
        connection,
        counters,
    } = &mut *state;
    let Some(connection) = connection else {
        return Err(Failure::Io("the connection is not open".to_owned()));
    };
    run(connection, prepared, Sink::Stream(rows), counters).await?;
    Ok(())
}

/// The values of `row`, each as the type SQLite stored it.
fn row_values(row: &SqliteRow) -> Result<Vec<Value>, Failure> {
    (0..row.len())
        .map(|index| {
            let raw = row.try_get_raw(index).map_err(io_failure)?;
            value(raw)
        })
        .collect()
}

fn value(raw: SqliteValueRef<'_>) -> Result<Value, Failure> {
    if raw.is_null() {
        return Ok(Value::Null);
    }
    let storage_class = raw.type_info().name().to_owned();
    let decoded = match storage_class.as_str() {
        "INTEGER" => <i64 as Decode<Sqlite>>::decode(raw).map(Value::Integer),
        "REAL" => <f64 as Decode<Sqlite>>::decode(raw).map(Value::Real),
        "TEXT" => <String as Decode<Sqlite>>::decode(raw).map(Value::Text),
        "BLOB" => <Vec<u8> as Decode<Sqlite>>::decode(raw).map(Value::Blob),
        other => return Err(Failure::Io(format!("unexpected SQLite value type {other}"))),
    };
    decoded.map_err(|error| Failure::Io(format!("cannot read a {storage_class} value: {error}")))
}
