//! The coordinator's HTTP API over real HTTP, on a real store.
#![expect(clippy::unwrap_used, reason = "tests report failures by panicking")]

mod auth;
mod functions;
mod harness;
mod projects;
