//! One writer per agent. Messages to an agent take turns: in this process they queue in arrival
//! order (tokio's mutex serves waiters first come, first served), and a turn starts only while
//! this process holds the agent's lease in the database, so no other coordinator runs a message
//! for the same agent at the same time.
//!
//! A busy agent keeps its lease: it is taken once, extended when less than half of it is left,
//! and given up after the agent has had no message for [`LINGER`]. An idle agent holds nothing
//! in memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use chrono::Utc;
use nexus_store::{AgentId, AgentLease, HolderId, Store};
use tokio::sync::{Mutex as TurnLock, OwnedMutexGuard};
use tokio::time::Instant;

use crate::error::ApiError;

/// How long a lease lasts unless extended. A coordinator that dies holding one keeps its
/// agents waiting this long at most.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// How long an agent with no message keeps its lease and its place in memory.
pub const LINGER: Duration = Duration::from_secs(2);
/// Messages one agent may have waiting; beyond this a message is refused (429).
pub const MAX_WAITING: usize = 10_000;
/// How often a message waiting for another coordinator's lease looks again.
const LEASE_POLL: Duration = Duration::from_millis(100);

/// The agents with messages running or waiting in this process.
pub struct Mailboxes {
    store: Arc<Store>,
    holder: HolderId,
    open: Mutex<HashMap<AgentId, Arc<Mailbox>>>,
}

struct Mailbox {
    turn: Arc<TurnLock<Held>>,
    /// Messages waiting for or holding the turn.
    waiting: AtomicUsize,
    /// A task is waiting to give the lease up once the agent is idle.
    lingering: AtomicBool,
}

/// What the holder of the turn knows.
struct Held {
    lease: Option<AgentLease>,
    last_turn: Instant,
}

/// The right to run one message for an agent; the next message's turn starts when it drops.
pub struct Turn {
    _guard: OwnedMutexGuard<Held>,
    _entered: Entered,
    /// The epoch of the lease it runs under.
    pub epoch: i64,
}

/// Counts a message as waiting until it is dropped; the last one out starts the linger.
struct Entered {
    agent: AgentId,
    mailbox: Arc<Mailbox>,
    mailboxes: Arc<Mailboxes>,
}

impl Drop for Entered {
    fn drop(&mut self) {
        if self.mailbox.waiting.fetch_sub(1, Ordering::AcqRel) == 1
            && !self.mailbox.lingering.swap(true, Ordering::AcqRel)
        {
            let (mailboxes, agent) = (Arc::clone(&self.mailboxes), self.agent);
            let mailbox = Arc::clone(&self.mailbox);
            tokio::spawn(async move { mailboxes.linger(agent, mailbox).await });
        }
    }
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
                Arc::new(Mailbox {
                    turn: Arc::new(TurnLock::new(Held {
                        lease: None,
                        last_turn: Instant::now(),
                    })),
                    waiting: AtomicUsize::new(0),
                    lingering: AtomicBool::new(false),
                })
            });
            if mailbox.waiting.load(Ordering::Acquire) >= MAX_WAITING {
                return Err(agent_busy(format!(
                    "the agent has {MAX_WAITING} messages waiting"
                )));
            }
            // Counted under the map's lock, so the linger never removes a mailbox someone is
            // about to wait on.
            mailbox.waiting.fetch_add(1, Ordering::AcqRel);
            Arc::clone(mailbox)
        };
        let entered = Entered {
            agent,
            mailbox: Arc::clone(&mailbox),
            mailboxes: Arc::clone(self),
        };
        let mut guard = tokio::time::timeout_at(deadline, Arc::clone(&mailbox.turn).lock_owned())
            .await
            .map_err(|_| {
                agent_busy("the agent's earlier messages did not finish in time".into())
            })?;
        guard.last_turn = Instant::now();
        let lease = self.hold_lease(agent, &mut guard, deadline).await?;
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
        agent: AgentId,
        held: &mut Held,
        deadline: Instant,
    ) -> Result<AgentLease, ApiError> {
        let half = chrono::TimeDelta::from_std(LEASE_TTL / 2).unwrap_or_default();
        loop {
            if let Some(lease) = held.lease
                && lease.expires_at - Utc::now() > half
            {
                return Ok(lease);
            }
            let holder = self.holder;
            let taken = self
                .store
                .with_retry(|tx| {
                    Box::pin(async move { tx.acquire_agent_lease(agent, holder, LEASE_TTL).await })
                })
                .await;
            match taken {
                Ok(Ok(lease)) => {
                    held.lease = Some(lease);
                    return Ok(lease);
                }
                Ok(Err(_held_elsewhere)) => {
                    held.lease = None;
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

    /// Once the agent has had no message for [`LINGER`], gives its lease up and forgets it.
    async fn linger(&self, agent: AgentId, mailbox: Arc<Mailbox>) {
        loop {
            let mut held = Arc::clone(&mailbox.turn).lock_owned().await;
            let idle_since = held.last_turn;
            if mailbox.waiting.load(Ordering::Acquire) == 0 && idle_since.elapsed() >= LINGER {
                if held.lease.take().is_some() {
                    self.release(agent).await;
                }
                let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
                if mailbox.waiting.load(Ordering::Acquire) == 0 {
                    open.remove(&agent);
                    mailbox.lingering.store(false, Ordering::Release);
                    return;
                }
            }
            drop(held);
            tokio::time::sleep_until(idle_since.max(Instant::now()) + LINGER).await;
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

    /// Agents with messages running or waiting, or lingering: what this process holds in memory.
    pub fn open(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
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
