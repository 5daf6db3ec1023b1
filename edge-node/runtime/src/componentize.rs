//! Core modules as components: a Spin app's `source` may be a core WebAssembly module built
//! for `wasm32-wasip1` or `wasm32-unknown-unknown` by a bindings generator that embeds its
//! component type (spin-sdk 3.x and later, `wit-bindgen`). Such a module is turned into a
//! component on load with `wit-component` and the WASI preview 1 adapter, as Spin does; the
//! result is cached under the digest of the original bytes like any component.
//!
//! Modules from spin-sdk 1.x carry no component type (they speak Spin 1's own ABI) and are
//! refused with the encoder's explanation. Modules from spin-sdk 2.x import and export the WASI
//! 0.2.0 release candidate of 2023-10-18, which [`crate::host::wasi_rc`] serves; a module
//! importing another candidate (2023-11-10) is refused by name.

use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};

/// The preamble of a core module: `\0asm`, version 1.
const CORE_MODULE_PREAMBLE: [u8; 8] = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

/// Whether `bytes` are a core module rather than a component.
pub fn is_core_module(bytes: &[u8]) -> bool {
    bytes.starts_with(&CORE_MODULE_PREAMBLE)
}

/// Encodes a core module with an embedded component type as a component.
pub fn componentize(module: &[u8]) -> Result<Vec<u8>, String> {
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .and_then(|encoder| {
            encoder.adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|mut encoder| encoder.encode())
        .map_err(|error| format!("core module could not be made a component: {error:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_modules_from_components() {
        assert!(is_core_module(&CORE_MODULE_PREAMBLE));
        assert!(!is_core_module(&[
            0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00
        ]));
        assert!(!is_core_module(b"\0asm"));
    }

    #[test]
    fn a_module_that_speaks_no_component_abi_is_refused_with_a_reason() {
        // Like a spin-sdk 1.x module: imports that no component type describes.
        let module =
            wat::parse_str(r#"(module (import "spin-config" "get-config" (func)))"#).unwrap();
        let error = componentize(&module).unwrap_err();
        assert!(
            error.starts_with("core module could not be made a component"),
            "{error}"
        );
        assert!(error.contains("spin-config"), "{error}");
    }
}
