//! `bad-recursion`: unbounded recursion (test fixture, spin-sdk 5.2).
//!
//! Every request recurses until the host's wasm stack limit is hit and the guest traps with a
//! stack overflow.
//!
//! The recursion deliberately keeps everything in wasm locals. A frame that holds an array (or
//! passes anything to `black_box` by reference) lives on the shadow stack in linear memory,
//! which is only 1 MiB and sits below the data (`--stack-first`): it would run out first and
//! the guest would trap with an out-of-bounds memory access instead of a stack overflow.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

/// Recurses until the guest traps; the `500` is never sent.
#[http_component]
fn handle_bad_recursion(request: Request) -> Response {
    // The limit depends on the request, so the optimiser cannot prove the recursion endless
    // (and fold it away), yet no real path gets anywhere near it.
    let path_len = u64::try_from(request.path().len()).unwrap_or(u64::MAX);
    let limit = u64::MAX - path_len;
    let total = descend(0, limit);
    Response::new(500, format!("recursion stopped with total {total}"))
}

#[inline(never)]
fn descend(depth: u64, limit: u64) -> u64 {
    if depth >= limit {
        return depth;
    }
    // Work after the call stops tail-call and accumulator elimination: each level keeps its
    // frame. `rotate_left` is not an associative operation LLVM could fold into a loop.
    descend(depth + 1, limit).rotate_left(7) ^ depth
}
