//! One writer per agent. Messages to an agent take turns: in this process they queue in arrival
//! order (tokio's mutex serves waiters first come, first served), and a turn starts only while
//! this process holds the agent's lease in the database, so no other coordinator runs a message
//! for the same agent at the same time.
//!
//! An agent with messages has a keeper task: it extends the lease while the agent is busy (also
//! during a long message), and once the agent has had no message for [`LINGER`] it gives the
//! lease up and forgets the agent. An idle agent holds nothing in memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use chrono::{TimeDelta, Utc};
use nexus_store::{AgentId, AgentLease, HolderId, Store};
use tokio::sync::{Mutex as TurnLock, OwnedMutexGuard};
use tokio::time::Instant;

use crate::error::ApiError;

/// How long a lease lasts unless extended: a coordinator that dies holding one keeps its
/// agents waiting this long at most.
pub const LEASE_TTL: Duration = Duration::from_secs(10);
/// How long an agent with no message keeps its lease and its place in memory.
pub const LINGER: Duration = Duration::from_secs(2);
/// Messages one agent may have waiting; beyond this a message is refused (429).
pub const MAX_WAITING: usize = 10_000;
/// How often a keeper looks at its agent.
const KEEP_EVERY: Duration = Duration::from_secs(1);
/// How often a message waiting for another coordinator's lease looks again.
const LEASE_POLL: Duration = Duration::from_millis(100);

/// The agents with messages running or waiting in this process.
pub struct Mailboxes {
    store: Arc<Store>,
    holder: HolderId,
    open: Mutex<HashMap<AgentId, Arc<Mailbox>>>,
}

struct Mailbox {
    agent: AgentId,
    turn: Arc<TurnLock<()>>,
    /// This process's lease on the agent, while it has one.
    lease: Mutex<Option<AgentLease>>,
    /// Messages waiting for or holding the turn.
    waiting: AtomicUsize,
    /// When the last turn started or ended.
    last_turn: Mutex<Instant>,
}

impl Mailbox {
    fn lease(&self) -> Option<AgentLease> {
        *self.lease.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set_lease(&self, lease: Option<AgentLease>) {
        *self.lease.lock().unwrap_or_else(PoisonError::into_inner) = lease;
    }

    fn touch(&self) {
        *self
            .last_turn
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    fn idle_for(&self) -> Duration {
        self.last_turn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .elapsed()
    }

    fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

/// The right to run one message for an agent; the next message's turn starts when it drops.
pub struct Turn {
    _guard: OwnedMutexGuard<()>,
    _entered: Entered,
    /// The epoch of the lease it runs under.
    pub epoch: i64,
}

/// Counts a message as waiting until it is dropped.
struct Entered(Arc<Mailbox>);

impl Drop for Entered {
    fn drop(&mut self) {
        self.0.touch();
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whether `lease` has at least half of its time left.
fn fresh(lease: &AgentLease) -> bool {
    let half = TimeDelta::from_std(LEASE_TTL / 2).unwrap_or_default();
    lease.expires_at - Utc::now() > half
}

impl Mailboxes {
    /// Mailboxes whose leases are recorded in `store`, held as `holder`.
    pub fn new(store: Arc<Store>, holder: HolderId) -> Self {
        Self {
            store,
            holder,
            open: Mutex::default(),
        }
    }

    /// Waits for `agent`'s turn, in arrival order, until `deadline`.
    pub async fn enter(
        self: &Arc<Self>,
        agent: AgentId,
        deadline: Instant,
    ) -> Result<Turn, ApiError> {
        let mailbox = {
            let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
            let mailbox = open.entry(agent).or_insert_with(|| {
                let mailbox = Arc::new(Mailbox {
                    agent,
                    turn: Arc::new(TurnLock::new(())),
                    lease: Mutex::new(None),
                    waiting: AtomicUsize::new(0),
                    last_turn: Mutex::new(Instant::now()),
                });
                let (mailboxes, kept) = (Arc::clone(self), Arc::clone(&mailbox));
                tokio::spawn(async move { mailboxes.keep(kept).await });
                mailbox
            });
            if mailbox.waiting() >= MAX_WAITING {
                return Err(agent_busy(format!(
                    "the agent has {MAX_WAITING} messages waiting"
                )));
            }
            // Counted under the map's lock, so the keeper never forgets a mailbox someone is
            // about to wait on.
            mailbox.waiting.fetch_add(1, Ordering::AcqRel);
            Arc::clone(mailbox)
        };
        let entered = Entered(Arc::clone(&mailbox));
        let guard = tokio::time::timeout_at(deadline, Arc::clone(&mailbox.turn).lock_owned())
            .await
            .map_err(|_| {
                agent_busy("the agent's earlier messages did not finish in time".into())
            })?;
        mailbox.touch();
        let lease = self.hold_lease(&mailbox, deadline).await?;
        Ok(Turn {
            _guard: guard,
            _entered: entered,
            epoch: lease.epoch,
        })
    }

    /// The agent's lease, taken or extended when less than half of it is left; waits while
    /// another coordinator holds it.
    async fn hold_lease(
        &self,
        mailbox: &Mailbox,
        deadline: Instant,
    ) -> Result<AgentLease, ApiError> {
        loop {
            if let Some(lease) = mailbox.lease().filter(fresh) {
                return Ok(lease);
            }
            match self.acquire(mailbox).await {
                Ok(Some(lease)) => return Ok(lease),
                Ok(None) => {
                    let retry_at = Instant::now() + LEASE_POLL;
                    if retry_at >= deadline {
                        return Err(agent_busy(
                            "another coordinator is running the agent's messages".into(),
                        ));
                    }
                    tokio::time::sleep_until(retry_at).await;
                }
                Err(nexus_store::Error::NotFound { .. }) => {
                    return Err(ApiError::not_found("agent"));
                }
                Err(error) => return Err(error.into()),
            }
        }
    }

    /// Takes or extends the lease; `None` while another coordinator holds it.
    async fn acquire(&self, mailbox: &Mailbox) -> Result<Option<AgentLease>, nexus_store::Error> {
        let (agent, holder) = (mailbox.agent, self.holder);
        let taken = self
            .store
            .with_retry(|tx| {
                Box::pin(async move { tx.acquire_agent_lease(agent, holder, LEASE_TTL).await })
            })
            .await?
            .ok();
        mailbox.set_lease(taken);
        Ok(taken)
    }

    /// Extends the lease while the agent is busy; once it has been idle for [`LINGER`], gives
    /// the lease up and forgets the agent.
    async fn keep(&self, mailbox: Arc<Mailbox>) {
        loop {
            tokio::time::sleep(KEEP_EVERY).await;
            if mailbox.waiting() == 0 && mailbox.idle_for() >= LINGER {
                // With the turn held, no message can start under the lease while it goes.
                let _turn = mailbox.turn.lock().await;
                if mailbox.waiting() > 0 {
                    continue;
                }
                if mailbox.lease().is_some() {
                    mailbox.set_lease(None);
                    self.release(mailbox.agent).await;
                }
                let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
                if mailbox.waiting() == 0 {
                    open.remove(&mailbox.agent);
                    return;
                }
            } else if mailbox.lease().is_some_and(|lease| !fresh(&lease)) {
                match self.acquire(&mailbox).await {
                    Ok(Some(_)) => {}
                    Ok(None) => tracing::warn!(
                        agent = %mailbox.agent,
                        "lost an agent's lease to another coordinator during a message"
                    ),
                    Err(error) => {
                        tracing::warn!(%error, agent = %mailbox.agent, "could not extend an agent's lease");
                    }
                }
            }
        }
    }

    async fn release(&self, agent: AgentId) {
        let holder = self.holder;
        let released = self
            .store
            .with_retry(|tx| Box::pin(async move { tx.release_agent_lease(agent, holder).await }))
            .await;
        if let Err(error) = released {
            // The lease runs out by itself; until then the agent waits for this process.
            tracing::warn!(%error, %agent, "could not give an agent's lease up");
        }
    }
}

fn agent_busy(message: String) -> ApiError {
    ApiError::from_runtime(
        StatusCode::TOO_MANY_REQUESTS,
        "agent_busy",
        message,
        Some(Duration::from_secs(1)),
    )
}
