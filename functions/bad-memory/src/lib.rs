//! `bad-memory`: a memory bomb (test fixture, spin-sdk 5.2).
//!
//! Every request allocates 1 MiB chunks, writes to each and keeps them all, until an
//! allocation fails: the guest then aborts, which traps. The host's memory limit decides when.

// The workspace renames the dependency to keep two spin-sdk versions apart; the
// `#[http_component]` expansion names `::spin_sdk`, so put it back under that name.
extern crate spin_sdk_5 as spin_sdk;

use std::hint::black_box;

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

const CHUNK_BYTES: usize = 1024 * 1024;

/// Allocates until the guest traps; the `500` after the loop is never sent.
#[http_component]
fn handle_bad_memory(_request: Request) -> Response {
    let mut chunks: Vec<Vec<u8>> = Vec::new();
    while black_box(true) {
        // A failed allocation goes to `handle_alloc_error`, which aborts: that is the trap
        // this fixture exists to produce.
        let mut chunk = vec![0_u8; CHUNK_BYTES];
        // Touch every byte so the pages are really used, and hide the chunk from the
        // optimiser so neither the write nor the allocation is elided.
        chunk.fill(black_box(0xA5));
        chunks.push(black_box(chunk));
    }
    Response::new(
        500,
        format!("memory bomb stopped after {} MiB", chunks.len()),
    )
}
