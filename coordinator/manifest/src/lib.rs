//! Spin manifest loading: `spin.toml` (manifest version 2) in, [`ResolvedApp`] out.
//!
//! The control plane's side of the "nodes never parse user manifests" rule: everything that
//! reads TOML lives here, and what leaves is a resolved record plus the local files that hold
//! each component's bytes.

pub use nexus_proto::ResolvedApp;
