//! Leases: which coordinator may do a piece of work right now, and for how long. An agent's
//! lease makes one coordinator the writer of its messages; a leader lease, by name, makes one
//! coordinator the runner of singleton work (schedules, the invocation sweep).
//!
//! A lease is a row with its holder, an epoch and an expiry. Taking it over from a holder whose
//! lease expired raises the epoch; the holder extending its own keeps it.

use std::time::Duration;

use chrono::{DateTime, SubsecRound as _, TimeDelta, Utc};

use crate::store::on_tx;
use crate::time::now;
use crate::{AgentId, HolderId, Result, Tx};

/// The longest lease granted.
const MAX_TTL: Duration = Duration::from_secs(24 * 60 * 60);

/// A lease as the taker holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lease {
    /// Grows each time the lease changes hands.
    pub epoch: i64,
    /// Until when it is held unless extended.
    pub expires_at: DateTime<Utc>,
}

/// An agent's lease.
pub type AgentLease = Lease;

/// Why a lease could not be taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseHeld {
    /// When the current holder's lease ends unless it extends it.
    pub until: DateTime<Utc>,
}

/// A leader lease as anyone may read it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct LeaseRow {
    /// Who holds or last held it.
    pub holder: HolderId,
    /// Grows each time the lease changes hands.
    pub epoch: i64,
    /// When it ends unless extended.
    pub expires_at: DateTime<Utc>,
}

/// The lease `holder` gets for `ttl` from now when the row is `current`, or who holds it.
fn take(
    current: Option<LeaseRow>,
    holder: HolderId,
    ttl: Duration,
) -> std::result::Result<Lease, LeaseHeld> {
    let now = now();
    // Capped so that the sum cannot overflow; leases are meant to last seconds.
    let ttl = TimeDelta::from_std(ttl.min(MAX_TTL)).unwrap_or(TimeDelta::zero());
    let expires_at = (now + ttl).trunc_subsecs(6);
    let epoch = match current {
        None => 1,
        Some(row) if row.holder == holder => row.epoch,
        Some(row) if row.expires_at <= now => row.epoch + 1,
        Some(row) => {
            return Err(LeaseHeld {
                until: row.expires_at,
            });
        }
    };
    Ok(Lease { epoch, expires_at })
}

/// Takes or extends the lease in `$table` whose `$key_column` is `$key` (see [`take`]), in the
/// transaction `$tx`: `Ok(Ok(lease))`, or `Ok(Err(LeaseHeld))` as a value so the transaction
/// still commits.
macro_rules! acquire {
    ($tx:expr, $table:literal, $key_column:literal, $key:expr, $holder:expr, $ttl:expr) => {{
        let current: Option<LeaseRow> = on_tx!($tx, conn => sqlx::query_as(concat!(
            "SELECT holder, epoch, expires_at FROM ", $table, " WHERE ", $key_column, " = $1"
        ))
        .bind($key)
        .fetch_optional(conn)
        .await)?;
        match take(current, $holder, $ttl) {
            Err(held) => Ok(Err(held)),
            Ok(lease) => {
                on_tx!($tx, conn => sqlx::query(concat!(
                    "INSERT INTO ", $table, " (", $key_column, ", holder, epoch, expires_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (", $key_column, ") DO UPDATE SET \
                     holder = excluded.holder, epoch = excluded.epoch, \
                     expires_at = excluded.expires_at"
                ))
                .bind($key)
                .bind($holder)
                .bind(lease.epoch)
                .bind(lease.expires_at)
                .execute(conn)
                .await
                .map(drop))?;
                Ok(Ok(lease))
            }
        }
    }};
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
        acquire!(self, "agent_leases", "agent_id", agent, holder, ttl)
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

    /// The leader lease `name` as it stands, held or expired; `None` if no one ever took it.
    pub async fn leader_lease(&mut self, name: &str) -> Result<Option<LeaseRow>> {
        Ok(on_tx!(self, conn => sqlx::query_as(
            "SELECT holder, epoch, expires_at FROM leader_leases WHERE name = $1",
        )
        .bind(name)
        .fetch_optional(conn)
        .await)?)
    }

    /// Takes the leader lease `name` for `holder` for `ttl` from now, or extends it when
    /// `holder` already has it; `Err(LeaseHeld)` while another holder's has not expired.
    pub async fn acquire_leader_lease(
        &mut self,
        name: &str,
        holder: HolderId,
        ttl: Duration,
    ) -> Result<std::result::Result<Lease, LeaseHeld>> {
        acquire!(self, "leader_leases", "name", name, holder, ttl)
    }

    /// Ends `holder`'s leader lease `name` now, keeping its epoch, so another replica takes it
    /// at its next try; returns whether `holder` had it.
    pub async fn release_leader_lease(&mut self, name: &str, holder: HolderId) -> Result<bool> {
        let released = on_tx!(self, conn => sqlx::query(
            "UPDATE leader_leases SET expires_at = $3 WHERE name = $1 AND holder = $2",
        )
        .bind(name)
        .bind(holder)
        .bind(now())
        .execute(conn)
        .await
        .map(|result| result.rows_affected()))?;
        Ok(released > 0)
    }
}
