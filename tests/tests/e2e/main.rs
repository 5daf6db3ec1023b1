//! End-to-end tests of the edge runtime: real guests built from `functions/`, served by the
//! platform in-process, called over real HTTP.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "helpers shared by tests report failures by panicking"
)]

mod context;
mod counting_listener;
mod hardening;
mod http_functions;
mod key_value;
mod limits;
mod outbound;
mod outbound_mqtt;
mod outbound_rdbms;
mod outbound_redis;
mod request_shape;
mod secret_variables;
mod sockets;
mod sqlite;
mod wasi_config;
mod wasi_key_value;
