//! Checking a component at deploy time without running it: the same componentizing of core
//! modules, compilation, import check and linking that [`crate::Runtime::prepare`] does, on an
//! engine with the nodes' code settings but no instance pool, epoch ticker or cache, so a
//! control plane can hold one cheaply.

use nexus_proto::Digest;
use wasmtime::Engine;
use wasmtime::component::Linker;

use crate::component::{HttpWorld, prepare};
use crate::error::LoadError;
use crate::state::HostState;

/// Validates components against this runtime's engine settings and host interfaces.
pub struct Validator {
    engine: Engine,
    linker: Linker<HostState>,
}

impl Validator {
    /// An engine and a linker with every host capability.
    pub fn new() -> Result<Self, LoadError> {
        let engine = Engine::new(&crate::engine::code_settings())
            .map_err(|error| LoadError::Engine(format!("{error:#}")))?;
        let linker = crate::host::linker(&engine)
            .map_err(|error| LoadError::Engine(format!("{error:#}")))?;
        Ok(Self { engine, linker })
    }

    /// Compiles and links `bytes` (a component, or a core module componentized as the runtime
    /// does) and reports the HTTP world it exports. Fails with the error a node would give:
    /// every unsupported import named, or the compiler's or linker's reason.
    ///
    /// This blocks for as long as compilation takes; run it off the async executor.
    /// `component_id` only names the component in errors.
    pub fn validate(&self, component_id: &str, bytes: &[u8]) -> Result<HttpWorld, LoadError> {
        let prepared = prepare(
            &self.engine,
            &self.linker,
            component_id,
            Digest::of(bytes),
            bytes,
        )?;
        Ok(prepared.world())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_component() {
        let validator = Validator::new().unwrap();
        let error = validator.validate("junk", b"not wasm").unwrap_err();
        assert!(
            matches!(&error, LoadError::Compile { component, .. } if component == "junk"),
            "{error}"
        );
    }
}
