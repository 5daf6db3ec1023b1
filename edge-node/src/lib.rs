//! The edge node: HTTP ingress, Spin-compatible routing and request headers, in front of the
//! [`nexus_runtime`] that runs the components.
//!
//! Not here: running WebAssembly (the runtime) or reading manifests (the control plane).

pub mod errors;
pub mod hosting;
pub mod ingress;
mod local;
pub mod routing;

pub use hosting::{AppHost, Deployment};
pub use ingress::{IngressConfig, ServedApp, serve};
