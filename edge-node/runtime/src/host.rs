//! Host capabilities, one module each. Each owns its bindings, its per-component
//! configuration and its per-instance state, and adds itself to the linker.

use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::state::HostState;

pub mod allowed_hosts;
pub mod key_value;
pub mod local_requests;
pub mod outbound_address;
pub mod outbound_http;
pub mod outbound_mqtt;
pub mod outbound_mysql;
pub mod outbound_pg;
pub mod outbound_redis;
pub mod rdbms;
pub mod sockets;
pub mod sqlite;
pub mod variables;
pub mod wasi_config;
pub mod wasi_keyvalue;
pub mod wasi_rc;

/// The linker every component is linked against: WASI (p2 and p3), `wasi:http` incoming and
/// outbound (p2 and p3), Spin key-value, variables, SQLite, Redis, MQTT, Postgres and MySQL
/// (every version),
/// `wasi:sockets`, and the `wasi:keyvalue` and `wasi:config` drafts Spin provides.
pub fn linker(engine: &Engine) -> wasmtime::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi::p3::add_to_linker(&mut linker)?;
    local_requests::add_to_linker(&mut linker)?;
    key_value::add_to_linker(&mut linker)?;
    variables::add_to_linker(&mut linker)?;
    wasi_keyvalue::add_to_linker(&mut linker)?;
    wasi_config::add_to_linker(&mut linker)?;
    outbound_redis::add_to_linker(&mut linker)?;
    outbound_mqtt::add_to_linker(&mut linker)?;
    sqlite::add_to_linker(&mut linker)?;
    outbound_pg::add_to_linker(&mut linker)?;
    outbound_mysql::add_to_linker(&mut linker)?;
    wasi_rc::add_to_linker(&mut linker)?;
    Ok(linker)
}
