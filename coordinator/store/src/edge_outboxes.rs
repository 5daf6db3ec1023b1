//! Edge nodes' outboxes: how far each has been forwarded. A node sends its entries in order
//! and sends a batch again when it had no answer; the mark moves in the transaction that
//! records the batch, so an entry at or below it is never recorded twice.

use crate::store::on_tx;
use crate::time::now;
use crate::{OutboxId, Result, Tx};

impl Tx<'_> {
    /// The last entry of `outbox` recorded (0 when none was).
    pub async fn outbox_forwarded_through(&mut self, outbox: OutboxId) -> Result<u64> {
        let mark: Option<(i64,)> = on_tx!(self, conn => sqlx::query_as(
            "SELECT forwarded_through FROM edge_outboxes WHERE id = $1",
        )
        .bind(outbox)
        .fetch_optional(conn)
        .await)?;
        Ok(mark.map_or(0, |(mark,)| u64::try_from(mark).unwrap_or(0)))
    }

    /// Records that every entry of `outbox` (on the node named `node_name`) up to `through`
    /// is recorded. The mark never moves back.
    pub async fn set_outbox_forwarded_through(
        &mut self,
        outbox: OutboxId,
        node_name: &str,
        through: u64,
    ) -> Result<()> {
        let through = i64::try_from(through).unwrap_or(i64::MAX);
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO edge_outboxes (id, node_name, forwarded_through, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO UPDATE SET \
             node_name = excluded.node_name, updated_at = excluded.updated_at, \
             forwarded_through = CASE WHEN excluded.forwarded_through > \
             edge_outboxes.forwarded_through THEN excluded.forwarded_through \
             ELSE edge_outboxes.forwarded_through END",
        )
        .bind(outbox)
        .bind(node_name)
        .bind(through)
        .bind(now())
        .execute(conn)
        .await
        .map(|_| ()))?;
        Ok(())
    }
}
