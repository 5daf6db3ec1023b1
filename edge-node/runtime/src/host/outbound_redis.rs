//! Spin outbound Redis: `fermyon:spin/redis@2.0.0` (spin-sdk 2–5) and `spin:redis/redis@3.0.0`
//! (spin-sdk 6–7), mirroring Spin's `crates/factor-outbound-redis`.
//!
//! `open` checks the address against `allowed_outbound_hosts` before anything touches the
//! network (scheme `redis`, default port 6379); a denied or unparsable address is
//! `error::invalid-address`, as in Spin. Each `open` makes one multiplexed connection, and the
//! connection goes to the host and port that were checked. Commands and results convert as in
//! Spin; every call ends by the invocation's deadline, and a result larger than Spin's buffer
//! limit (or the guest's memory limit, when smaller) is `error::other`.
//!
//! Not here: TLS (`rediss://`): the `redis` crate is built without a TLS feature, so such an
//! address is `invalid-address` where Spin would connect with native TLS.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncCommands as _, AsyncConnectionConfig, ConnectionAddr, ErrorKind, Value};
use tokio::time::Instant;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use super::allowed_hosts::AllowedHosts;
use super::outbound_address::OutboundAddress;
use crate::state::HostState;

mod v2;
mod v3;

/// Connections one instance may hold open at once; beyond this `open` answers
/// `too-many-connections`. (Spin's table has 1024 slots; operators cap it further in the
/// runtime config. A request-scoped instance needs far fewer.)
const MAX_CONNECTIONS: usize = 32;

/// How long a call may take when the instance serves no invocation (never expected: every
/// instance is bound to one before the guest runs).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The per-instance state of this capability.
#[derive(Default)]
pub struct OutboundRedisState {
    open_connections: usize,
}

/// An open connection: the resource behind both versions' `connection` handles.
#[derive(Clone)]
pub struct RedisConnection {
    connection: MultiplexedConnection,
    deadline: Instant,
    result_limit: usize,
}

/// Why an operation failed, before it is mapped to either version's error variant.
#[derive(Debug, PartialEq, Eq)]
enum Failure {
    InvalidAddress,
    TooManyConnections,
    TypeError,
    Other(String),
}

impl From<redis::RedisError> for Failure {
    fn from(error: redis::RedisError) -> Self {
        Self::Other(error.to_string())
    }
}

/// A parameter of `execute`, either version's `redis-parameter`.
enum Argument {
    Int64(i64),
    Binary(Vec<u8>),
}

/// One value of `execute`'s result, either version's `redis-result`.
#[derive(Debug, PartialEq)]
enum Reply {
    Nil,
    Status(String),
    Int64(i64),
    Binary(Vec<u8>),
}

impl Reply {
    /// What holding this value costs, counted as Spin counts it.
    fn memory_size(&self) -> usize {
        size_of::<Self>()
            + match self {
                Self::Nil | Self::Int64(_) => 0,
                Self::Status(status) => status.len(),
                Self::Binary(bytes) => bytes.len(),
            }
    }
}

/// What the host functions see of the store data.
pub struct OutboundRedisView<'a> {
    allowed: &'a Arc<AllowedHosts>,
    deadline: Instant,
    result_limit: usize,
    state: &'a mut OutboundRedisState,
    table: &'a mut ResourceTable,
}

/// An address that passed the checks, ready to be connected to outside the store.
struct PendingOpen {
    address: String,
    checked: OutboundAddress,
    deadline: Instant,
    result_limit: usize,
}

impl OutboundRedisView<'_> {
    /// Checks `address` against the allow-list, then reserves a connection slot: the order of
    /// Spin's checks, so a denied address is `invalid-address` even when no slot is free.
    fn begin_open(&mut self, address: String) -> Result<PendingOpen, Failure> {
        let checked = OutboundAddress::parse(&address, "redis")
            .filter(|checked| checked.is_allowed_by(self.allowed))
            .ok_or(Failure::InvalidAddress)?;
        if self.state.open_connections >= MAX_CONNECTIONS {
            return Err(Failure::TooManyConnections);
        }
        self.state.open_connections += 1;
        Ok(PendingOpen {
            address,
            checked,
            deadline: self.deadline,
            result_limit: self.result_limit,
        })
    }

    /// Stores a connection `begin_open` reserved a slot for, or gives the slot back.
    fn finish_open(
        &mut self,
        opened: Result<RedisConnection, Failure>,
    ) -> Result<Resource<RedisConnection>, Failure> {
        let pushed = opened.and_then(|connection| {
            self.table
                .push(connection)
                .map_err(|_| Failure::TooManyConnections)
        });
        if pushed.is_err() {
            self.state.open_connections = self.state.open_connections.saturating_sub(1);
        }
        pushed
    }

    fn connection(&self, handle: &Resource<RedisConnection>) -> wasmtime::Result<RedisConnection> {
        Ok(self.table.get(handle)?.clone())
    }

    fn close(&mut self, handle: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        self.state.open_connections = self.state.open_connections.saturating_sub(1);
        Ok(())
    }
}

impl PendingOpen {
    /// Connects to the checked address, by the deadline.
    async fn connect(self) -> Result<RedisConnection, Failure> {
        let client =
            redis::Client::open(self.address.as_str()).map_err(|_| Failure::InvalidAddress)?;
        let goes_where_checked = match client.get_connection_info().addr() {
            ConnectionAddr::Tcp(host, port) => self.checked.is_target(host, *port),
            ConnectionAddr::TcpTls { host, port, .. } => self.checked.is_target(host, *port),
            // A Unix socket has no host to check.
            _ => false,
        };
        if !goes_where_checked {
            tracing::info!(
                scheme = self.checked.scheme(),
                "redis address parses to another target than the one checked"
            );
            return Err(Failure::InvalidAddress);
        }
        let remaining = remaining(self.deadline);
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(remaining))
            .set_response_timeout(Some(remaining));
        let connection = bounded(
            self.deadline,
            client.get_multiplexed_async_connection_with_config(&config),
        )
        .await?;
        Ok(RedisConnection {
            connection,
            deadline: self.deadline,
            result_limit: self.result_limit,
        })
    }
}

/// The operations both versions share.
impl RedisConnection {
    async fn publish(&self, channel: String, payload: Vec<u8>) -> Result<(), Failure> {
        let mut connection = self.connection.clone();
        let () = bounded(self.deadline, connection.publish(channel, payload)).await?;
        Ok(())
    }

    async fn get(&self, key: String) -> Result<Option<Vec<u8>>, Failure> {
        let mut connection = self.connection.clone();
        let value: Option<Vec<u8>> = bounded(self.deadline, connection.get(key)).await?;
        let size = size_of::<Option<Vec<u8>>>() + value.as_ref().map_or(0, Vec::len);
        self.check_size(size)?;
        Ok(value)
    }

    async fn set(&self, key: String, value: Vec<u8>) -> Result<(), Failure> {
        let mut connection = self.connection.clone();
        let () = bounded(self.deadline, connection.set(key, value)).await?;
        Ok(())
    }

    async fn incr(&self, key: String) -> Result<i64, Failure> {
        let mut connection = self.connection.clone();
        bounded(self.deadline, connection.incr(key, 1)).await
    }

    async fn del(&self, keys: Vec<String>) -> Result<u32, Failure> {
        let mut connection = self.connection.clone();
        bounded(self.deadline, connection.del(keys)).await
    }

    async fn sadd(&self, key: String, values: Vec<String>) -> Result<u32, Failure> {
        let mut connection = self.connection.clone();
        // Spin maps a type mismatch to `type-error` for `sadd` only; everything else,
        // including the server's WRONGTYPE, is `other`.
        match tokio::time::timeout_at(self.deadline, connection.sadd(key, values)).await {
            Ok(Ok(added)) => Ok(added),
            Ok(Err(error)) if error.kind() == ErrorKind::UnexpectedReturnType => {
                Err(Failure::TypeError)
            }
            Ok(Err(error)) => Err(Failure::from(error)),
            Err(_) => Err(timed_out()),
        }
    }

    async fn smembers(&self, key: String) -> Result<Vec<String>, Failure> {
        let mut connection = self.connection.clone();
        let members: Vec<String> = bounded(self.deadline, connection.smembers(key)).await?;
        let size = size_of::<Vec<String>>()
            + members
                .iter()
                .map(|member| size_of::<String>() + member.len())
                .sum::<usize>();
        self.check_size(size)?;
        Ok(members)
    }

    async fn srem(&self, key: String, values: Vec<String>) -> Result<u32, Failure> {
        let mut connection = self.connection.clone();
        bounded(self.deadline, connection.srem(key, values)).await
    }

    async fn execute(
        &self,
        command: String,
        arguments: impl IntoIterator<Item = Argument>,
    ) -> Result<Vec<Reply>, Failure> {
        let mut command = redis::cmd(&command);
        for argument in arguments {
            match argument {
                Argument::Int64(number) => command.arg(number),
                Argument::Binary(bytes) => command.arg(bytes),
            };
        }
        let mut connection = self.connection.clone();
        let value: Value = bounded(self.deadline, command.query_async(&mut connection)).await?;
        let mut replies = Vec::new();
        flatten(value, &mut replies)?;
        let size = size_of::<Vec<Reply>>() + replies.iter().map(Reply::memory_size).sum::<usize>();
        self.check_size(size)?;
        Ok(replies)
    }

    fn check_size(&self, size: usize) -> Result<(), Failure> {
        if size > self.result_limit {
            return Err(Failure::Other(format!(
                "query result exceeds limit of {} bytes",
                self.result_limit
            )));
        }
        Ok(())
    }
}

/// Appends `value` to `replies` the way Spin converts a Redis response: arrays and sets are
/// flattened, `OK` is a status, doubles and big numbers are their decimal text, booleans are
/// 0 or 1; maps, attributes, verbatim strings and pushes are not supported.
fn flatten(value: Value, replies: &mut Vec<Reply>) -> Result<(), Failure> {
    let unsupported = |what: &str| {
        Failure::Other(format!(
            "could not convert Redis response: {what} is not supported"
        ))
    };
    match value {
        Value::Nil => replies.push(Reply::Nil),
        Value::Int(number) => replies.push(Reply::Int64(number)),
        Value::BulkString(bytes) => replies.push(Reply::Binary(bytes)),
        Value::SimpleString(status) => replies.push(Reply::Status(status)),
        Value::Okay => replies.push(Reply::Status("OK".to_owned())),
        Value::Array(values) | Value::Set(values) => {
            for value in values {
                flatten(value, replies)?;
            }
        }
        Value::Double(number) => replies.push(Reply::Binary(number.to_string().into_bytes())),
        Value::Boolean(flag) => replies.push(Reply::Int64(i64::from(flag))),
        Value::BigNumber(digits) => replies.push(Reply::Binary(digits)),
        Value::Map(_) => return Err(unsupported("Redis Map type")),
        Value::Attribute { .. } => return Err(unsupported("Redis Attribute type")),
        Value::VerbatimString { .. } => {
            return Err(unsupported("Redis string with format attribute"));
        }
        Value::Push { .. } => return Err(unsupported("Redis Pub/Sub type")),
        Value::ServerError(error) => {
            return Err(Failure::from(redis::RedisError::from(error)));
        }
        _ => return Err(unsupported("this Redis type")),
    }
    Ok(())
}

/// Runs a Redis call, failing with `other` when the deadline passes first.
async fn bounded<T>(
    deadline: Instant,
    call: impl Future<Output = redis::RedisResult<T>>,
) -> Result<T, Failure> {
    match tokio::time::timeout_at(deadline, call).await {
        Ok(result) => result.map_err(Failure::from),
        Err(_) => Err(timed_out()),
    }
}

fn timed_out() -> Failure {
    Failure::Other("the Redis call did not finish before the invocation's deadline".to_owned())
}

fn remaining(deadline: Instant) -> Duration {
    deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_millis(1))
}

/// Adds both versions of the interface to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    v2::add_to_linker(linker)?;
    v3::add_to_linker(linker)?;
    Ok(())
}

/// [`HasData`] marker for this capability.
pub struct OutboundRedis;

impl HasData for OutboundRedis {
    type Data<'a> = OutboundRedisView<'a>;
}

impl HostState {
    fn outbound_redis(&mut self) -> OutboundRedisView<'_> {
        OutboundRedisView {
            allowed: &self.env.allowed_hosts,
            deadline: self
                .deadline()
                .unwrap_or_else(|| Instant::now() + DEFAULT_TIMEOUT),
            // A result bigger than the guest's memory could never be handed over anyway.
            result_limit: usize::try_from(self.env.limits.max_host_call_bytes)
                .unwrap_or(usize::MAX)
                .min(self.env.memory_limit_bytes),
            state: &mut self.outbound_redis,
            table: &mut self.table,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattens_values_like_spin() {
        let mut replies = Vec::new();
        flatten(
            Value::Array(vec![
                Value::Nil,
                Value::Okay,
                Value::SimpleString("PONG".to_owned()),
                Value::Int(-7),
                Value::BulkString(vec![0, 255]),
                Value::Set(vec![Value::Boolean(true), Value::Boolean(false)]),
                Value::Double(1.5),
                Value::BigNumber(b"123456789012345678901234567890".to_vec()),
            ]),
            &mut replies,
        )
        .unwrap();
        assert_eq!(
            replies,
            vec![
                Reply::Nil,
                Reply::Status("OK".to_owned()),
                Reply::Status("PONG".to_owned()),
                Reply::Int64(-7),
                Reply::Binary(vec![0, 255]),
                Reply::Int64(1),
                Reply::Int64(0),
                Reply::Binary(b"1.5".to_vec()),
                Reply::Binary(b"123456789012345678901234567890".to_vec()),
            ]
        );
    }

    #[test]
    fn open_checks_the_address_first_then_limits_connections() {
        let allowed =
            Arc::new(AllowedHosts::parse(&["redis://127.0.0.1:6379".to_owned()]).unwrap());
        let mut state = OutboundRedisState::default();
        let mut table = ResourceTable::new();
        let mut view = OutboundRedisView {
            allowed: &allowed,
            deadline: Instant::now() + DEFAULT_TIMEOUT,
            result_limit: 1 << 20,
            state: &mut state,
            table: &mut table,
        };
        let allowed_address = || "redis://127.0.0.1:6379".to_owned();
        for _ in 0..MAX_CONNECTIONS {
            assert!(view.begin_open(allowed_address()).is_ok());
        }
        assert_eq!(
            view.begin_open(allowed_address()).err(),
            Some(Failure::TooManyConnections)
        );
        // Denied before counted, as in Spin.
        assert_eq!(
            view.begin_open("redis://127.0.0.1:6380".to_owned()).err(),
            Some(Failure::InvalidAddress)
        );
        // A connection that failed gives its slot back.
        let refused = view.finish_open(Err(Failure::Other("refused".to_owned())));
        assert_eq!(refused.err(), Some(Failure::Other("refused".to_owned())));
        assert!(view.begin_open(allowed_address()).is_ok());
    }

    #[test]
    fn refuses_maps_like_spin() {
        let mut replies = Vec::new();
        let failure = flatten(Value::Map(vec![(Value::Nil, Value::Nil)]), &mut replies);
        assert!(matches!(failure, Err(Failure::Other(message)) if message.contains("Map")));
    }
}
