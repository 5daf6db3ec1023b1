//! The edge node: HTTP ingress, Spin-compatible routing and request headers, in front of the
//! [`nexus_runtime`] that runs the components.

pub mod routing;
