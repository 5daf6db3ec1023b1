//! `wasi:keyvalue@0.2.0-draft2` (the 2024-10-17 draft: `store`, `atomics` and `batch`) the way
//! Spin provides it, over the same stores as Spin key-value.
//!
//! A bucket identifier is a Spin key-value store label: `open("default")` opens the very store
//! `fermyon:spin/key-value` and `spin:key-value` open as `default` (namespace `<app>/<label>`),
//! so a value written through one interface is read through the others. A component may open
//! only the labels in its `key_value_stores`; any other identifier is `access-denied`.
//!
//! Behaviour mirrors Spin's `crates/factor-key-value/src/host.rs` and its default store
//! (`crates/key-value-spin`):
//! - `list-keys` answers every key in one page with no cursor; passing a cursor is
//!   `other("list_keys: cursor not supported")`.
//! - `get-many` answers only the keys that exist (as Spin's default store does, although the
//!   WIT describes `none` entries), each once; `set-many` and `delete-many` are not atomic.
//!   Empty lists succeed without touching the store. A value, a batch or a result over
//!   [`crate::Limits::max_host_call_bytes`] is `other("… bytes exceed the max_host_call_bytes
//!   cap of … bytes per host call")`.
//! - `increment` treats a missing key as 0 and stores decimal text, as Spin's Redis store does
//!   and as the `ContextStore` contract requires (Spin's SQLite store writes 8 little-endian
//!   bytes instead); a value that is not a decimal integer is an `other` error.
//! - A CAS handle compares against the value last observed for its key: at `cas.new` and again
//!   at every `cas.current`. `swap` consumes the handle and writes only if the value is still
//!   the observed one (a missing key must still be missing); otherwise it answers
//!   `cas-failed` with a fresh handle that has already observed the latest value. Spin's stores
//!   start watching only at `current` and overwrite unconditionally when `current` was never
//!   called; here a swap without `current` is still checked against the value seen at `new`,
//!   which is what the WIT asks for and only ever turns a lost update into a retry.
//! - Too many open buckets is `other("store table full")`, too many CAS handles
//!   `other("too many compare_and_swaps opened")`; other store failures are `other(message)`.

use std::collections::HashSet;
use std::sync::Arc;

use nexus_context::{ContextStore, Namespace};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

use crate::caps::CallBudget;
use crate::host::key_value::{AgentContext, KeyValueAccess};
use crate::state::HostState;

/// Buckets one instance may hold open at once.
const MAX_OPEN_BUCKETS: usize = 64;
/// CAS handles one instance may hold at once.
const MAX_OPEN_CAS: usize = 256;

/// An open bucket: the resource behind `wasi:keyvalue/store.bucket`.
#[derive(Clone)]
pub struct Bucket {
    backend: Arc<dyn ContextStore>,
    namespace: Namespace,
    budget: CallBudget,
}

/// A compare-and-swap in progress: the resource behind `wasi:keyvalue/atomics.cas`.
pub struct Cas {
    bucket: Bucket,
    key: String,
    /// The value last observed for `key` (`None`: the key did not exist).
    observed: Option<Vec<u8>>,
}

/// Why an operation failed, before it becomes a `wasi:keyvalue/store.error`.
#[derive(Debug)]
enum Failure {
    AccessDenied,
    Other(String),
}

impl From<nexus_context::Error> for Failure {
    fn from(error: nexus_context::Error) -> Self {
        Self::Other(error.to_string())
    }
}

impl Bucket {
    fn within_budget(&self, bytes: usize) -> Result<(), Failure> {
        self.budget.check(bytes).map_err(Failure::Other)
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Failure> {
        let value = self.backend.get(&self.namespace, key).await?;
        if let Some(value) = &value {
            self.within_budget(value.len())?;
        }
        Ok(value)
    }

    async fn set(&self, key: &str, value: &[u8]) -> Result<(), Failure> {
        self.within_budget(value.len())?;
        Ok(self.backend.set(&self.namespace, key, value, None).await?)
    }

    async fn delete(&self, key: &str) -> Result<(), Failure> {
        self.backend.delete(&self.namespace, key).await?;
        Ok(())
    }

    async fn exists(&self, key: &str) -> Result<bool, Failure> {
        Ok(self.backend.exists(&self.namespace, key).await?)
    }

    async fn list_keys(&self, cursor: Option<String>) -> Result<Vec<String>, Failure> {
        if cursor.is_some() {
            return Err(Failure::Other("list_keys: cursor not supported".to_owned()));
        }
        let keys = self.backend.keys(&self.namespace).await?;
        self.within_budget(keys.iter().map(String::len).fold(0, usize::saturating_add))?;
        Ok(keys)
    }

    async fn get_many(&self, keys: Vec<String>) -> Result<Vec<(String, Option<Vec<u8>>)>, Failure> {
        let mut seen = HashSet::with_capacity(keys.len());
        let mut found = Vec::new();
        let mut bytes = 0_usize;
        for key in keys {
            if !seen.insert(key.clone()) {
                continue;
            }
            if let Some(value) = self.get(&key).await? {
                bytes = bytes.saturating_add(key.len().saturating_add(value.len()));
                self.within_budget(bytes)?;
                found.push((key, Some(value)));
            }
        }
        Ok(found)
    }

    async fn set_many(&self, entries: Vec<(String, Vec<u8>)>) -> Result<(), Failure> {
        self.within_budget(
            entries
                .iter()
                .map(|(key, value)| key.len().saturating_add(value.len()))
                .fold(0, usize::saturating_add),
        )?;
        for (key, value) in entries {
            self.set(&key, &value).await?;
        }
        Ok(())
    }

    async fn delete_many(&self, keys: Vec<String>) -> Result<(), Failure> {
        for key in keys {
            self.delete(&key).await?;
        }
        Ok(())
    }

    async fn increment(&self, key: &str, delta: i64) -> Result<i64, Failure> {
        Ok(self.backend.increment(&self.namespace, key, delta).await?)
    }

    /// A CAS on `key` that has observed its current value.
    async fn observe(&self, key: String) -> Result<Cas, Failure> {
        let observed = self.get(&key).await?;
        Ok(Cas {
            bucket: self.clone(),
            key,
            observed,
        })
    }
}

/// How a swap ended, before it becomes a `wasi:keyvalue/atomics.cas-error`.
enum SwapOutcome {
    Swapped,
    /// The value changed since it was observed; here is a CAS that observed the new one.
    Conflict(Cas),
}

impl Cas {
    async fn swap(self, value: &[u8]) -> Result<SwapOutcome, Failure> {
        self.bucket.within_budget(value.len())?;
        let swapped = self
            .bucket
            .backend
            .compare_and_swap(
                &self.bucket.namespace,
                &self.key,
                self.observed.as_deref(),
                value,
            )
            .await?;
        if swapped {
            return Ok(SwapOutcome::Swapped);
        }
        let fresh = self.bucket.observe(self.key).await?;
        Ok(SwapOutcome::Conflict(fresh))
    }
}

/// The per-instance state of this capability.
#[derive(Default)]
pub struct WasiKeyValueState {
    open_buckets: usize,
    open_cas: usize,
}

/// What the host functions see of the store data.
pub struct WasiKeyValueView<'a> {
    access: &'a KeyValueAccess,
    agent: Option<&'a AgentContext>,
    state: &'a mut WasiKeyValueState,
    table: &'a mut ResourceTable,
}

impl WasiKeyValueView<'_> {
    fn open(&mut self, identifier: &str) -> Result<Resource<Bucket>, Failure> {
        let Some((backend, namespace)) = self.access.resolve(identifier, self.agent) else {
            return Err(Failure::AccessDenied);
        };
        let table_full = || Failure::Other("store table full".to_owned());
        if self.state.open_buckets >= MAX_OPEN_BUCKETS {
            return Err(table_full());
        }
        let handle = self
            .table
            .push(Bucket {
                backend,
                namespace,
                budget: self.access.budget().clone(),
            })
            .map_err(|_| table_full())?;
        self.state.open_buckets += 1;
        Ok(handle)
    }

    fn bucket(&self, handle: &Resource<Bucket>) -> wasmtime::Result<Bucket> {
        Ok(self.table.get(handle)?.clone())
    }

    fn close_bucket(&mut self, handle: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(handle)?;
        self.state.open_buckets = self.state.open_buckets.saturating_sub(1);
        Ok(())
    }

    fn push_cas(&mut self, cas: Cas) -> Result<Resource<Cas>, Failure> {
        let too_many = || Failure::Other("too many compare_and_swaps opened".to_owned());
        if self.state.open_cas >= MAX_OPEN_CAS {
            return Err(too_many());
        }
        let handle = self.table.push(cas).map_err(|_| too_many())?;
        self.state.open_cas += 1;
        Ok(handle)
    }

    fn take_cas(&mut self, handle: Resource<Cas>) -> wasmtime::Result<Cas> {
        let cas = self.table.delete(handle)?;
        self.state.open_cas = self.state.open_cas.saturating_sub(1);
        Ok(cas)
    }
}

/// [`HasData`] marker for this capability.
pub struct WasiKeyValue;

impl HasData for WasiKeyValue {
    type Data<'a> = WasiKeyValueView<'a>;
}

impl HostState {
    fn wasi_key_value(&mut self) -> WasiKeyValueView<'_> {
        WasiKeyValueView {
            access: &self.env.key_value,
            agent: self
                .invocation
                .as_ref()
                .and_then(|invocation| invocation.agent.as_ref()),
            state: &mut self.wasi_key_value,
            table: &mut self.table,
        }
    }
}

/// Adds `store`, `atomics` and `batch` to `linker`.
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    use bindings::wasi::keyvalue::{atomics, batch, store};
    store::add_to_linker::<HostState, WasiKeyValue>(linker, HostState::wasi_key_value)?;
    atomics::add_to_linker::<HostState, WasiKeyValue>(linker, HostState::wasi_key_value)?;
    batch::add_to_linker::<HostState, WasiKeyValue>(linker, HostState::wasi_key_value)?;
    Ok(())
}

mod bindings;

#[cfg(test)]
mod tests {
    use nexus_context::MemoryStore;

    use super::*;

    fn bucket() -> Bucket {
        Bucket {
            backend: Arc::new(MemoryStore::new()),
            namespace: Namespace::new(["app", "default"]),
            budget: CallBudget::new(&crate::Limits::default(), Arc::default()),
        }
    }

    async fn value(bucket: &Bucket, key: &str) -> Option<String> {
        let bytes = bucket.get(key).await.unwrap()?;
        Some(String::from_utf8(bytes).unwrap())
    }

    #[tokio::test]
    async fn list_keys_answers_one_page_and_refuses_cursors() {
        let bucket = bucket();
        bucket.set("a", b"1").await.unwrap();
        assert_eq!(bucket.list_keys(None).await.unwrap(), ["a"]);
        let refused = bucket.list_keys(Some("0".to_owned())).await;
        assert!(
            matches!(&refused, Err(Failure::Other(message)) if message == "list_keys: cursor not supported"),
            "{refused:?}"
        );
    }

    #[tokio::test]
    async fn get_many_answers_existing_keys_once_in_request_order() {
        let bucket = bucket();
        bucket
            .set_many(vec![
                ("b".into(), b"2".to_vec()),
                ("a".into(), b"1".to_vec()),
            ])
            .await
            .unwrap();
        let found = bucket
            .get_many(vec!["b".into(), "missing".into(), "a".into(), "b".into()])
            .await
            .unwrap();
        assert_eq!(
            found,
            [
                ("b".to_owned(), Some(b"2".to_vec())),
                ("a".to_owned(), Some(b"1".to_vec())),
            ]
        );
        bucket
            .delete_many(vec!["a".into(), "missing".into()])
            .await
            .unwrap();
        assert_eq!(bucket.list_keys(None).await.unwrap(), ["b"]);
    }

    #[tokio::test]
    async fn swap_writes_when_the_observed_value_is_unchanged() {
        let bucket = bucket();
        bucket.set("k", b"old").await.unwrap();
        let cas = bucket.observe("k".into()).await.unwrap();
        assert_eq!(cas.observed.as_deref(), Some(&b"old"[..]));
        assert!(matches!(cas.swap(b"new").await, Ok(SwapOutcome::Swapped)));
        assert_eq!(value(&bucket, "k").await.as_deref(), Some("new"));

        // A missing key is created.
        let cas = bucket.observe("fresh".into()).await.unwrap();
        assert_eq!(cas.observed, None);
        assert!(matches!(cas.swap(b"v").await, Ok(SwapOutcome::Swapped)));
        assert_eq!(value(&bucket, "fresh").await.as_deref(), Some("v"));
    }

    #[tokio::test]
    async fn swap_conflicts_hand_back_a_cas_that_observed_the_new_value() {
        let bucket = bucket();
        for initial in [Some(&b"old"[..]), None] {
            bucket.delete("k").await.unwrap();
            if let Some(initial) = initial {
                bucket.set("k", initial).await.unwrap();
            }
            let cas = bucket.observe("k".into()).await.unwrap();
            bucket.set("k", b"theirs").await.unwrap();
            let Ok(SwapOutcome::Conflict(fresh)) = cas.swap(b"mine").await else {
                panic!("{initial:?}: expected a conflict");
            };
            assert_eq!(value(&bucket, "k").await.as_deref(), Some("theirs"));
            assert_eq!(fresh.observed.as_deref(), Some(&b"theirs"[..]));
            assert!(matches!(
                fresh.swap(b"mine").await,
                Ok(SwapOutcome::Swapped)
            ));
            assert_eq!(value(&bucket, "k").await.as_deref(), Some("mine"));
        }
    }

    #[tokio::test]
    async fn increment_counts_from_zero_in_decimal_text() {
        let bucket = bucket();
        assert_eq!(bucket.increment("n", 10).await.unwrap(), 10);
        assert_eq!(bucket.increment("n", -15).await.unwrap(), -5);
        assert_eq!(value(&bucket, "n").await.as_deref(), Some("-5"));
        bucket.set("word", b"abc").await.unwrap();
        assert!(matches!(
            bucket.increment("word", 1).await,
            Err(Failure::Other(_))
        ));
    }
}
