//! `fermyon:spin/mysql@2.0.0` (spin-sdk 2–5, `spin_sdk::mysql`): synchronous to the guest.

use wasmtime::component::{Linker, Resource};

use super::{MysqlConnection, OutboundMysql, OutboundMysqlView};
use crate::host::rdbms::v2::mysql::{Host, HostConnection};
use crate::host::rdbms::v2::{Error, ParameterValue, RowSet};
use crate::state::HostState;

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    crate::host::rdbms::v2::mysql::add_to_linker::<HostState, OutboundMysql>(
        linker,
        HostState::outbound_mysql,
    )
}

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

impl Host for OutboundMysqlView<'_> {}

impl HostConnection for OutboundMysqlView<'_> {
    async fn open(&mut self, address: String) -> Outcome<Resource<MysqlConnection>> {
        Ok(OutboundMysqlView::open(self, &address).await)
    }

    async fn query(
        &mut self,
        connection: Resource<MysqlConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Outcome<RowSet> {
        Ok(self.connection(&connection)?.query(statement, params).await)
    }

    async fn execute(
        &mut self,
        connection: Resource<MysqlConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Outcome<()> {
        Ok(self
            .connection(&connection)?
            .execute(statement, params)
            .await)
    }

    async fn drop(&mut self, connection: Resource<MysqlConnection>) -> wasmtime::Result<()> {
        self.close(connection)
    }
}
