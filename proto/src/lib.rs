//! Types that cross the boundary between the control plane and edge nodes.
//!
//! The central one is [`app::ResolvedApp`]: a fully resolved, versioned description of an
//! application that an edge node can run without reading any user manifest. The coordinator
//! (or `nexus up`) produces it from a `spin.toml`; the runtime consumes it.
//!
//! This crate deliberately holds no behaviour beyond validation of its own values: no I/O,
//! no parsing of user files, no wasmtime. [`route`] is that validation for the route patterns
//! in [`app::HttpRoute::Path`]: the manifest loader and the edge router must agree on them.
#![deny(missing_docs)]

pub mod app;
pub mod digest;
pub mod error;
pub mod route;

pub use app::ResolvedApp;
pub use digest::Digest;
pub use error::{ErrorBody, ErrorEnvelope};
