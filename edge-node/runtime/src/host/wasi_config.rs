//! `wasi:config/store@0.2.0-draft-2024-09-27` (the runtime-config draft) over the component's
//! resolved Spin variables, the way Spin's `crates/factor-variables/src/host.rs` provides it.
//!
//! - `get(key)` answers `some(value)` for a variable the component declares, and `none` both for
//!   an undeclared one and for a key that is not a valid variable name (Spin follows the
//!   guidance of WebAssembly/wasi-runtime-config#19 here instead of reporting an error).
//! - `get-all` answers every variable the component declares, with its value (sorted by name;
//!   Spin gives no order).
//!
//! Values are resolved before the guest runs (see [`crate::host::variables`]), so the
//! `upstream` and `io` errors, which Spin reports when a variable provider fails during a call,
//! never occur here: a provider failure fails the load or the invocation instead.

use std::collections::BTreeMap;

use wasmtime::component::{HasData, Linker};

use crate::host::variables::is_valid_name;
use crate::state::HostState;

/// What the host functions see: the component's resolved variables.
pub struct WasiConfigView<'a> {
    values: &'a BTreeMap<String, String>,
}

impl WasiConfigView<'_> {
    fn get(&self, key: &str) -> Option<String> {
        if !is_valid_name(key) {
            return None;
        }
        self.values.get(key).cloned()
    }

    fn get_all(&self) -> Vec<(String, String)> {
        self.values
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect()
    }
}

/// [`HasData`] marker for this capability.
pub struct WasiConfig;

impl HasData for WasiConfig {
    type Data<'a> = WasiConfigView<'a>;
}

impl HostState {
    fn wasi_config(&mut self) -> WasiConfigView<'_> {
        WasiConfigView {
            values: self.variable_values(),
        }
    }
}

/// Adds `wasi:config/store` to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    bindings::wasi::config::store::add_to_linker::<HostState, WasiConfig>(
        linker,
        HostState::wasi_config,
    )
}

mod bindings {
    use super::WasiConfigView;

    wasmtime::component::bindgen!({
        path: "wit",
        world: "nexus:host/wasi-config",
    });

    use wasi::config::store::{Error, Host};

    impl Host for WasiConfigView<'_> {
        fn get(&mut self, key: String) -> Result<Option<String>, Error> {
            Ok(WasiConfigView::get(self, &key))
        }

        fn get_all(&mut self) -> Result<Vec<(String, String)>, Error> {
            Ok(WasiConfigView::get_all(self))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values() -> BTreeMap<String, String> {
        BTreeMap::from([
            ("greeting".to_owned(), "hello".to_owned()),
            ("api_key".to_owned(), "k".to_owned()),
        ])
    }

    #[test]
    fn get_answers_declared_variables_and_none_otherwise() {
        let values = values();
        let view = WasiConfigView { values: &values };
        assert_eq!(view.get("greeting").as_deref(), Some("hello"));
        assert_eq!(view.get("missing"), None);
        // Invalid names are `none`, not an error, as in Spin.
        for invalid in ["", "Greeting", "api-key", "_a", "a__b"] {
            assert_eq!(view.get(invalid), None, "{invalid}");
        }
    }

    #[test]
    fn get_all_lists_every_variable_sorted() {
        let values = values();
        let view = WasiConfigView { values: &values };
        assert_eq!(
            view.get_all(),
            vec![
                ("api_key".to_owned(), "k".to_owned()),
                ("greeting".to_owned(), "hello".to_owned()),
            ]
        );
    }
}
