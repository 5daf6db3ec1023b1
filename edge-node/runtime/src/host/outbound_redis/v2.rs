//! `fermyon:spin/redis@2.0.0`: synchronous to the guest, async on the host.

use wasmtime::component::{Linker, Resource};

use super::{Argument, Failure, OutboundRedis, OutboundRedisView, RedisConnection, Reply};
use crate::state::HostState;

wasmtime::component::bindgen!({
    path: "wit",
    world: "nexus:host/outbound-redis-v2",
    imports: { default: async | trappable },
    with: { "fermyon:spin/redis.connection": super::RedisConnection },
});

use fermyon::spin::redis::{Error, Host, HostConnection, RedisParameter, RedisResult};

pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    fermyon::spin::redis::add_to_linker::<HostState, OutboundRedis>(
        linker,
        HostState::outbound_redis,
    )
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
    async fn open(&mut self, address: String) -> Outcome<Resource<RedisConnection>> {
        let pending = match self.begin_open(address) {
            Ok(pending) => pending,
            Err(failure) => return outcome(Err(failure)),
        };
        let opened = pending.connect().await;
        outcome(self.finish_open(opened))
    }

    async fn publish(
        &mut self,
        connection: Resource<RedisConnection>,
        channel: String,
        payload: Vec<u8>,
    ) -> Outcome<()> {
        outcome(
            self.connection(&connection)?
                .publish(channel, payload)
                .await,
        )
    }

    async fn get(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> Outcome<Option<Vec<u8>>> {
        outcome(self.connection(&connection)?.get(key).await)
    }

    async fn set(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
        value: Vec<u8>,
    ) -> Outcome<()> {
        outcome(self.connection(&connection)?.set(key, value).await)
    }

    async fn incr(&mut self, connection: Resource<RedisConnection>, key: String) -> Outcome<i64> {
        outcome(self.connection(&connection)?.incr(key).await)
    }

    async fn del(
        &mut self,
        connection: Resource<RedisConnection>,
        keys: Vec<String>,
    ) -> Outcome<u32> {
        outcome(self.connection(&connection)?.del(keys).await)
    }

    async fn sadd(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Outcome<u32> {
        outcome(self.connection(&connection)?.sadd(key, values).await)
    }

    async fn smembers(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
    ) -> Outcome<Vec<String>> {
        outcome(self.connection(&connection)?.smembers(key).await)
    }

    async fn srem(
        &mut self,
        connection: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> Outcome<u32> {
        outcome(self.connection(&connection)?.srem(key, values).await)
    }

    async fn execute(
        &mut self,
        connection: Resource<RedisConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> Outcome<Vec<RedisResult>> {
        let replies = self
            .connection(&connection)?
            .execute(command, arguments.into_iter().map(Argument::from))
            .await;
        outcome(replies.map(|replies| replies.into_iter().map(RedisResult::from).collect()))
    }

    async fn drop(&mut self, connection: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.close(connection)
    }
}
