//! The shared context-store test suite, run against every backend.
//!
//! Each check in `basics`, `expiry` and `counters` takes an `Arc<dyn ContextStore>` and knows
//! nothing of the backend; [`context_store_test_suite!`] turns every check into one
//! `#[tokio::test]` per backend, like Quickwit's `metastore_test_suite!`. Redis is the real
//! server at `REDIS_URL` (default `redis://127.0.0.1:6379`); if it is down the Redis tests fail
//! and say how to start it.

// Marks the whole crate as test code, so that clippy.toml's unwrap/expect/panic allowance for
// tests covers the shared checks and helpers too, not only the `#[test]` functions.
#![cfg(test)]

mod basics;
mod counters;
mod expiry;
mod harness;
mod redis_only;
mod sqlite_only;
mod tiered_only;

/// Generates, inside `mod $backend`, one test per check, each on a store from `$open()`.
macro_rules! context_store_test_suite {
    ($backend:ident, $open:path) => {
        mod $backend {
            context_store_test_suite!(@checks $open;
                basics::get_returns_what_set_stored,
                basics::delete_reports_whether_key_existed,
                basics::exists_follows_set_and_delete,
                basics::keys_lists_exactly_the_namespace_keys,
                basics::namespaces_are_isolated,
                basics::invalid_keys_are_refused_and_nothing_is_written,
                basics::oversized_values_are_refused_and_nothing_is_written,
                expiry::ttl_reports_remaining_time,
                expiry::set_replaces_the_ttl,
                expiry::expired_keys_behave_as_missing,
                expiry::zero_ttl_expires_at_once,
                expiry::huge_ttls_are_capped,
                counters::increment_treats_missing_as_zero,
                counters::increment_reads_decimal_text,
                counters::increment_refuses_non_integers,
                counters::increment_refuses_overflow,
                counters::increment_keeps_the_ttl,
                counters::swap_expecting_none_only_creates,
                counters::swap_compares_the_current_value,
                counters::swap_makes_the_key_persistent,
                counters::concurrent_increments_are_atomic,
                counters::concurrent_swap_loops_are_atomic,
            );
        }
    };
    (@checks $open:path; $($module:ident :: $check:ident),* $(,)?) => {
        $(
            // Several workers, so that the concurrency checks really run in parallel.
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn $check() {
                $crate::harness::run($open().await, $crate::$module::$check).await;
            }
        )*
    };
}

context_store_test_suite!(memory, crate::harness::memory);
context_store_test_suite!(sqlite, crate::harness::sqlite);
context_store_test_suite!(sqlite_in_memory, crate::harness::sqlite_in_memory);
context_store_test_suite!(redis, crate::harness::redis);
context_store_test_suite!(postgres, crate::harness::postgres);
context_store_test_suite!(tiered, crate::harness::tiered);
