//! Agent leases: which coordinator may run an agent's messages right now, and for how long.
//!
//! A lease is a row per agent with its holder, an epoch and an expiry. Taking it over from a
//! holder whose lease expired raises the epoch; the holder extending its own keeps it.

use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};

use crate::store::on_tx;
use crate::time::now;
use crate::{AgentId, HolderId, Result, Tx};

/// The longest lease granted.
const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// A lease as the taker holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentLease {
    /// Grows each time the lease changes hands.
    pub epoch: i64,
    /// Until when it is held unless extended.
    pub expires_at: DateTime<Utc>,
}

/// Why a lease could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseHeld {
    /// When the current holder's lease ends unless it extends it.
    pub until: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct LeaseRow {
    holder: HolderId,
    epoch: i64,
    expires_at: DateTime<Utc>,
}

impl Tx<'_> {
    /// Takes the agent's lease for `holder` for `ttl` from now, or extends it to that when
    /// `holder` already has it. Answers `Err(LeaseHeld)` (as a value, so the transaction still commits)
    /// when another holder's lease has not expired. The agent must exist.
    pub async fn acquire_agent_lease(
        &mut self,
        agent: AgentId,
        holder: HolderId,
        ttl: Duration,
    ) -> Result<std::result::Result<AgentLease, LeaseHeld>> {
        let now = now();
        // Capped so that the sum cannot overflow; leases are meant to last seconds.
        let ttl = TimeDelta::from_std(ttl.min(MAX_TTL)).unwrap_or(TimeDelta::zero());
        let expires_at = (now + ttl).trunc_subsecs(6);
        let current: Option<LeaseRow> = on_tx!(self, conn => sqlx::query_as(
            "SELECT holder, epoch, expires_at FROM agent_leases WHERE agent_id = $1",
        )
        .bind(agent)
        .fetch_optional(conn)
        .await)?;
        let epoch = match current {
            None => 1,
            Some(row) if row.holder == holder => row.epoch,
            Some(row) if row.expires_at <= now => row.epoch + 1,
            Some(row) => {
                return Ok(Err(LeaseHeld {
                    until: row.expires_at,
                }));
            }
        };
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO agent_leases (agent_id, holder, epoch, expires_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (agent_id) DO UPDATE SET holder = excluded.holder, \
             epoch = excluded.epoch, expires_at = excluded.expires_at",
        )
        .bind(agent)
        .bind(holder)
        .bind(epoch)
        .bind(expires_at)
        .execute(conn)
        .await
        .map(drop))?;
        Ok(Ok(AgentLease { epoch, expires_at }))
    }

    /// Gives the agent's lease up if `holder` has it; returns whether it did.
    pub async fn release_agent_lease(&mut self, agent: AgentId, holder: HolderId) -> Result<bool> {
        let released = on_tx!(self, conn => sqlx::query(
            "DELETE FROM agent_leases WHERE agent_id = $1 AND holder = $2",
        )
        .bind(agent)
        .bind(holder)
        .execute(conn)
        .await
        .map(|result| result.rows_affected()))?;
        Ok(released > 0)
    }
}
