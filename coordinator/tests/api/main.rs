//! The coordinator's HTTP API over real HTTP, on a real store.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "tests report failures by panicking"
)]

mod agent_context;
mod agent_messages;
mod agents;
mod api_keys;
mod audit;
mod auth;
mod event_bus;
mod functions;
mod grpc;
mod grpc_agents;
mod harness;
mod invocations;
mod observability;
mod openapi;
mod projects;
mod rate_limits;
mod rollouts;
mod scale_to_zero;
mod schedules;
mod trigger;
mod users;
mod websockets;
