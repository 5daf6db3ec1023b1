//! SirsiNexus as one process: `nexus up` assembles the runtime, a context store and the edge
//! ingress around a Spin app, the way the cluster will run them on separate machines.
//!
//! This library is what the `nexus` binary and the end-to-end tests share; the binary only
//! parses flags and prints.

pub mod bundle;
pub mod cluster;
pub mod dev;
pub mod embedded;
pub mod platform;
pub mod units;

pub use embedded::{Embedded, EmbeddedConfig, InProcessDispatch};
pub use nexus_edge::kv::KvBackend;
pub use platform::{Platform, PlatformConfig};
