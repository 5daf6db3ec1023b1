//! The audit log: append-only, hash-chained.
//!
//! Each row's `hash` is sha256 over a domain tag, the previous row's hash and an unambiguous
//! (length-prefixed) encoding of the row's own fields; the first row's previous hash is 32
//! zero bytes. [`Tx::append_audit`] reads the last row and inserts the next one in the same
//! transaction, so two concurrent appends conflict (and one is retried) instead of forking
//! the chain. [`Tx::verify_audit_chain`] recomputes every link and names the first row that
//! was edited, or after which rows were removed. Deleting the newest rows cannot be detected
//! from the table alone: that needs the last hash kept elsewhere.

use chrono::{DateTime, Utc};
use sha2::{Digest as _, Sha256};

use crate::store::on_tx;
use crate::time::now;
use crate::{ProjectId, Result, Tx};

/// The previous hash of the first row.
const GENESIS_HASH: [u8; 32] = [0; 32];
/// Changes if the encoding below ever changes.
const HASH_DOMAIN: &[u8] = b"nexus-audit-v1";
/// Rows read per query while verifying.
const VERIFY_PAGE: i64 = 500;

/// What to record: who did what to what, and how it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAuditEntry {
    /// Who: `user:<id>`, `api_key:<id>`, `system`.
    pub actor: String,
    /// What: `project.create`, `member.remove`, …
    pub action: String,
    /// To what: `project:<id>`, …
    pub target: String,
    /// How it ended: `ok`, `denied`, `error`.
    pub result: String,
    /// The request that did it.
    pub request_id: Option<String>,
    /// The project concerned, for per-project listings.
    pub project_id: Option<ProjectId>,
}

/// One row of the audit log.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditEntry {
    /// Position in the chain, from 1, without gaps.
    pub seq: i64,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// Who.
    pub actor: String,
    /// What.
    pub action: String,
    /// To what.
    pub target: String,
    /// How it ended.
    pub result: String,
    /// The request that did it.
    pub request_id: Option<String>,
    /// The project concerned.
    pub project_id: Option<ProjectId>,
    /// The previous row's `hash`.
    pub prev_hash: Vec<u8>,
    /// sha256 over `prev_hash` and this row's fields.
    pub hash: Vec<u8>,
}

/// The outcome of [`Tx::verify_audit_chain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditVerification {
    /// Rows read.
    pub rows_checked: u64,
    /// The first row at which the chain breaks, if any.
    pub first_broken: Option<BrokenLink>,
}

/// Where and why the chain breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// The row's `seq`.
    pub seq: i64,
    /// What does not match.
    pub reason: String,
}

fn put_text(hasher: &mut Sha256, text: &str) {
    hasher.update((text.len() as u64).to_be_bytes());
    hasher.update(text.as_bytes());
}

fn put_optional_text(hasher: &mut Sha256, text: Option<&str>) {
    match text {
        None => hasher.update([0]),
        Some(text) => {
            hasher.update([1]);
            put_text(hasher, text);
        }
    }
}

/// The hash a row with these contents and this predecessor must carry.
fn link_hash(prev_hash: &[u8], entry: &AuditEntry) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(HASH_DOMAIN);
    hasher.update((prev_hash.len() as u64).to_be_bytes());
    hasher.update(prev_hash);
    hasher.update(entry.seq.to_be_bytes());
    hasher.update(entry.at.timestamp_micros().to_be_bytes());
    put_text(&mut hasher, &entry.actor);
    put_text(&mut hasher, &entry.action);
    put_text(&mut hasher, &entry.target);
    put_text(&mut hasher, &entry.result);
    put_optional_text(&mut hasher, entry.request_id.as_deref());
    match entry.project_id {
        None => hasher.update([0]),
        Some(project_id) => {
            hasher.update([1]);
            hasher.update(project_id.0.as_bytes());
        }
    }
    hasher.finalize().to_vec()
}

#[derive(sqlx::FromRow)]
struct Tail {
    seq: i64,
    hash: Vec<u8>,
}

macro_rules! select_audit {
    ($condition:literal) => {
        concat!(
            "SELECT seq, at, actor, action, target, result, request_id, project_id, prev_hash, \
             hash FROM audit_logs ",
            $condition
        )
    };
}

impl Tx<'_> {
    /// Appends an entry after the current last one and returns it as stored.
    pub async fn append_audit(&mut self, new_entry: &NewAuditEntry) -> Result<AuditEntry> {
        let tail: Option<Tail> = on_tx!(self, conn => sqlx::query_as(
            "SELECT seq, hash FROM audit_logs ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(conn)
        .await)?;
        let (seq, prev_hash) = match tail {
            Some(tail) => (tail.seq + 1, tail.hash),
            None => (1, GENESIS_HASH.to_vec()),
        };
        let mut entry = AuditEntry {
            seq,
            at: now(),
            actor: new_entry.actor.clone(),
            action: new_entry.action.clone(),
            target: new_entry.target.clone(),
            result: new_entry.result.clone(),
            request_id: new_entry.request_id.clone(),
            project_id: new_entry.project_id,
            prev_hash,
            hash: Vec::new(),
        };
        entry.hash = link_hash(&entry.prev_hash, &entry);
        on_tx!(self, conn => sqlx::query(
            "INSERT INTO audit_logs (seq, at, actor, action, target, result, request_id, \
             project_id, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(entry.seq)
        .bind(entry.at)
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.result)
        .bind(&entry.request_id)
        .bind(entry.project_id)
        .bind(&entry.prev_hash)
        .bind(&entry.hash)
        .execute(conn)
        .await
        .map(drop))?;
        Ok(entry)
    }

    /// Up to `limit` entries after `after_seq`, oldest first.
    pub async fn list_audit(&mut self, after_seq: i64, limit: i64) -> Result<Vec<AuditEntry>> {
        let entries = on_tx!(self, conn => sqlx::query_as(select_audit!(
            "WHERE seq > $1 ORDER BY seq LIMIT $2"
        ))
        .bind(after_seq)
        .bind(limit)
        .fetch_all(conn)
        .await)?;
        Ok(entries)
    }

    /// Up to `limit` entries by `actor` after `after_seq`, oldest first.
    pub async fn list_audit_by_actor(
        &mut self,
        actor: &str,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<AuditEntry>> {
        let entries = on_tx!(self, conn => sqlx::query_as(select_audit!(
            "WHERE actor = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        ))
        .bind(actor)
        .bind(after_seq)
        .bind(limit)
        .fetch_all(conn)
        .await)?;
        Ok(entries)
    }

    /// Recomputes the whole chain, oldest first, and reports the first row whose `seq`,
    /// `prev_hash` or `hash` does not follow from the rows before it and its own contents.
    pub async fn verify_audit_chain(&mut self) -> Result<AuditVerification> {
        let mut rows_checked = 0;
        let mut expected_seq = 1;
        let mut expected_prev = GENESIS_HASH.to_vec();
        loop {
            let page = self.list_audit(expected_seq - 1, VERIFY_PAGE).await?;
            let page_len = page.len();
            for entry in page {
                rows_checked += 1;
                let reason = if entry.seq != expected_seq {
                    Some(format!("expected seq {expected_seq}: rows are missing"))
                } else if entry.prev_hash != expected_prev {
                    Some("prev_hash is not the previous row's hash".to_owned())
                } else if entry.hash != link_hash(&entry.prev_hash, &entry) {
                    Some("hash does not match the row's contents".to_owned())
                } else {
                    None
                };
                if let Some(reason) = reason {
                    return Ok(AuditVerification {
                        rows_checked,
                        first_broken: Some(BrokenLink {
                            seq: entry.seq,
                            reason,
                        }),
                    });
                }
                expected_seq += 1;
                expected_prev = entry.hash;
            }
            if page_len < VERIFY_PAGE as usize {
                return Ok(AuditVerification {
                    rows_checked,
                    first_broken: None,
                });
            }
        }
    }
}
