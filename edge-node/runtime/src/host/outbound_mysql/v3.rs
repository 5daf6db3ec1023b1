//! `spin:mysql/mysql@3.0.0` (spin-sdk 7): every function an `async func`, called concurrently
//! by WASIp3 guests; `query` answers the columns at once and streams the rows. The store is
//! only borrowed to check, reserve and look up; every network wait happens outside it.

use wasmtime::component::{Accessor, FutureReader, Linker, Resource, StreamReader};

use super::{MysqlConnection, OutboundMysql, OutboundMysqlView, RowStream};
use crate::host::rdbms::ChannelProducer;
use crate::host::rdbms::v2 as types;
use crate::state::HostState;

wasmtime::component::bindgen!({
    path: "wit",
    world: "nexus:host/outbound-mysql-v3",
    imports: { default: trappable },
    with: { "spin:mysql/mysql.connection": super::MysqlConnection },
});

use spin::mysql::mysql::{
    Column, DbDataType, DbValue, Error, Host, HostConnection, HostConnectionWithStore,
    ParameterValue, Row,
};

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    spin::mysql::mysql::add_to_linker::<HostState, OutboundMysql>(linker, HostState::outbound_mysql)
}

impl From<types::Error> for Error {
    fn from(error: types::Error) -> Self {
        match error {
            types::Error::ConnectionFailed(message) => Self::ConnectionFailed(message),
            types::Error::BadParameter(message) => Self::BadParameter(message),
            types::Error::QueryFailed(message) => Self::QueryFailed(message),
            types::Error::ValueConversionFailed(message) => Self::ValueConversionFailed(message),
            types::Error::Other(message) => Self::Other(message),
        }
    }
}

fn parameter(value: ParameterValue) -> types::ParameterValue {
    match value {
        ParameterValue::Boolean(value) => types::ParameterValue::Boolean(value),
        ParameterValue::Int8(value) => types::ParameterValue::Int8(value),
        ParameterValue::Int16(value) => types::ParameterValue::Int16(value),
        ParameterValue::Int32(value) => types::ParameterValue::Int32(value),
        ParameterValue::Int64(value) => types::ParameterValue::Int64(value),
        ParameterValue::Uint8(value) => types::ParameterValue::Uint8(value),
        ParameterValue::Uint16(value) => types::ParameterValue::Uint16(value),
        ParameterValue::Uint32(value) => types::ParameterValue::Uint32(value),
        ParameterValue::Uint64(value) => types::ParameterValue::Uint64(value),
        ParameterValue::Floating32(value) => types::ParameterValue::Floating32(value),
        ParameterValue::Floating64(value) => types::ParameterValue::Floating64(value),
        ParameterValue::Str(value) => types::ParameterValue::Str(value),
        ParameterValue::Binary(value) => types::ParameterValue::Binary(value),
        ParameterValue::DbNull => types::ParameterValue::DbNull,
    }
}

fn value(value: types::DbValue) -> DbValue {
    match value {
        types::DbValue::Boolean(value) => DbValue::Boolean(value),
        types::DbValue::Int8(value) => DbValue::Int8(value),
        types::DbValue::Int16(value) => DbValue::Int16(value),
        types::DbValue::Int32(value) => DbValue::Int32(value),
        types::DbValue::Int64(value) => DbValue::Int64(value),
        types::DbValue::Uint8(value) => DbValue::Uint8(value),
        types::DbValue::Uint16(value) => DbValue::Uint16(value),
        types::DbValue::Uint32(value) => DbValue::Uint32(value),
        types::DbValue::Uint64(value) => DbValue::Uint64(value),
        types::DbValue::Floating32(value) => DbValue::Floating32(value),
        types::DbValue::Floating64(value) => DbValue::Floating64(value),
        types::DbValue::Str(value) => DbValue::Str(value),
        types::DbValue::Binary(value) => DbValue::Binary(value),
        types::DbValue::DbNull => DbValue::DbNull,
        types::DbValue::Unsupported => DbValue::Unsupported,
    }
}

fn column(column: types::Column) -> Column {
    let data_type = match column.data_type {
        types::DbDataType::Boolean => DbDataType::Boolean,
        types::DbDataType::Int8 => DbDataType::Int8,
        types::DbDataType::Int16 => DbDataType::Int16,
        types::DbDataType::Int32 => DbDataType::Int32,
        types::DbDataType::Int64 => DbDataType::Int64,
        types::DbDataType::Uint8 => DbDataType::Uint8,
        types::DbDataType::Uint16 => DbDataType::Uint16,
        types::DbDataType::Uint32 => DbDataType::Uint32,
        types::DbDataType::Uint64 => DbDataType::Uint64,
        types::DbDataType::Floating32 => DbDataType::Floating32,
        types::DbDataType::Floating64 => DbDataType::Floating64,
        types::DbDataType::Str => DbDataType::Str,
        types::DbDataType::Binary => DbDataType::Binary,
        types::DbDataType::Other => DbDataType::Other,
    };
    Column {
        name: column.name,
        data_type,
    }
}

fn row(values: Vec<types::DbValue>) -> Row {
    values.into_iter().map(value).collect()
}

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

impl Host for OutboundMysqlView<'_> {}

impl HostConnection for OutboundMysqlView<'_> {
    fn drop(&mut self, connection: Resource<MysqlConnection>) -> wasmtime::Result<()> {
        self.close(connection)
    }
}

fn connection<T>(
    accessor: &Accessor<T, OutboundMysql>,
    handle: &Resource<MysqlConnection>,
) -> wasmtime::Result<MysqlConnection> {
    accessor.with(|mut access| access.get().connection(handle))
}

/// The columns, row stream and outcome future `query` answers.
type AsyncRowSet = (
    Vec<Column>,
    StreamReader<Row>,
    FutureReader<Result<(), Error>>,
);

impl<T> HostConnectionWithStore<T> for OutboundMysql {
    async fn open(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> Outcome<Resource<MysqlConnection>> {
        let pending = match accessor.with(|mut access| access.get().begin_open(&address)) {
            Ok(pending) => pending,
            Err(error) => return Ok(Err(error.into())),
        };
        let opened = pending.connect().await;
        Ok(accessor
            .with(|mut access| access.get().finish_open(opened))
            .map_err(Error::from))
    }

    async fn query(
        accessor: &Accessor<T, Self>,
        connection: Resource<MysqlConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Outcome<AsyncRowSet> {
        let connection = self::connection(accessor, &connection)?;
        let params = params.into_iter().map(parameter).collect();
        let RowStream {
            columns,
            rows,
            outcome,
        } = match connection.query_stream(statement, params).await {
            Ok(stream) => stream,
            Err(error) => return Ok(Err(error.into())),
        };
        accessor.with(|mut access| {
            let rows = StreamReader::new(&mut access, ChannelProducer::new(rows, row))?;
            let outcome = FutureReader::new(&mut access, async move {
                let outcome = outcome.await.unwrap_or_else(|_| {
                    Err(types::Error::Other(
                        "the statement ended without an outcome".to_owned(),
                    ))
                });
                Ok::<_, wasmtime::Error>(outcome.map_err(Error::from))
            })?;
            Ok(Ok((
                columns.into_iter().map(column).collect(),
                rows,
                outcome,
            )))
        })
    }

    async fn execute(
        accessor: &Accessor<T, Self>,
        connection: Resource<MysqlConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Outcome<()> {
        let connection = self::connection(accessor, &connection)?;
        let params = params.into_iter().map(parameter).collect();
        Ok(connection
            .execute(statement, params)
            .await
            .map_err(Error::from))
    }
}
