//! The edge node: HTTP ingress, Spin-compatible routing and request headers, in front of the
//! [`nexus_runtime`] that runs the components.
//!
//! In a cluster it is also the node agent ([`node`]): it registers with the coordinator, holds a
//! lease, fetches components by digest and runs the coordinator's invocations ([`cluster`]).
//!
//! In a cloud function it is the host of one bundle's app ([`cloud`]): an AWS Lambda custom
//! runtime or an Azure Functions custom handler.
//!
//! Not here: running WebAssembly (the runtime) or reading manifests (the control plane).

pub mod cloud;
pub mod cluster;
pub mod errors;
pub mod hosting;
pub mod ingress;
pub mod kv;
mod local;
pub mod metrics;
pub mod node;
pub mod routing;
pub mod variables;

pub use hosting::{AppHost, DEFAULT_UNLOAD_IDLE_AFTER_SECONDS, Deployment, Unloaded};
pub use ingress::{IngressConfig, ServedApp, serve};
