//! `spin:redis/redis@3.0.0`: `async func`s, called concurrently by WASIp3 guests. The store is
//! only borrowed to check, reserve and look up; every network wait happens outside it.

use wasmtime::component::{Accessor, Linker, Resource};

use super::{Argument, Failure, OutboundRedis, OutboundRedisView, RedisConnection, Reply};
use crate::state::HostState;

wasmtime::component::bindgen!({
    path: "wit",
    world: "nexus:host/outbound-redis-v3",
    imports: { default: trappable },
    with: { "spin:redis/redis.connection": super::RedisConnection },
});

use spin::redis::redis::{
    Error, Host, HostConnection, HostConnectionWithStore, RedisParameter, RedisResult,
};

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    spin::redis::redis::add_to_linker::<HostState, OutboundRedis>(linker, HostState::outbound_redis)
}

impl From<Failure> for Error {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::InvalidAddress => Self::InvalidAddress,
            Failure::TooManyConnections => Self::TooManyConnections,
            Failure::TypeError => Self::TypeError,
            Failure::Other(message) => Self::Other(message),
        }
    }
}

impl From<RedisParameter> for Argument {
    fn from(parameter: RedisParameter) -> Self {
        match parameter {
            RedisParameter::Int64(number) => Self::Int64(number),
            RedisParameter::Binary(bytes) => Self::Binary(bytes),
        }
    }
}

impl From<Reply> for RedisResult {
    fn from(reply: Reply) -> Self {
        match reply {
            Reply::Nil => Self::Nil,
            Reply::Status(status) => Self::Status(status),
            Reply::Int64(number) => Self::Int64(number),
            Reply::Binary(bytes) => Self::Binary(bytes),
        }
    }
}

type Outcome<T> = wasmtime::Result<Result<T, Error>>;

fn outcome<T>(result: Result<T, Failure>) -> Outcome<T> {
    Ok(result.map_err(Error::from))
}

impl Host for OutboundRedisView<'_> {}

impl HostConnection for OutboundRedisView<'_> {
    fn drop(&mut self, connection: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.close(connection)
    }
}

fn connection<T>(
    accessor: &Accessor<T, OutboundRedis>,
    handle: &Resource<RedisConnection>,
) -> wasmtime::Result<RedisConnection> {
    accessor.with(|mut access| access.get().connection(handle))
}

impl<T> HostConnectionWithStore<T> for OutboundRedis {
    async fn open(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> Outcome<Resource<RedisConnection>> {
        let pending = match accessor.with(|mut access| access.get().begin_open(address)) {
            Ok(pending) => pending,
            Err(failure) => return outcome(Err(failure)),
        };
        let opened = pending.connect().await;
        outcome(accessor.with(|mut access| access.get().finish_open(opened)))
    }

    async fn publish(
        accessor: &Accessor<T, Self>,
        handle: Resource<RedisConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> Outcome<()> {
        outcome(
            connection(accessor, &handle)?
                .publish(channel, payload)
                .await,
        )
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        handle: Resource<RedisConnection>,
        key: String,
    ) -> Outcome<Option<Vec<u8>>> {
        outcome(connection(accessor, &handle)?.get(key).await)
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        handle: Resource<RedisConnection>,
        key: String,
        value: Vec<u8>,
    ) -> Outcome<()> {
        outcome(connection(accessor, &handle)?.set(key, value).await)
    }

    async fn incr(
        accessor: &Accessor<T, Self>,
        handle: Resource<RedisConnection>,
        key: String,
    ) -> Outcome<i64> {
        outcome(connection(accessor, &handle)?.incr(key).await)
    }

    async fn del(
        accessor: &Accessor<T, Self>,
        handle: Resource<RedisConnection>,
        keys: Vec<String>,
    ) -> Outcome<u32> {
        outcome(connection(accessor, &handle)?.del(keys).await)
    }

    async fn sadd(
        accessor: &Accessor<T, Self>,
        handle: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Outcome<u32> {
        outcome(connection(accessor, &handle)?.sadd(key, values).await)
    }

    async fn smembers(
        accessor: &Accessor<T, Self>,
        handle: Resource<RedisConnection>,
        key: String,
    ) -> Outcome<Vec<String>> {
        outcome(connection(accessor, &handle)?.smembers(key).await)
    }

    async fn srem(
        accessor: &Accessor<T, Self>,
        handle: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Outcome<u32> {
        outcome(connection(accessor, &handle)?.srem(key, values).await)
    }

    async fn execute(
        accessor: &Accessor<T, Self>,
        handle: Resource<RedisConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> Outcome<Vec<RedisResult>> {
        let replies = connection(accessor, &handle)?
            .execute(command, arguments.into_iter().map(Argument::from))
            .await;
        outcome(replies.map(|replies| replies.into_iter().map(RedisResult::from).collect()))
    }
}
