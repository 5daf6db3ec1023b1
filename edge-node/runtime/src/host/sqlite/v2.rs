//! `fermyon:spin/sqlite@2.0.0`: synchronous to the guest, async on the host.

use wasmtime::component::{Linker, Resource};

use super::{Connection, Failure, Sqlite, SqliteView};
use crate::state::HostState;

wasmtime::component::bindgen!({
    path: "wit",
    world: "nexus:host/sqlite-v2",
    imports: { default: async | trappable },
    with: { "fermyon:spin/sqlite.connection": super::Connection },
});

use fermyon::spin::sqlite::{Error, Host, HostConnection, QueryResult, RowResult, Value};

/// Adds the interface to `linker`.
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    fermyon::spin::sqlite::add_to_linker::<HostState, Sqlite>(linker, HostState::sqlite)
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

impl From<super::Value> for Value {
    fn from(value: super::Value) -> Self {
        match value {
            super::Value::Integer(integer) => Self::Integer(integer),
            super::Value::Real(real) => Self::Real(real),
            super::Value::Text(text) => Self::Text(text),
            super::Value::Blob(blob) => Self::Blob(blob),
            super::Value::Null => Self::Null,
        }
    }
}

impl From<super::QueryResult> for QueryResult {
    fn from(result: super::QueryResult) -> Self {
        Self {
            columns: result.columns,
            rows: result
                .rows
                .into_iter()
                .map(|values| RowResult {
                    values: values.into_iter().map(Value::from).collect(),
                })
                .collect(),
        }
    }
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
        let parameters = parameters.into_iter().map(super::Value::from).collect();
        Ok(connection
            .query(&statement, parameters)
            .await
            .map(QueryResult::from)
            .map_err(Error::from))
    }

    async fn drop(&mut self, connection: Resource<Connection>) -> wasmtime::Result<()> {
        self.close(connection)
    }
}
