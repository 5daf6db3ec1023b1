//! `spin:sqlite/sqlite@3.1.0`: the 3.0.0 functions, synchronous to the guest, and their
//! `async func` twins, called concurrently by WASIp3 guests. Serves imports of 3.0.0 too.

use wasmtime::component::{Accessor, FutureReader, Linker, Resource, StreamReader};

use super::connection::RowStream;
use super::{Connection, Failure, Sqlite, SqliteView};
use crate::host::rdbms::ChannelProducer;
use crate::state::HostState;

wasmtime::component::bindgen!({
    path: "wit",
    world: "nexus:host/sqlite-v3",
    imports: { default: async | trappable },
    with: { "spin:sqlite/sqlite.connection": super::Connection },
});

use spin::sqlite::sqlite::{
    Error, Host, HostConnection, HostConnectionWithStore, QueryResult, RowResult, Value,
};

/// Adds the interface to `linker`.
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    spin::sqlite::sqlite::add_to_linker::<HostState, Sqlite>(linker, HostState::sqlite)
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::AccessDenied => Self::AccessDenied,
            Failure::NoSuchDatabase => Self::NoSuchDatabase,
            Failure::Io(message) => Self::Io(message),
        }
    }
}

impl From<Value> for super::Value {
    fn from(value: Value) -> Self {
        match value {
            Value::Integer(integer) => Self::Integer(integer),
            Value::Real(real) => Self::Real(real),
            Value::Text(text) => Self::Text(text),
            Value::Blob(blob) => Self::Blob(blob),
            Value::Null => Self::Null,
        }
    }
}

fn row(values: Vec<super::Value>) -> RowResult {
    RowResult {
        values: values
            .into_iter()
            .map(|value| match value {
                super::Value::Integer(integer) => Value::Integer(integer),
                super::Value::Real(real) => Value::Real(real),
                super::Value::Text(text) => Value::Text(text),
                super::Value::Blob(blob) => Value::Blob(blob),
                super::Value::Null => Value::Null,
            })
            .collect(),
    }
}

fn values(parameters: Vec<Value>) -> Vec<super::Value> {
    parameters.into_iter().map(super::Value::from).collect()
}

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

impl Host for SqliteView<'_> {}

impl HostConnection for SqliteView<'_> {
    async fn open(&mut self, database: String) -> Outcome<Resource<Connection>> {
        Ok(self.open(&database)?.map_err(Error::from))
    }

    async fn execute(
        &mut self,
        connection: Resource<Connection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> Outcome<QueryResult> {
        let connection = self.connection(&connection)?;
        Ok(connection
            .query(&statement, values(parameters))
            .await
            .map(|result| QueryResult {
                columns: result.columns,
                rows: result.rows.into_iter().map(row).collect(),
            })
            .map_err(Error::from))
    }

    async fn last_insert_rowid(
        &mut self,
        connection: Resource<Connection>,
    ) -> wasmtime::Result<i64> {
        Ok(self.connection(&connection)?.last_insert_rowid().await)
    }

    async fn changes(&mut self, connection: Resource<Connection>) -> wasmtime::Result<u64> {
        Ok(self.connection(&connection)?.changes().await)
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.close(connection)
    }
}

/// The columns, row stream and outcome future `execute-async` answers.
type AsyncQueryResult = (
    Vec<String>,
    StreamReader<RowResult>,
    FutureReader<Result<(), Error>>,
);

impl<T> HostConnectionWithStore<T> for Sqlite {
    async fn open_async(
        accessor: &Accessor<T, Self>,
        database: String,
    ) -> Outcome<Resource<Connection>> {
        accessor.with(|mut access| Ok(access.get().open(&database)?.map_err(Error::from)))
    }

    async fn execute_async(
        accessor: &Accessor<T, Self>,
        connection: Resource<Connection>,
        statement: String,
        parameters: Vec<Value>,
    ) -> Outcome<AsyncQueryResult> {
        let connection = accessor.with(|mut access| access.get().connection(&connection))?;
        let RowStream {
            columns,
            rows,
            outcome,
        } = match connection
            .query_stream(&statement, values(parameters))
            .await
        {
            Ok(stream) => stream,
            Err(failure) => return Ok(Err(Error::from(failure))),
        };
        accessor.with(|mut access| {
            let rows = StreamReader::new(&mut access, ChannelProducer::new(rows, row))?;
            let outcome = FutureReader::new(&mut access, async move {
                let outcome = outcome.await.unwrap_or_else(|_| {
                    Err(Failure::Io(
                        "the statement ended without an outcome".to_owned(),
                    ))
                });
                Ok::<_, wasmtime::Error>(outcome.map_err(Error::from))
            })?;
            Ok(Ok((columns, rows, outcome)))
        })
    }

    async fn last_insert_rowid_async(
        accessor: &Accessor<T, Self>,
        connection: Resource<Connection>,
    ) -> wasmtime::Result<i64> {
        let connection = accessor.with(|mut access| access.get().connection(&connection))?;
        Ok(connection.last_insert_rowid().await)
    }

    async fn changes_async(
        accessor: &Accessor<T, Self>,
        connection: Resource<Connection>,
    ) -> wasmtime::Result<u64> {
        let connection = accessor.with(|mut access| access.get().connection(&connection))?;
        Ok(connection.changes().await)
    }
}
