//! The SirsiNexus coordinator: users, sessions and projects, functions and their versions,
//! dispatch of invocations, and the HTTP API over them.

pub mod agents;
pub mod api;
pub mod api_keys;
pub mod audit;
pub mod auth;
pub mod cloud;
pub mod cluster;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod functions;
pub mod grpc;
pub mod invocations;
pub mod leader;
pub mod limits;
pub mod metrics;
pub mod projects;
pub mod rollouts;
pub mod schedules;
pub mod secrets;
pub mod server;
pub mod trigger;
pub mod warm;

/// Entry points for the fuzz targets in `fuzz/`; not an API.
#[doc(hidden)]
pub use api::fuzzing;
