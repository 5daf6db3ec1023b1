//! Leadership among coordinator replicas that share one database: singleton work (firing
//! schedules, the invocation sweep with its lease reaping and dead-letter moves, retention)
//! runs only on the holder of the leader lease, a row in the database that the holder renews
//! every second. Any replica serves the API and the triggers.
//!
//! A replica that dies stops renewing, and another takes the lease over once it has run out
//! (within [`LeaderConfig::ttl`] plus one renewal). A replica counts itself leader only until
//! the expiry it measured from before its last successful renewal, so it stops acting before
//! anyone else may start. The singleton work is safe against the moment of overlap a paused
//! process could still cause: a schedule's tick moves on by compare-and-set, and an
//! invocation's attempts by epoch.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use nexus_store::{HolderId, Store};
use tokio::sync::watch;
use tokio::time::Instant;

use crate::metrics::Metrics;

/// The name of the lease singleton work runs under.
pub const LEADER_LEASE: &str = "coordinator";

/// How leadership is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderConfig {
    /// How long the lease holds without renewal: the longest a dead leader's work waits.
    pub ttl: Duration,
    /// How often the holder renews it, and the others try to take it.
    pub renew_every: Duration,
}

impl Default for LeaderConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(3),
            renew_every: Duration::from_secs(1),
        }
    }
}

/// This replica's term as leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Term {
    /// The lease's epoch: grows with each change of leader.
    pub epoch: i64,
    /// Until when, by this process's clock, it may act as leader.
    pub until: Instant,
}

/// Whether this replica leads; cheap to clone.
#[derive(Clone)]
pub struct Leadership {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<Store>,
    holder: HolderId,
    config: LeaderConfig,
    term: watch::Sender<Option<Term>>,
    /// Set by [`Leadership::release`]: the lease is no longer sought.
    released: AtomicBool,
}

impl Leadership {
    /// Leadership over `store`, not yet sought: [`Leadership::start`] seeks it.
    pub fn new(store: Arc<Store>, config: LeaderConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                holder: HolderId::new(),
                config,
                term: watch::Sender::new(None),
                released: AtomicBool::new(false),
            }),
        }
    }

    /// Who this replica is in the lease's row.
    pub fn holder(&self) -> HolderId {
        self.inner.holder
    }

    /// Whether this replica leads now.
    pub fn is_leader(&self) -> bool {
        self.term().is_some()
    }

    /// The current term, while it lasts.
    pub fn term(&self) -> Option<Term> {
        self.inner
            .term
            .borrow()
            .filter(|term| term.until > Instant::now())
    }

    /// Shows `nexus_coordinator_leader` (1 while this replica leads) in `metrics`.
    pub fn observe(&self, metrics: &Metrics) {
        let leadership = self.clone();
        nexus_telemetry::metrics::sampled_gauge(
            metrics.registry(),
            "nexus_coordinator_leader",
            "1 while this coordinator holds the leader lease and runs the singleton work (schedules, the invocation sweep, judging rollouts).",
            move || i64::from(leadership.is_leader()),
        );
    }

    /// Seeks and keeps the lease every [`LeaderConfig::renew_every`], for as long as the
    /// runtime runs and anyone holds this `Leadership`, or until [`Leadership::release`].
    pub fn start(&self) {
        let inner = Arc::downgrade(&self.inner);
        let every = self.inner.config.renew_every;
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(inner) = inner.upgrade() else { return };
                if inner.released.load(Ordering::Acquire) {
                    return;
                }
                inner.renew().await;
            }
        });
    }

    /// Gives the lease up, so that another replica takes over at its next try instead of
    /// waiting for the lease to run out. For a clean shutdown.
    pub async fn release(&self) {
        let inner = &self.inner;
        inner.released.store(true, Ordering::Release);
        inner.term.send_replace(None);
        let (name, holder) = (LEADER_LEASE, inner.holder);
        let released = inner
            .store
            .with_retry(|tx| Box::pin(async move { tx.release_leader_lease(name, holder).await }))
            .await;
        if let Err(error) = released {
            tracing::warn!(%error, "could not give the leader lease up; it runs out instead");
        }
    }
}

impl Inner {
    async fn renew(&self) {
        // Measured before asking: the lease runs from no earlier than this.
        let asked = Instant::now();
        let (holder, ttl) = (self.holder, self.config.ttl);
        let taken = self
            .store
            .with_retry(|tx| {
                Box::pin(async move { tx.acquire_leader_lease(LEADER_LEASE, holder, ttl).await })
            })
            .await;
        if self.released.load(Ordering::Acquire) {
            return;
        }
        let was = *self.term.borrow();
        let term = match taken {
            Ok(Ok(lease)) => Some(Term {
                epoch: lease.epoch,
                until: asked + ttl,
            }),
            Ok(Err(_held)) => None,
            Err(error) => {
                tracing::warn!(%error, "could not renew the leader lease");
                // The term as it was: it lapses by itself when its time is up.
                was
            }
        };
        match (was.map(|term| term.epoch), term.map(|term| term.epoch)) {
            (None, Some(epoch)) => tracing::info!(epoch, "this coordinator leads"),
            (Some(epoch), None) => tracing::info!(epoch, "this coordinator no longer leads"),
            _ => {}
        }
        self.term.send_replace(term);
    }
}
