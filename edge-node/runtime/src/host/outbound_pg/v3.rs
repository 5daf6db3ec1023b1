//! `spin:postgres/postgres@3.0.0` (spin-sdk 3–5, `spin_sdk::pg3`): the 4.x operations with
//! fewer types. A value of a type 3.0.0 lacks comes back `unsupported`, its column `other`.

use wasmtime::component::{Linker, Resource};

use super::v4;
use super::{OutboundPg, OutboundPgView, PgConnection};
use crate::state::HostState;

wasmtime::component::bindgen!({
    path: "wit",
    world: "nexus:host/outbound-pg-v3",
    imports: { default: async | trappable },
    with: { "spin:postgres/postgres.connection": super::PgConnection },
});

use spin::postgres3_0_0::postgres::{
    Column, DbDataType, DbValue, Error, Host, HostConnection, ParameterValue, RowSet,
};

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    spin::postgres3_0_0::postgres::add_to_linker::<HostState, OutboundPg>(
        linker,
        HostState::outbound_pg,
    )
}

super::error_from_v4!(Error);

impl From<ParameterValue> for v4::ParameterValue {
    fn from(value: ParameterValue) -> Self {
        match value {
            ParameterValue::Boolean(value) => Self::Boolean(value),
            ParameterValue::Int8(value) => Self::Int8(value),
            ParameterValue::Int16(value) => Self::Int16(value),
            ParameterValue::Int32(value) => Self::Int32(value),
            ParameterValue::Int64(value) => Self::Int64(value),
            ParameterValue::Floating32(value) => Self::Floating32(value),
            ParameterValue::Floating64(value) => Self::Floating64(value),
            ParameterValue::Str(value) => Self::Str(value),
            ParameterValue::Binary(value) => Self::Binary(value),
            ParameterValue::Date(value) => Self::Date(value),
            ParameterValue::Time(value) => Self::Time(value),
            ParameterValue::Datetime(value) => Self::Datetime(value),
            ParameterValue::Timestamp(value) => Self::Timestamp(value),
            ParameterValue::DbNull => Self::DbNull,
        }
    }
}

impl From<v4::DbValue> for DbValue {
    fn from(value: v4::DbValue) -> Self {
        match value {
            v4::DbValue::Boolean(value) => Self::Boolean(value),
            v4::DbValue::Int8(value) => Self::Int8(value),
            v4::DbValue::Int16(value) => Self::Int16(value),
            v4::DbValue::Int32(value) => Self::Int32(value),
            v4::DbValue::Int64(value) => Self::Int64(value),
            v4::DbValue::Floating32(value) => Self::Floating32(value),
            v4::DbValue::Floating64(value) => Self::Floating64(value),
            v4::DbValue::Str(value) => Self::Str(value),
            v4::DbValue::Binary(value) => Self::Binary(value),
            v4::DbValue::Date(value) => Self::Date(value),
            v4::DbValue::Time(value) => Self::Time(value),
            v4::DbValue::Datetime(value) => Self::Datetime(value),
            v4::DbValue::Timestamp(value) => Self::Timestamp(value),
            v4::DbValue::DbNull => Self::DbNull,
            _ => Self::Unsupported,
        }
    }
}

impl From<v4::DbDataType> for DbDataType {
    fn from(data_type: v4::DbDataType) -> Self {
        match data_type {
            v4::DbDataType::Boolean => Self::Boolean,
            v4::DbDataType::Int8 => Self::Int8,
            v4::DbDataType::Int16 => Self::Int16,
            v4::DbDataType::Int32 => Self::Int32,
            v4::DbDataType::Int64 => Self::Int64,
            v4::DbDataType::Floating32 => Self::Floating32,
            v4::DbDataType::Floating64 => Self::Floating64,
            v4::DbDataType::Str => Self::Str,
            v4::DbDataType::Binary => Self::Binary,
            v4::DbDataType::Date => Self::Date,
            v4::DbDataType::Time => Self::Time,
            v4::DbDataType::Datetime => Self::Datetime,
            v4::DbDataType::Timestamp => Self::Timestamp,
            _ => Self::Other,
        }
    }
}

fn row_set(rows: v4::RowSet) -> RowSet {
    RowSet {
        columns: rows
            .columns
            .into_iter()
            .map(|column| Column {
                name: column.name,
                data_type: column.data_type.into(),
            })
            .collect(),
        rows: rows
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(DbValue::from).collect())
            .collect(),
    }
}

fn params(params: Vec<ParameterValue>) -> Vec<v4::ParameterValue> {
    params.into_iter().map(v4::ParameterValue::from).collect()
}

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

impl Host for OutboundPgView<'_> {}

impl HostConnection for OutboundPgView<'_> {
    async fn open(&mut self, address: String) -> Outcome<Resource<PgConnection>> {
        Ok(OutboundPgView::open(self, &address)
            .await
            .map_err(Error::from))
    }

    async fn query(
        &mut self,
        connection: Resource<PgConnection>,
        statement: String,
        parameters: Vec<ParameterValue>,
    ) -> Outcome<RowSet> {
        let connection = self.connection(&connection)?;
        Ok(connection
            .query(statement, params(parameters))
            .await
            .map(row_set)
            .map_err(Error::from))
    }

    async fn execute(
        &mut self,
        connection: Resource<PgConnection>,
        statement: String,
        parameters: Vec<ParameterValue>,
    ) -> Outcome<u64> {
        let connection = self.connection(&connection)?;
        Ok(connection
            .execute(statement, params(parameters))
            .await
            .map_err(Error::from))
    }

    async fn drop(&mut self, connection: Resource<PgConnection>) -> wasmtime::Result<()> {
        self.close(connection)
    }
}
