//! `fermyon:spin/postgres@2.0.0` (spin-sdk 2–5, `spin_sdk::pg`): the 4.x operations on the
//! shared `rdbms-types`. Postgres has no unsigned integers: such a parameter is
//! `bad-parameter`; a value of a type 2.0.0 lacks comes back `unsupported`.

use wasmtime::component::{Linker, Resource};

use super::v4;
use super::{OutboundPg, OutboundPgView, PgConnection};
use crate::host::rdbms::v2::postgres::{Host, HostConnection};
use crate::host::rdbms::v2::{Column, DbDataType, DbValue, Error, ParameterValue, RowSet};
use crate::state::HostState;

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    crate::host::rdbms::v2::postgres::add_to_linker::<HostState, OutboundPg>(
        linker,
        HostState::outbound_pg,
    )
}

super::error_from_v4!(Error);

fn parameter(value: ParameterValue) -> Result<v4::ParameterValue, Error> {
    Ok(match value {
        ParameterValue::Boolean(value) => v4::ParameterValue::Boolean(value),
        ParameterValue::Int8(value) => v4::ParameterValue::Int8(value),
        ParameterValue::Int16(value) => v4::ParameterValue::Int16(value),
        ParameterValue::Int32(value) => v4::ParameterValue::Int32(value),
        ParameterValue::Int64(value) => v4::ParameterValue::Int64(value),
        ParameterValue::Floating32(value) => v4::ParameterValue::Floating32(value),
        ParameterValue::Floating64(value) => v4::ParameterValue::Floating64(value),
        ParameterValue::Str(value) => v4::ParameterValue::Str(value),
        ParameterValue::Binary(value) => v4::ParameterValue::Binary(value),
        ParameterValue::DbNull => v4::ParameterValue::DbNull,
        ParameterValue::Uint8(_)
        | ParameterValue::Uint16(_)
        | ParameterValue::Uint32(_)
        | ParameterValue::Uint64(_) => {
            return Err(Error::BadParameter(
                "Postgres does not support unsigned integers".to_owned(),
            ));
        }
    })
}

fn value(value: v4::DbValue) -> DbValue {
    match value {
        v4::DbValue::Boolean(value) => DbValue::Boolean(value),
        v4::DbValue::Int8(value) => DbValue::Int8(value),
        v4::DbValue::Int16(value) => DbValue::Int16(value),
        v4::DbValue::Int32(value) => DbValue::Int32(value),
        v4::DbValue::Int64(value) => DbValue::Int64(value),
        v4::DbValue::Floating32(value) => DbValue::Floating32(value),
        v4::DbValue::Floating64(value) => DbValue::Floating64(value),
        v4::DbValue::Str(value) => DbValue::Str(value),
        v4::DbValue::Binary(value) => DbValue::Binary(value),
        v4::DbValue::DbNull => DbValue::DbNull,
        _ => DbValue::Unsupported,
    }
}

fn data_type(data_type: v4::DbDataType) -> DbDataType {
    match data_type {
        v4::DbDataType::Boolean => DbDataType::Boolean,
        v4::DbDataType::Int8 => DbDataType::Int8,
        v4::DbDataType::Int16 => DbDataType::Int16,
        v4::DbDataType::Int32 => DbDataType::Int32,
        v4::DbDataType::Int64 => DbDataType::Int64,
        v4::DbDataType::Floating32 => DbDataType::Floating32,
        v4::DbDataType::Floating64 => DbDataType::Floating64,
        v4::DbDataType::Str => DbDataType::Str,
        v4::DbDataType::Binary => DbDataType::Binary,
        _ => DbDataType::Other,
    }
}

fn row_set(rows: v4::RowSet) -> RowSet {
    RowSet {
        columns: rows
            .columns
            .into_iter()
            .map(|column| Column {
                name: column.name,
                data_type: data_type(column.data_type),
            })
            .collect(),
        rows: rows
            .rows
            .into_iter()
            .map(|row| row.into_iter().map(value).collect())
            .collect(),
    }
}

fn params(params: Vec<ParameterValue>) -> Result<Vec<v4::ParameterValue>, Error> {
    params.into_iter().map(parameter).collect()
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
        let parameters = match params(parameters) {
            Ok(parameters) => parameters,
            Err(error) => return Ok(Err(error)),
        };
        Ok(connection
            .query(statement, parameters)
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
        let parameters = match params(parameters) {
            Ok(parameters) => parameters,
            Err(error) => return Ok(Err(error)),
        };
        Ok(connection
            .execute(statement, parameters)
            .await
            .map_err(Error::from))
    }

    async fn drop(&mut self, connection: Resource<PgConnection>) -> wasmtime::Result<()> {
        self.close(connection)
    }
}
