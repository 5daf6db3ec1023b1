//! The TTL cache in front of Vault: a fresh entry costs no request; concurrent misses for one
//! key wait for one fetch; an expired entry is never answered, whatever Vault does.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::Secret;

/// What time it is, for TTLs and token leases.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> Instant;
}

/// The system's monotonic clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told, so tests expire entries without waiting.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Instant>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            now: Mutex::new(Instant::now()),
        }
    }
}

impl ManualClock {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        *self
            .now
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A value read (`None`: Vault has no such secret), and until when it may be used.
struct Entry {
    value: Option<Secret>,
    expires: Instant,
}

/// Values by key for a TTL, with one fetch in flight per key.
pub(crate) struct Cache {
    ttl: Duration,
    clock: Arc<dyn Clock>,
    entries: Mutex<HashMap<String, Entry>>,
    fetches: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Cache {
    pub(crate) fn new(ttl: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            ttl,
            clock,
            entries: Mutex::default(),
            fetches: Mutex::default(),
        }
    }

    fn fresh(&self, key: &str) -> Option<Option<Secret>> {
        let entries = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        entries
            .get(key)
            .filter(|entry| self.clock.now() < entry.expires)
            .map(|entry| entry.value.clone())
    }

    /// The value of `key`: cached while fresh, else what `fetch` gives (cached when it
    /// succeeds). A failed fetch leaves no value behind: the caller gets the error.
    pub(crate) async fn get_or_fetch<F, Fut, E>(
        &self,
        key: &str,
        fetch: F,
    ) -> Result<Option<Secret>, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Option<Secret>, E>>,
    {
        if let Some(value) = self.fresh(key) {
            return Ok(value);
        }
        let flight = Arc::clone(
            self.fetches
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .entry(key.to_owned())
                .or_default(),
        );
        let fetched = {
            let _turn = flight.lock().await;
            // Whoever held the turn before may have just filled the entry.
            if let Some(value) = self.fresh(key) {
                return Ok(value);
            }
            let fetched = fetch().await;
            let mut entries = self
                .entries
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            match &fetched {
                Ok(value) => {
                    entries.insert(
                        key.to_owned(),
                        Entry {
                            value: value.clone(),
                            expires: self.clock.now() + self.ttl,
                        },
                    );
                }
                Err(_) => {
                    entries.remove(key);
                }
            }
            fetched
        };
        let mut fetches = self
            .fetches
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // The map's reference and this one: nobody else waits, so the slot can go.
        if Arc::strong_count(&flight) == 2 {
            fetches.remove(key);
        }
        fetched
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn fresh_entries_cost_nothing_and_expired_ones_are_fetched_again() {
        let clock = Arc::new(ManualClock::default());
        let cache = Cache::new(Duration::from_secs(10), Arc::clone(&clock) as _);
        let fetches = std::sync::atomic::AtomicUsize::new(0);
        let fetch = |value: &'static str| {
            fetches.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { Ok::<_, ()>(Some(Secret::new(value.to_owned()))) }
        };
        let first = cache.get_or_fetch("k", || fetch("one")).await.unwrap();
        let second = cache.get_or_fetch("k", || fetch("two")).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(fetches.load(std::sync::atomic::Ordering::SeqCst), 1);
        clock.advance(Duration::from_secs(10));
        let third = cache.get_or_fetch("k", || fetch("two")).await.unwrap();
        assert_eq!(third.unwrap().expose(), "two");
        clock.advance(Duration::from_secs(11));
        let failed = cache
            .get_or_fetch("k", || async { Err::<Option<Secret>, _>("down") })
            .await;
        assert_eq!(failed.unwrap_err(), "down");
        assert!(cache.fresh("k").is_none());
    }
}
