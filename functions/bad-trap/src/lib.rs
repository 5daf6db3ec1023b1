//! `bad-trap`: traps on every request (test fixture, spin-sdk 5.2).
//!
//! It executes the `unreachable` instruction directly: no panic message, no stderr output,
//! just a trap the host must turn into a guest error.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

/// Traps before answering.
#[http_component]
fn handle_bad_trap(_request: Request) -> Response {
    trap()
}

fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    // Only so that the crate also type-checks on a host target.
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort()
}
