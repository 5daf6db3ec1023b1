//! Spin manifest loading: `spin.toml` (manifest version 2) in, [`ResolvedApp`] out.
//!
//! The control plane's side of the "nodes never parse user manifests" rule: everything that
//! reads TOML lives here, and what leaves is a resolved record plus the local files that hold
//! each component's bytes. [`load`] accepts what `spin up` accepts and resolves it the way
//! Spin's loader does (`spin-manifest` and `spin-loader`): inline components get Spin's
//! generated ids, variables and templates follow `spin-expressions`, routes follow `spin-http`.
//!
//! What this crate deliberately does not do: fetch remote or registry sources, build
//! components, or accept features the runtime does not implement. Those fail with an error that
//! names the field, rather than being silently ignored.

mod error;
mod ids;
mod load;
mod schema;
mod template;

use std::collections::BTreeMap;
use std::path::PathBuf;

use nexus_proto::Digest;
pub use nexus_proto::ResolvedApp;

pub use error::{Error, Result};
pub use load::{load, load_confined};

/// A loaded manifest: the resolved app and where each component's bytes are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedApp {
    /// The resolved app record.
    pub app: ResolvedApp,
    /// For each component digest in [`ResolvedApp::components`], the absolute path of the local
    /// file whose bytes have that digest. Components with identical bytes share one entry.
    pub artifacts: BTreeMap<Digest, PathBuf>,
}
