//! Spin outbound MySQL: `fermyon:spin/mysql@2.0.0` (spin-sdk 2–5, `spin_sdk::mysql`) and
//! `spin:mysql/mysql@3.0.0` (spin-sdk 7, `async func`s), mirroring Spin's
//! `crates/factor-outbound-mysql`, over sqlx.
//!
//! # Behaviour, as in Spin
//!
//! - `open` takes a `mysql://user:password@host:port/database` URL and checks
//!   `mysql://host:port` (default port 3306) against `allowed_outbound_hosts` before anything
//!   touches the network; a denied address is `connection-failed("address mysql://host:port
//!   is not permitted")` (without the credentials Spin's message repeats). The connection
//!   goes to the host and port checked. Query parameters that name files or sockets on the
//!   host (`socket`, `ssl-ca`, `ssl-cert`, `ssl-key`) are refused.
//! - Connections come from a pool per address; statements run as prepared statements (the
//!   binary protocol, as `mysql_async`'s `exec` does). Columns map to types by MySQL's column
//!   type and flags as Spin maps them: `TINYINT` (and `BOOL`) is `int8`, `MEDIUMTEXT` and
//!   `LONGTEXT` are `binary`, and a non-NULL value in a column of any type Spin does not map
//!   (`DECIMAL`, `DATE`, `JSON`…) fails the query with `value-conversion-failed`. A result set
//!   is capped at [`MAX_RESULT_BYTES`]; every call ends by the invocation's deadline.
//!
//! Not here: TLS. sqlx is built without a TLS feature, so `ssl-mode=REQUIRED` fails to connect
//! where Spin would use TLS.

use std::str::FromStr as _;
use std::sync::Arc;

use futures::TryStreamExt as _;
use sqlx::mysql::{
    MySqlArguments, MySqlConnectOptions, MySqlPool, MySqlPoolOptions, MySqlRow, MySqlStatement,
};
use sqlx::pool::PoolConnection;
use sqlx::{
    Arguments as _, AssertSqlSafe, Column as _, Executor as _, MySql, Row as _, SqlSafeStr as _,
    Statement as _, TypeInfo as _,
};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::time::Instant;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::allowed_hosts::AllowedHosts;
use super::outbound_address::OutboundAddress;
use super::rdbms::v2::{Column, DbDataType, DbValue, Error, ParameterValue, RowSet};
use super::rdbms::{MAX_CONNECTIONS, MAX_RESULT_BYTES, POOL_SIZE, PoolCache};
use crate::state::HostState;

mod v2;
mod v3;

/// Pools of connections by address, shared by every instance of a runtime.
pub type MysqlPools = PoolCache<MySqlPool>;

/// Query parameters a guest may put in its address. The others sqlx reads name files or
/// sockets on the host.
const ALLOWED_PARAMETERS: &[&str] = &[
    "sslmode",
    "ssl-mode",
    "charset",
    "collation",
    "timezone",
    "time-zone",
];

/// The per-instance state of this capability.
#[derive(Default)]
pub struct OutboundMysqlState {
    open_connections: usize,
}

/// An open connection: the resource behind both versions' `connection` handles.
#[derive(Clone)]
pub struct MysqlConnection {
    connection: Arc<Mutex<PoolConnection<MySql>>>,
    deadline: Instant,
}

/// What the host functions see of the store data.
pub struct OutboundMysqlView<'a> {
    allowed: &'a Arc<AllowedHosts>,
    pools: &'a Arc<MysqlPools>,
    deadline: Instant,
    state: &'a mut OutboundMysqlState,
    table: &'a mut ResourceTable,
}

/// An address that passed the checks, ready to be connected to outside the store.
struct PendingOpen {
    address: String,
    options: MySqlConnectOptions,
    pools: Arc<MysqlPools>,
    deadline: Instant,
}

impl OutboundMysqlView<'_> {
    /// Checks `address` against the allow-list, then reserves a connection slot.
    fn begin_open(&mut self, address: &str) -> Result<PendingOpen, Error> {
        let options = checked_options(address, self.allowed)?;
        if self.state.open_connections >= MAX_CONNECTIONS {
            return Err(Error::ConnectionFailed("too many connections".to_owned()));
        }
        self.state.open_connections += 1;
        Ok(PendingOpen {
            address: address.to_owned(),
            options,
            pools: Arc::clone(self.pools),
            deadline: self.deadline,
        })
    }

    /// Stores a connection `begin_open` reserved a slot for, or gives the slot back.
    fn finish_open(
        &mut self,
        opened: Result<MysqlConnection, Error>,
    ) -> Result<Resource<MysqlConnection>, Error> {
        let pushed = opened.and_then(|connection| {
            self.table
                .push(connection)
                .map_err(|_| Error::ConnectionFailed("too many connections".to_owned()))
        });
        if pushed.is_err() {
            self.state.open_connections = self.state.open_connections.saturating_sub(1);
        }
        pushed
    }

    /// `open`, for both versions: the checks, then the connection, then the handle.
    async fn open(&mut self, address: &str) -> Result<Resource<MysqlConnection>, Error> {
        let pending = self.begin_open(address)?;
        let opened = pending.connect().await;
        self.finish_open(opened)
    }

    fn connection(&self, handle: &Resource<MysqlConnection>) -> wasmtime::Result<MysqlConnection> {
        Ok(self.table.get(handle)?.clone())
    }

    fn close(&mut self, handle: Resource<MysqlConnection>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        self.state.open_connections = self.state.open_connections.saturating_sub(1);
        Ok(())
    }
}

/// The connection options `address` names, if it is allowed and names nothing on the host.
fn checked_options(address: &str, allowed: &AllowedHosts) -> Result<MySqlConnectOptions, Error> {
    let url = url::Url::parse(address)
        .map_err(|error| Error::ConnectionFailed(format!("invalid MySQL address: {error}")))?;
    if let Some((name, _)) = url
        .query_pairs()
        .find(|(name, _)| !ALLOWED_PARAMETERS.contains(&name.to_ascii_lowercase().as_str()))
    {
        return Err(Error::ConnectionFailed(format!(
            "connection parameter `{name}` is not supported"
        )));
    }
    let denied =
        |shown: &str| Error::ConnectionFailed(format!("address mysql://{shown} is not permitted"));
    let checked = OutboundAddress::parse(address, "mysql")
        .filter(|checked| checked.scheme() == "mysql")
        .ok_or_else(|| denied(url.host_str().unwrap_or_default()))?;
    let shown = checked.authority();
    if !checked.is_allowed_by(allowed) {
        return Err(denied(&shown));
    }
    let options = MySqlConnectOptions::from_str(address)
        .map_err(|error| Error::ConnectionFailed(error.to_string()))?
        // What `mysql_async` leaves alone and sqlx changes by default: keep MySQL's own
        // meaning of `||` and its engine substitution.
        .pipes_as_concat(false)
        .no_engine_substitution(false);
    if options.get_socket().is_some() || !checked.is_target(options.get_host(), options.get_port())
    {
        return Err(denied(&shown));
    }
    Ok(options)
}

impl PendingOpen {
    /// Takes a connection to the checked address from its pool, by the deadline.
    async fn connect(self) -> Result<MysqlConnection, Error> {
        let options = self.options;
        let pool = self.pools.get_or_make::<Error>(&self.address, || {
            Ok(MySqlPoolOptions::new()
                .max_connections(POOL_SIZE as u32)
                .connect_lazy_with(options))
        })?;
        let connection = match tokio::time::timeout_at(self.deadline, pool.acquire()).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => return Err(Error::ConnectionFailed(error.to_string())),
            Err(_) => return Err(Error::ConnectionFailed(deadline_message())),
        };
        Ok(MysqlConnection {
            connection: Arc::new(Mutex::new(connection)),
            deadline: self.deadline,
        })
    }
}

/// Rows for 3.0.0's `query`, then how the statement ended.
struct RowStream {
    columns: Vec<Column>,
    rows: mpsc::Receiver<Vec<DbValue>>,
    outcome: oneshot::Receiver<Result<(), Error>>,
}

/// The operations both versions share, on the 2.0.0 types.
impl MysqlConnection {
    async fn execute(&self, statement: String, params: Vec<ParameterValue>) -> Result<(), Error> {
        let run = async {
            let arguments = arguments(params)?;
            let mut connection = self.connection.lock().await;
            sqlx::query_with(AssertSqlSafe(statement), arguments)
                .execute(&mut **connection)
                .await
                .map(|_| ())
                .map_err(query_failed)
        };
        bounded(self.deadline, run).await
    }

    async fn query(&self, statement: String, params: Vec<ParameterValue>) -> Result<RowSet, Error> {
        let run = async {
            let arguments = arguments(params)?;
            let mut connection = self.connection.lock().await;
            let prepared = prepare(&mut connection, statement).await?;
            let columns = columns(prepared.columns());
            let mut stream = prepared.query_with(arguments).fetch(&mut **connection);
            let mut rows = Vec::new();
            let mut size = size_of::<RowSet>();
            while let Some(row) = stream.try_next().await.map_err(other)? {
                let row = convert_row(&row, &columns)?;
                size += row.iter().map(memory_size).sum::<usize>();
                if size > MAX_RESULT_BYTES {
                    return Err(result_too_large());
                }
                rows.push(row);
            }
            Ok(RowSet { columns, rows })
        };
        bounded(self.deadline, run).await
    }

    /// Prepares `statement` and answers its columns at once; the rows then stream as the
    /// server sends them, and the outcome carries any later error.
    async fn query_stream(
        &self,
        statement: String,
        params: Vec<ParameterValue>,
    ) -> Result<RowStream, Error> {
        let arguments = arguments(params)?;
        let mut connection = Arc::clone(&self.connection).lock_owned().await;
        let prepared = bounded(self.deadline, prepare(&mut connection, statement)).await?;
        let columns = columns(prepared.columns());
        let (rows_sender, rows) = mpsc::channel(16);
        let (outcome_sender, outcome) = oneshot::channel();
        let deadline = self.deadline;
        let stream_columns = columns.clone();
        tokio::spawn(async move {
            let produce = async {
                let mut stream = prepared.query_with(arguments).fetch(&mut **connection);
                let mut size = 0;
                while let Some(row) = stream.try_next().await.map_err(other)? {
                    let row = convert_row(&row, &stream_columns)?;
                    size += row.iter().map(memory_size).sum::<usize>();
                    if size > MAX_RESULT_BYTES {
                        return Err(result_too_large());
                    }
                    if rows_sender.send(row).await.is_err() {
                        break;
                    }
                }
                Ok(())
            };
            let _ = outcome_sender.send(bounded(deadline, produce).await);
        });
        Ok(RowStream {
            columns,
            rows,
            outcome,
        })
    }
}

fn arguments(params: Vec<ParameterValue>) -> Result<MySqlArguments, Error> {
    let mut arguments = MySqlArguments::default();
    for param in params {
        let added = match param {
            ParameterValue::Boolean(value) => arguments.add(value),
            ParameterValue::Int8(value) => arguments.add(value),
            ParameterValue::Int16(value) => arguments.add(value),
            ParameterValue::Int32(value) => arguments.add(value),
            ParameterValue::Int64(value) => arguments.add(value),
            ParameterValue::Uint8(value) => arguments.add(value),
            ParameterValue::Uint16(value) => arguments.add(value),
            ParameterValue::Uint32(value) => arguments.add(value),
            ParameterValue::Uint64(value) => arguments.add(value),
            ParameterValue::Floating32(value) => arguments.add(value),
            ParameterValue::Floating64(value) => arguments.add(value),
            ParameterValue::Str(value) => arguments.add(value),
            ParameterValue::Binary(value) => arguments.add(value),
            ParameterValue::DbNull => arguments.add(None::<String>),
        };
        added.map_err(|error| Error::BadParameter(error.to_string()))?;
    }
    Ok(arguments)
}

async fn prepare(
    connection: &mut PoolConnection<MySql>,
    statement: String,
) -> Result<MySqlStatement, Error> {
    connection
        .prepare(AssertSqlSafe(statement).into_sql_str())
        .await
        .map_err(query_failed)
}

fn columns(columns: &[sqlx::mysql::MySqlColumn]) -> Vec<Column> {
    columns
        .iter()
        .map(|column| Column {
            name: column.name().to_owned(),
            data_type: data_type(column.type_info().name()),
        })
        .collect()
}

/// Spin's mapping, by the name sqlx gives the column type (its type and flags).
fn data_type(name: &str) -> DbDataType {
    match name {
        "BOOLEAN" | "TINYINT" => DbDataType::Int8,
        "TINYINT UNSIGNED" => DbDataType::Uint8,
        "SMALLINT" => DbDataType::Int16,
        "SMALLINT UNSIGNED" => DbDataType::Uint16,
        "INT" | "MEDIUMINT" => DbDataType::Int32,
        "INT UNSIGNED" | "MEDIUMINT UNSIGNED" => DbDataType::Uint32,
        "BIGINT" => DbDataType::Int64,
        "BIGINT UNSIGNED" => DbDataType::Uint64,
        "FLOAT" => DbDataType::Floating32,
        "DOUBLE" => DbDataType::Floating64,
        "CHAR" | "VARCHAR" | "TEXT" => DbDataType::Str,
        "BINARY" | "VARBINARY" | "BLOB" | "MEDIUMBLOB" | "MEDIUMTEXT" | "LONGBLOB" | "LONGTEXT" => {
            DbDataType::Binary
        }
        _ => DbDataType::Other,
    }
}

fn convert_row(row: &MySqlRow, columns: &[Column]) -> Result<Vec<DbValue>, Error> {
    columns
        .iter()
        .enumerate()
        .map(|(index, column)| convert_value(row, index, column))
        .collect()
}

fn convert_value(row: &MySqlRow, index: usize, column: &Column) -> Result<DbValue, Error> {
    fn get<'r, T: sqlx::Decode<'r, MySql>>(
        row: &'r MySqlRow,
        index: usize,
        variant: impl FnOnce(T) -> DbValue,
    ) -> Result<DbValue, sqlx::Error> {
        // The column's type was read above; decode without sqlx's own compatibility check,
        // which refuses some pairs MySQL sends (an `INT` result of `SUM` as `BIGINT`…).
        Ok(row
            .try_get_unchecked::<Option<T>, _>(index)?
            .map_or(DbValue::DbNull, variant))
    }
    let converted = match column.data_type {
        DbDataType::Boolean => get(row, index, DbValue::Boolean),
        DbDataType::Int8 => get(row, index, DbValue::Int8),
        DbDataType::Int16 => get(row, index, DbValue::Int16),
        DbDataType::Int32 => get(row, index, DbValue::Int32),
        DbDataType::Int64 => get(row, index, DbValue::Int64),
        DbDataType::Uint8 => get(row, index, DbValue::Uint8),
        DbDataType::Uint16 => get(row, index, DbValue::Uint16),
        DbDataType::Uint32 => get(row, index, DbValue::Uint32),
        DbDataType::Uint64 => get(row, index, DbValue::Uint64),
        DbDataType::Floating32 => get(row, index, DbValue::Floating32),
        DbDataType::Floating64 => get(row, index, DbValue::Floating64),
        DbDataType::Str => get(row, index, DbValue::Str),
        DbDataType::Binary => get(row, index, DbValue::Binary),
        DbDataType::Other => {
            let is_null = sqlx::ValueRef::is_null(&row.try_get_raw(index).map_err(other)?);
            if is_null {
                return Ok(DbValue::DbNull);
            }
            let type_name = row.columns()[index].type_info().name().to_owned();
            return Err(Error::ValueConversionFailed(format!(
                "Cannot convert value in column {} data type {type_name}",
                column.name
            )));
        }
    };
    converted.map_err(|error| Error::ValueConversionFailed(error.to_string()))
}

/// What holding `value` costs, counted as Spin counts a result set against its cap.
fn memory_size(value: &DbValue) -> usize {
    size_of::<DbValue>()
        + match value {
            DbValue::Str(text) => text.len(),
            DbValue::Binary(bytes) => bytes.len(),
            _ => 0,
        }
}

fn query_failed(error: sqlx::Error) -> Error {
    Error::QueryFailed(error.to_string())
}

fn other(error: sqlx::Error) -> Error {
    Error::Other(error.to_string())
}

fn result_too_large() -> Error {
    Error::Other(format!(
        "query result exceeds limit of {MAX_RESULT_BYTES} bytes"
    ))
}

fn deadline_message() -> String {
    "the MySQL call did not finish before the invocation's deadline".to_owned()
}

async fn bounded<T>(
    deadline: Instant,
    call: impl Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout_at(deadline, call)
        .await
        .unwrap_or_else(|_| Err(Error::Other(deadline_message())))
}

/// Adds both versions of the interface to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v2::add_to_linker(linker)?;
    v3::add_to_linker(linker)?;
    Ok(())
}

/// [`HasData`] marker for this capability.
pub struct OutboundMysql;

impl HasData for OutboundMysql {
    type Data<'a> = OutboundMysqlView<'a>;
}

impl HostState {
    fn outbound_mysql(&mut self) -> OutboundMysqlView<'_> {
        let deadline = self
            .deadline()
            .unwrap_or_else(|| Instant::now() + crate::config::DEFAULT_DEADLINE);
        OutboundMysqlView {
            allowed: &self.env.allowed_hosts,
            pools: &self.env.mysql_pools,
            deadline,
            state: &mut self.outbound_mysql,
            table: &mut self.table,
        }
    }
}
