//! In-process context store: a map behind one mutex.
//!
//! For single-node development and tests. State dies with the process and is not shared
//! between nodes. Every operation is a short, synchronous critical section (the lock is never
//! held across an `.await`), which is what makes `increment` and `compare_and_swap` atomic.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::decimal::apply_increment;
use crate::{ContextStore, MAX_TTL, Namespace, Result, Ttl, check_key, check_value};

/// One stored value.
struct Entry {
    value: Vec<u8>,
    /// `None`: persistent.
    expires_at: Option<Instant>,
}

impl Entry {
    fn is_live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|expires_at| expires_at > now)
    }
}

/// Keys grouped by namespace so that `keys` does not walk other namespaces.
type Namespaces = HashMap<Namespace, HashMap<String, Entry>>;

/// A [`ContextStore`] held in this process's memory.
///
/// Expired keys are dropped lazily: when an operation touches them, and when `keys` lists
/// their namespace. A key that expires and is never touched again stays in memory until then.
#[derive(Default)]
pub struct MemoryStore {
    namespaces: Mutex<Namespaces>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Namespaces> {
        // Each critical section leaves the map consistent before anything can panic, so a
        // poisoned lock still guards valid data.
        self.namespaces
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Values are guest data: show only the shape.
        f.debug_struct("MemoryStore")
            .field("namespaces", &self.lock().len())
            .finish()
    }
}

fn expiry(ttl: Option<Duration>, now: Instant) -> Option<Instant> {
    // An instant the platform cannot represent is further away than any process lives.
    ttl.and_then(|ttl| now.checked_add(ttl.min(MAX_TTL)))
}

/// Removes `key` if it has expired, so that callers only ever see live entries.
fn drop_if_expired(namespaces: &mut Namespaces, namespace: &Namespace, key: &str, now: Instant) {
    let Some(entries) = namespaces.get_mut(namespace) else {
        return;
    };
    if entries.get(key).is_some_and(|entry| !entry.is_live(now)) {
        entries.remove(key);
        if entries.is_empty() {
            namespaces.remove(namespace);
        }
    }
}

fn live_entry<'a>(
    namespaces: &'a mut Namespaces,
    namespace: &Namespace,
    key: &str,
    now: Instant,
) -> Option<&'a mut Entry> {
    drop_if_expired(namespaces, namespace, key, now);
    namespaces.get_mut(namespace)?.get_mut(key)
}

fn insert(namespaces: &mut Namespaces, namespace: &Namespace, key: &str, entry: Entry) {
    namespaces
        .entry(namespace.clone())
        .or_default()
        .insert(key.to_owned(), entry);
}

#[async_trait]
impl ContextStore for MemoryStore {
    async fn get(&self, namespace: &Namespace, key: &str) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        let mut namespaces = self.lock();
        let entry = live_entry(&mut namespaces, namespace, key, Instant::now());
        Ok(entry.map(|entry| entry.value.clone()))
    }

    async fn set(
        &self,
        namespace: &Namespace,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<()> {
        check_key(key)?;
        check_value(value)?;
        let entry = Entry {
            value: value.to_vec(),
            expires_at: expiry(ttl, Instant::now()),
        };
        insert(&mut self.lock(), namespace, key, entry);
        Ok(())
    }

    async fn delete(&self, namespace: &Namespace, key: &str) -> Result<bool> {
        check_key(key)?;
        let now = Instant::now();
        let mut namespaces = self.lock();
        let Some(entries) = namespaces.get_mut(namespace) else {
            return Ok(false);
        };
        let removed = entries.remove(key);
        if entries.is_empty() {
            namespaces.remove(namespace);
        }
        Ok(removed.is_some_and(|entry| entry.is_live(now)))
    }

    async fn exists(&self, namespace: &Namespace, key: &str) -> Result<bool> {
        check_key(key)?;
        let mut namespaces = self.lock();
        Ok(live_entry(&mut namespaces, namespace, key, Instant::now()).is_some())
    }

    async fn keys(&self, namespace: &Namespace) -> Result<Vec<String>> {
        let now = Instant::now();
        let mut namespaces = self.lock();
        let Some(entries) = namespaces.get_mut(namespace) else {
            return Ok(Vec::new());
        };
        entries.retain(|_, entry| entry.is_live(now));
        let keys = entries.keys().cloned().collect();
        if entries.is_empty() {
            namespaces.remove(namespace);
        }
        Ok(keys)
    }

    async fn compare_and_swap(
        &self,
        namespace: &Namespace,
        key: &str,
        expected: Option<&[u8]>,
        new: &[u8],
    ) -> Result<bool> {
        check_key(key)?;
        check_value(new)?;
        let mut namespaces = self.lock();
        let current = live_entry(&mut namespaces, namespace, key, Instant::now());
        let matches = match (expected, current) {
            (None, None) => true,
            (Some(expected), Some(current)) => current.value == expected,
            _ => false,
        };
        if matches {
            let entry = Entry {
                value: new.to_vec(),
                expires_at: None,
            };
            insert(&mut namespaces, namespace, key, entry);
        }
        Ok(matches)
    }

    async fn increment(&self, namespace: &Namespace, key: &str, delta: i64) -> Result<i64> {
        check_key(key)?;
        let mut namespaces = self.lock();
        match live_entry(&mut namespaces, namespace, key, Instant::now()) {
            Some(entry) => {
                let (sum, text) = apply_increment(Some(&entry.value), delta)?;
                // Assigning the value alone keeps `expires_at`, as the contract asks.
                entry.value = text;
                Ok(sum)
            }
            None => {
                let (sum, text) = apply_increment(None, delta)?;
                let entry = Entry {
                    value: text,
                    expires_at: None,
                };
                insert(&mut namespaces, namespace, key, entry);
                Ok(sum)
            }
        }
    }

    async fn ttl(&self, namespace: &Namespace, key: &str) -> Result<Ttl> {
        check_key(key)?;
        let now = Instant::now();
        let mut namespaces = self.lock();
        let ttl = match live_entry(&mut namespaces, namespace, key, now) {
            None => Ttl::Missing,
            Some(Entry {
                expires_at: None, ..
            }) => Ttl::Persistent,
            Some(Entry {
                expires_at: Some(expires_at),
                ..
            }) => {
                let left = expires_at.saturating_duration_since(now);
                // The contract rounds down to milliseconds, like Redis' PTTL.
                let millis = u64::try_from(left.as_millis()).unwrap_or(u64::MAX);
                Ttl::ExpiresIn(Duration::from_millis(millis))
            }
        };
        Ok(ttl)
    }
}
