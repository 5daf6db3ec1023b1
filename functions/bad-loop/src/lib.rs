//! `bad-loop`: a guest that never answers (test fixture, spin-sdk 5.2).
//!
//! Every request spins in a loop the optimiser cannot remove, so only the host's timeout
//! (epoch or fuel interruption) can end it. It is not an example to copy.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use std::hint::black_box;

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

/// Spins forever; the `200` after the loop is never sent.
#[http_component]
fn handle_bad_loop(_request: Request) -> Response {
    let mut iterations: u64 = 0;
    // `black_box` hides both the condition and the counter from the optimiser, so the loop
    // survives and keeps doing work the host has to interrupt.
    while black_box(true) {
        iterations = black_box(iterations.wrapping_add(1));
    }
    Response::new(200, format!("stopped after {iterations} iterations"))
}
