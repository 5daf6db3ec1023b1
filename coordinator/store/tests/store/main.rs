//! The shared store test suite, run against SQLite and Postgres.
//!
//! Each check takes a [`harness::TestDb`] and knows nothing of the backend;
//! [`store_test_suite!`] turns every check into one `#[tokio::test]` per backend, like
//! Quickwit's `metastore_test_suite!`. Postgres is the real server at
//! `NEXUS_TEST_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`); every
//! test gets a database of its own, and the store runs its connections SERIALIZABLE. If the
//! server is down the Postgres tests fail and say how to start it.

// Marks the whole crate as test code, so that clippy.toml's unwrap/expect/panic allowance for
// tests covers the shared checks and helpers too, not only the `#[test]` functions.
#![cfg(test)]

mod agents;
mod audit;
mod functions;
mod harness;
mod invocations;
mod leader;
mod migrations;
mod projects;
mod retry;
mod schedules;
mod sessions;
mod users;

/// Generates, inside `mod $backend`, one test per check, each on a fresh database from `$open()`.
macro_rules! store_test_suite {
    ($backend:ident, $open:path) => {
        mod $backend {
            store_test_suite!(@checks $open;
                users::create_and_get_round_trip,
                users::emails_are_unique_in_any_case,
                users::missing_users_are_not_found,
                users::erasing_frees_the_email_and_ends_sessions,
                sessions::rotation_moves_the_family_to_the_next_token,
                sessions::reusing_a_superseded_token_revokes_the_family,
                sessions::unknown_tokens_are_reported,
                sessions::concurrent_rotations_of_one_token_have_one_winner,
                sessions::sessions_are_listed_and_revoked_per_user,
                projects::create_makes_the_creator_owner,
                projects::slugs_are_unique,
                projects::update_and_delete,
                projects::members_are_added_changed_and_removed,
                projects::the_last_owner_stays,
                projects::api_keys_are_found_by_hash_until_revoked,
                functions::functions_versions_and_aliases,
                functions::rollback_returns_to_the_previous_target,
                functions::priority_is_set_per_function,
                functions::node_selector_is_set_per_function,
                functions::placement_and_cloud_targets_are_set_per_function,
                functions::async_retry_is_set_per_function,
                agents::agents_are_created_paged_changed_and_deleted,
                agents::a_deleted_project_takes_its_agents_with_it,
                agents::an_agent_of_an_alias_is_created_with_function_and_alias_checked,
                agents::an_agent_lease_has_one_holder_and_changes_hands_with_a_new_epoch,
                leader::a_leader_lease_has_one_holder_and_passes_on_when_it_expires_or_is_released,
                leader::an_outbox_mark_starts_at_zero_and_only_moves_forward,
                invocations::an_invocation_is_claimed_once_and_keeps_its_request_and_result,
                invocations::the_same_idempotency_key_names_the_first_invocation_for_a_day,
                invocations::a_result_from_a_lost_lease_is_refused,
                invocations::failures_retry_with_backoff_then_go_to_the_dead_letters,
                invocations::an_invocation_past_its_max_age_dies_instead_of_running,
                invocations::queued_invocations_are_announced_again_when_due,
                invocations::finished_invocations_are_deleted_after_their_retention,
                schedules::a_tick_is_advanced_once_and_schedules_are_listed_and_deleted,
                audit::appends_form_a_verified_chain,
                audit::an_edited_row_is_reported,
                audit::a_removed_row_is_reported,
                audit::concurrent_appends_keep_one_chain,
                retry::conflicting_transactions_are_retried_until_all_commit,
                retry::retries_stop_at_the_attempt_limit,
                retry::failed_work_is_rolled_back_and_not_retried,
                migrations::migrate_is_idempotent_and_serialised,
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

store_test_suite!(sqlite, crate::harness::sqlite);
store_test_suite!(postgres, crate::harness::postgres);
