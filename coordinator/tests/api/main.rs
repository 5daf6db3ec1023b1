//! The coordinator's HTTP API over real HTTP, on a real store.
#![expect(clippy::unwrap_used, reason = "tests report failures by panicking")]

mod agent_context;
mod agent_messages;
mod agents;
mod api_keys;
mod audit;
mod auth;
mod functions;
mod grpc;
mod harness;
mod openapi;
mod projects;
mod trigger;
