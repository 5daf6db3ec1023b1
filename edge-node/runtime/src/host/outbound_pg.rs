//! Spin outbound Postgres: `fermyon:spin/postgres@2.0.0` (spin-sdk 2–5, `spin_sdk::pg`),
//! `spin:postgres/postgres@3.0.0` (`pg3`) and `spin:postgres/postgres@4.2.0` (spin-sdk 7; it
//! also serves spin-sdk 5's `pg4`, which imports 4.0.0), mirroring Spin's
//! `crates/factor-outbound-pg` on the same driver, tokio-postgres.
//!
//! # Behaviour, as in Spin
//!
//! - `open` reads the address as libpq does (a `postgres://` URL or `key=value` pairs), then
//!   checks every host against `allowed_outbound_hosts` as `postgres://host[:port]` before
//!   anything touches the network; a denied one is `connection-failed("address
//!   postgres://host:port is not permitted")`. A Unix-socket host is refused. Unlike Spin, a
//!   `hostaddr` (which would send the connection somewhere other than the host checked) must be
//!   allowed too.
//! - Connections come from a pool per address (credentials included), reset with
//!   `DISCARD`-style cleaning before reuse, so a guest never sees another's session state.
//!   Nothing of the host's environment (`PG*` variables, `~/.pgpass`) reaches a guest's
//!   connection options.
//! - Statements are prepared, so the server types the parameters and a value of the wrong
//!   type is refused as tokio-postgres refuses it. Values convert as Spin converts them (see
//!   [`types`]); a result set is capped at [`MAX_RESULT_BYTES`].
//! - A database error is `query-failed` with the server's structured fields (4.x) or its text
//!   (2.x, 3.x); every call ends by the invocation's deadline, and a statement still running at
//!   the deadline is cancelled on the server.
//!
//! Not here: TLS. The driver is built without a TLS connector, so `sslmode=require` fails to
//! connect where Spin would use TLS (`sslmode=prefer`, the default, connects in plain text).
#![expect(
    clippy::result_large_err,
    reason = "the 4.x error carries the server's error fields, and the bindings return it by value"
)]

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures::{StreamExt as _, pin_mut};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_postgres::config::Host;
use tokio_postgres::types::ToSql;
use tokio_postgres::{NoTls, Statement};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::allowed_hosts::{AllowedHosts, Destination};
use super::rdbms::{MAX_CONNECTIONS, MAX_RESULT_BYTES, POOL_SIZE, PoolCache};
use crate::state::HostState;

/// `From<v4::Error>` for an older version's error, whose variants carry text only: a
/// structured database error becomes its text, as Spin converts it.
macro_rules! error_from_v4 {
    ($error:ty) => {
        impl From<super::v4::Error> for $error {
            fn from(error: super::v4::Error) -> Self {
                use super::v4::{Error as V4, QueryError};
                match error {
                    V4::ConnectionFailed(message) => Self::ConnectionFailed(message),
                    V4::BadParameter(message) => Self::BadParameter(message),
                    V4::QueryFailed(QueryError::Text(message)) => Self::QueryFailed(message),
                    V4::QueryFailed(QueryError::DbError(error)) => Self::QueryFailed(error.as_text),
                    V4::ValueConversionFailed(message) => Self::ValueConversionFailed(message),
                    V4::Other(message) => Self::Other(message),
                }
            }
        }
    };
}
use error_from_v4;

mod types;
mod v2;
mod v3;
mod v4;

use v4::{Column, DbValue, Error, ParameterValue, QueryError, RowSet};

/// Pools of connections by address, shared by every instance of a runtime.
pub type PgPools = PoolCache<Pool>;

/// The per-instance state of this capability.
#[derive(Default)]
pub struct OutboundPgState {
    open_connections: usize,
}

/// An open connection: the resource behind every version's `connection` handles.
#[derive(Clone)]
pub struct PgConnection {
    client: Arc<deadpool_postgres::Object>,
    deadline: Instant,
}

/// A 4.1 `connection-builder`: an address waiting for `build`.
pub struct PgConnectionBuilder {
    address: String,
}

/// What the host functions see of the store data.
pub struct OutboundPgView<'a> {
    allowed: &'a Arc<AllowedHosts>,
    pools: &'a Arc<PgPools>,
    deadline: Instant,
    state: &'a mut OutboundPgState,
    table: &'a mut ResourceTable,
}

/// An address that passed the checks, ready to be connected to outside the store.
struct PendingOpen {
    address: String,
    config: tokio_postgres::Config,
    pools: Arc<PgPools>,
    deadline: Instant,
}

impl OutboundPgView<'_> {
    /// Checks `address` against the allow-list, then reserves a connection slot.
    fn begin_open(&mut self, address: &str) -> Result<PendingOpen, Error> {
        let config = checked_config(address, self.allowed)?;
        if self.state.open_connections >= MAX_CONNECTIONS {
            return Err(too_many_connections());
        }
        self.state.open_connections += 1;
        Ok(PendingOpen {
            address: address.to_owned(),
            config,
            pools: Arc::clone(self.pools),
            deadline: self.deadline,
        })
    }

    /// Stores a connection `begin_open` reserved a slot for, or gives the slot back.
    fn finish_open(
        &mut self,
        opened: Result<PgConnection, Error>,
    ) -> Result<Resource<PgConnection>, Error> {
        let pushed = opened.and_then(|connection| {
            self.table
                .push(connection)
                .map_err(|_| too_many_connections())
        });
        if pushed.is_err() {
            self.state.open_connections = self.state.open_connections.saturating_sub(1);
        }
        pushed
    }

    fn connection(&self, handle: &Resource<PgConnection>) -> wasmtime::Result<PgConnection> {
        Ok(self.table.get(handle)?.clone())
    }

    fn close(&mut self, handle: Resource<PgConnection>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        self.state.open_connections = self.state.open_connections.saturating_sub(1);
        Ok(())
    }
}

impl PendingOpen {
    /// Takes a connection to the checked address from its pool, by the deadline.
    async fn connect(self) -> Result<PgConnection, Error> {
        let config = self.config;
        let pool = self.pools.get_or_make(&self.address, || {
            let manager = Manager::from_config(
                config,
                NoTls,
                ManagerConfig {
                    recycling_method: RecyclingMethod::Clean,
                },
            );
            Pool::builder(manager)
                .max_size(POOL_SIZE)
                .build()
                .map_err(|error| Error::ConnectionFailed(error.to_string()))
        })?;
        let client = match tokio::time::timeout_at(self.deadline, pool.get()).await {
            Ok(Ok(client)) => client,
            Ok(Err(error)) => return Err(Error::ConnectionFailed(error.to_string())),
            Err(_) => return Err(Error::ConnectionFailed(deadline_message())),
        };
        Ok(PgConnection {
            client: Arc::new(client),
            deadline: self.deadline,
        })
    }
}

/// The connection options `address` names, if every host it names is allowed.
fn checked_config(address: &str, allowed: &AllowedHosts) -> Result<tokio_postgres::Config, Error> {
    let config: tokio_postgres::Config = address
        .parse()
        .map_err(|error: tokio_postgres::Error| Error::ConnectionFailed(error.to_string()))?;
    let ports = config.get_ports();
    // libpq pairs hosts and ports by position, or uses one port for every host.
    let port_at = |index: usize| match ports {
        [only] => Some(*only),
        _ => ports.get(index).copied(),
    };
    let check = |host: &str, port: Option<u16>| {
        let shown = port.map_or_else(|| host.to_owned(), |port| format!("{host}:{port}"));
        let destination = Destination {
            scheme: "postgres",
            host: host.trim_start_matches('[').trim_end_matches(']'),
            port: port.unwrap_or(5432),
        };
        if allowed.allows(&destination) {
            Ok(())
        } else {
            tracing::info!(address = %shown, "postgres connection denied by allowed_outbound_hosts");
            Err(Error::ConnectionFailed(format!(
                "address postgres://{shown} is not permitted"
            )))
        }
    };
    for (index, host) in config.get_hosts().iter().enumerate() {
        match host {
            Host::Tcp(host) => check(&host.to_ascii_lowercase(), port_at(index))?,
            Host::Unix(_) => {
                return Err(Error::ConnectionFailed(
                    "Unix sockets are not supported on WebAssembly".to_owned(),
                ));
            }
        }
    }
    for (index, address) in config.get_hostaddrs().iter().enumerate() {
        check(&address.to_string(), port_at(index))?;
    }
    Ok(config)
}

/// Rows for `query-async`, then how the statement ended.
struct RowStream {
    columns: Vec<Column>,
    rows: mpsc::Receiver<Vec<DbValue>>,
    outcome: oneshot::Receiver<Result<(), Error>>,
}

/// The operations every version shares, on the 4.x types.
impl PgConnection {
    async fn execute(&self, statement: String, params: Vec<ParameterValue>) -> Result<u64, Error> {
        let params = types::to_sql_parameters(&params).map_err(Error::ValueConversionFailed)?;
        let client = &**self.client;
        let call = async {
            let prepared = client.prepare(&statement).await.map_err(query_failed)?;
            client
                .execute_raw(&prepared, params_refs(&params))
                .await
                .map_err(query_failed)
        };
        self.bounded(call).await
    }

    async fn query(&self, statement: String, params: Vec<ParameterValue>) -> Result<RowSet, Error> {
        let params = types::to_sql_parameters(&params).map_err(Error::BadParameter)?;
        let client = &**self.client;
        let collect = async {
            let prepared = client.prepare(&statement).await.map_err(query_failed)?;
            let rows = client
                .query_raw(&prepared, params_refs(&params))
                .await
                .map_err(query_failed)?;
            pin_mut!(rows);
            let mut size = size_of::<RowSet>();
            let mut collected = Vec::new();
            while let Some(row) = rows.next().await {
                let row = types::convert_row(&row.map_err(query_failed)?)?;
                size += row.iter().map(types::memory_size).sum::<usize>();
                if size > MAX_RESULT_BYTES {
                    return Err(result_too_large());
                }
                collected.push(row);
            }
            Ok(RowSet {
                columns: columns(&prepared),
                rows: collected,
            })
        };
        self.bounded(collect).await
    }

    /// Prepares `statement` and answers its columns at once; the rows then stream as the
    /// server sends them, and the outcome carries any later error.
    async fn query_stream(
        &self,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Result<RowStream, Error> {
        let params = types::to_sql_parameters(&params).map_err(Error::BadParameter)?;
        let prepare = async { self.client.prepare(&statement).await.map_err(query_failed) };
        let prepared = self.bounded(prepare).await?;
        let columns = columns(&prepared);
        let (rows_sender, rows) = mpsc::channel(16);
        let (outcome_sender, outcome) = oneshot::channel();
        let connection = self.clone();
        tokio::spawn(async move {
            let produce = connection.produce_rows(&prepared, &params, &rows_sender);
            let _ = outcome_sender.send(connection.bounded(produce).await);
        });
        Ok(RowStream {
            columns,
            rows,
            outcome,
        })
    }

    async fn produce_rows(
        &self,
        prepared: &Statement,
        params: &[Box<dyn ToSql + Send + Sync>],
        sender: &mpsc::Sender<Vec<DbValue>>,
    ) -> Result<(), Error> {
        let rows = self
            .client
            .query_raw(prepared, params_refs(params))
            .await
            .map_err(query_failed)?;
        pin_mut!(rows);
        let mut size = 0;
        while let Some(row) = rows.next().await {
            let row = types::convert_row(&row.map_err(query_failed)?)?;
            size += row.iter().map(types::memory_size).sum::<usize>();
            if size > MAX_RESULT_BYTES {
                return Err(result_too_large());
            }
            if sender.send(row).await.is_err() {
                return Err(Error::Other("the guest closed the row stream".to_owned()));
            }
        }
        Ok(())
    }

    /// Runs `call` by the deadline. A statement still running at the deadline, or when the
    /// guest stops waiting (its instance is dropped), is cancelled on the server.
    async fn bounded<T>(&self, call: impl Future<Output = Result<T, Error>>) -> Result<T, Error> {
        let mut guard = CancelOnDrop(Some(self.client.cancel_token()));
        let result = tokio::time::timeout_at(self.deadline, call)
            .await
            .unwrap_or_else(|_| Err(Error::Other(deadline_message())));
        if result.is_ok() {
            guard.0 = None;
        }
        result
    }
}

/// Cancels the connection's running statement when dropped armed, so that a connection whose
/// caller gave up goes back to its pool idle.
struct CancelOnDrop(Option<tokio_postgres::CancelToken>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(token) = self.0.take() else {
            return;
        };
        // Without a runtime (the process is ending) there is nothing to cancel for.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = token.cancel_query(NoTls).await {
                    tracing::debug!(%error, "could not cancel a postgres statement");
                }
            });
        }
    }
}

fn params_refs(
    params: &[Box<dyn ToSql + Send + Sync>],
) -> impl ExactSizeIterator<Item = &(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|param| param.as_ref() as &(dyn ToSql + Sync))
}

fn columns(statement: &Statement) -> Vec<Column> {
    statement
        .columns()
        .iter()
        .map(|column| Column {
            name: column.name().to_owned(),
            data_type: types::data_type(column.type_()),
        })
        .collect()
}

/// A driver error as Spin reports it: the server's fields when the server sent an error.
fn query_failed(error: tokio_postgres::Error) -> Error {
    let as_text = format!("{error:?}");
    Error::QueryFailed(match error.as_db_error() {
        None => QueryError::Text(as_text),
        Some(db_error) => QueryError::DbError(v4::DbError {
            as_text,
            severity: db_error.severity().to_owned(),
            code: db_error.code().code().to_owned(),
            message: db_error.message().to_owned(),
            detail: db_error.detail().map(str::to_owned),
            extras: db_error_extras(db_error),
        }),
    })
}

fn db_error_extras(error: &tokio_postgres::error::DbError) -> Vec<(String, String)> {
    let fields = [
        ("column", error.column().map(str::to_owned)),
        ("constraint", error.constraint().map(str::to_owned)),
        ("routine", error.routine().map(str::to_owned)),
        ("hint", error.hint().map(str::to_owned)),
        ("table", error.table().map(str::to_owned)),
        ("datatype", error.datatype().map(str::to_owned)),
        ("schema", error.schema().map(str::to_owned)),
        ("file", error.file().map(str::to_owned)),
        ("line", error.line().map(|line| line.to_string())),
        ("where_", error.where_().map(str::to_owned)),
    ];
    fields
        .into_iter()
        .filter_map(|(name, value)| Some((name.to_owned(), value?)))
        .collect()
}

fn too_many_connections() -> Error {
    Error::ConnectionFailed("too many connections".to_owned())
}

fn result_too_large() -> Error {
    Error::Other(format!(
        "query result exceeds limit of {MAX_RESULT_BYTES} bytes"
    ))
}

fn deadline_message() -> String {
    "the Postgres call did not finish before the invocation's deadline".to_owned()
}

/// Adds every version of the interface to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v2::add_to_linker(linker)?;
    v3::add_to_linker(linker)?;
    v4::add_to_linker(linker)?;
    Ok(())
}

/// [`HasData`] marker for this capability.
pub struct OutboundPg;

impl HasData for OutboundPg {
    type Data<'a> = OutboundPgView<'a>;
}

impl HostState {
    fn outbound_pg(&mut self) -> OutboundPgView<'_> {
        let deadline = self
            .deadline()
            .unwrap_or_else(|| Instant::now() + crate::config::DEFAULT_DEADLINE);
        OutboundPgView {
            allowed: &self.env.allowed_hosts,
            pools: &self.env.pg_pools,
            deadline,
            state: &mut self.outbound_pg,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests;
