//! `spin:postgres/postgres@4.2.0`: the 4.0.0 functions, the 4.1.0 connection builder, and the
//! 4.2.0 `async func` twins called concurrently by WASIp3 guests. Its types are the ones the
//! other versions convert to and from.

use wasmtime::component::{Accessor, FutureReader, Linker, Resource, StreamReader};

use super::{OutboundPg, OutboundPgView, PgConnection, PgConnectionBuilder, RowStream};
use crate::host::rdbms::ChannelProducer;
use crate::state::HostState;

wasmtime::component::bindgen!({
    path: "wit",
    world: "nexus:host/outbound-pg-v4",
    imports: { default: async | trappable },
    with: {
        "spin:postgres/postgres.connection": super::PgConnection,
        "spin:postgres/postgres.connection-builder": super::PgConnectionBuilder,
    },
});

pub use spin::postgres4_2_0::postgres::{
    Column, DbDataType, DbError, DbValue, Error, Interval, ParameterValue, QueryError,
    RangeBoundKind, Row, RowSet,
};
use spin::postgres4_2_0::postgres::{
    Host, HostConnection, HostConnectionBuilder, HostConnectionBuilderWithStore,
    HostConnectionWithStore,
};

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    spin::postgres4_2_0::postgres::add_to_linker::<HostState, OutboundPg>(
        linker,
        HostState::outbound_pg,
    )
}

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

impl Host for OutboundPgView<'_> {}

impl OutboundPgView<'_> {
    /// `open`, for every version: the checks, then the connection, then the handle.
    pub(super) async fn open(&mut self, address: &str) -> Result<Resource<PgConnection>, Error> {
        let pending = self.begin_open(address)?;
        let opened = pending.connect().await;
        self.finish_open(opened)
    }
}

impl HostConnection for OutboundPgView<'_> {
    async fn open(&mut self, address: String) -> Outcome<Resource<PgConnection>> {
        Ok(OutboundPgView::open(self, &address).await)
    }

    async fn query(
        &mut self,
        connection: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Outcome<RowSet> {
        Ok(self.connection(&connection)?.query(statement, params).await)
    }

    async fn execute(
        &mut self,
        connection: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Outcome<u64> {
        Ok(self
            .connection(&connection)?
            .execute(statement, params)
            .await)
    }

    async fn drop(&mut self, connection: Resource<PgConnection>) -> wasmtime::Result<()> {
        self.close(connection)
    }
}

impl HostConnectionBuilder for OutboundPgView<'_> {
    async fn new(&mut self, address: String) -> wasmtime::Result<Resource<PgConnectionBuilder>> {
        Ok(self.table.push(PgConnectionBuilder { address })?)
    }

    async fn set_ca_root(
        &mut self,
        _builder: Resource<PgConnectionBuilder>,
        _certificate: String,
    ) -> Outcome<()> {
        Ok(Err(Error::Other(
            "TLS connections to Postgres are not supported by this host".to_owned(),
        )))
    }

    async fn build(
        &mut self,
        builder: Resource<PgConnectionBuilder>,
    ) -> Outcome<Resource<PgConnection>> {
        let address = self.table.get(&builder)?.address.clone();
        Ok(OutboundPgView::open(self, &address).await)
    }

    async fn drop(&mut self, builder: Resource<PgConnectionBuilder>) -> wasmtime::Result<()> {
        self.table.delete(builder)?;
        Ok(())
    }
}

fn connection<T>(
    accessor: &Accessor<T, OutboundPg>,
    handle: &Resource<PgConnection>,
) -> wasmtime::Result<PgConnection> {
    accessor.with(|mut access| access.get().connection(handle))
}

/// Opens outside the store: only the checks and the handle borrow it.
async fn open_async<T>(
    accessor: &Accessor<T, OutboundPg>,
    address: &str,
) -> Outcome<Resource<PgConnection>> {
    let pending = match accessor.with(|mut access| access.get().begin_open(address)) {
        Ok(pending) => pending,
        Err(error) => return Ok(Err(error)),
    };
    let opened = pending.connect().await;
    Ok(accessor.with(|mut access| access.get().finish_open(opened)))
}

/// The columns, row stream and outcome future `query-async` answers.
type AsyncRowSet = (
    Vec<Column>,
    StreamReader<Row>,
    FutureReader<Result<(), Error>>,
);

impl<T> HostConnectionWithStore<T> for OutboundPg {
    async fn open_async(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> Outcome<Resource<PgConnection>> {
        open_async(accessor, &address).await
    }

    async fn query_async(
        accessor: &Accessor<T, Self>,
        connection: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Outcome<AsyncRowSet> {
        let connection = self::connection(accessor, &connection)?;
        let RowStream {
            columns,
            rows,
            outcome,
        } = match connection.query_stream(statement, params).await {
            Ok(stream) => stream,
            Err(error) => return Ok(Err(error)),
        };
        accessor.with(|mut access| {
            let rows = StreamReader::new(&mut access, ChannelProducer::new(rows, |row| row))?;
            let outcome = FutureReader::new(&mut access, async move {
                let outcome = outcome.await.unwrap_or_else(|_| {
                    Err(Error::Other(
                        "the statement ended without an outcome".to_owned(),
                    ))
                });
                Ok::<_, wasmtime::Error>(outcome)
            })?;
            Ok(Ok((columns, rows, outcome)))
        })
    }

    async fn execute_async(
        accessor: &Accessor<T, Self>,
        connection: Resource<PgConnection>,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Outcome<u64> {
        let connection = self::connection(accessor, &connection)?;
        Ok(connection.execute(statement, params).await)
    }
}

impl<T> HostConnectionBuilderWithStore<T> for OutboundPg {
    async fn build_async(
        accessor: &Accessor<T, Self>,
        builder: Resource<PgConnectionBuilder>,
    ) -> Outcome<Resource<PgConnection>> {
        let address = accessor.with(|mut access| {
            Ok::<_, wasmtime::Error>(access.get().table.get(&builder)?.address.clone())
        })?;
        open_async(accessor, &address).await
    }
}
