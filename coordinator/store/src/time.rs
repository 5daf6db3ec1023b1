//! Timestamps as the store writes them.

use chrono::{DateTime, SubsecRound as _, Utc};

/// Now, truncated to microseconds: the precision of `TIMESTAMPTZ`, so that a value read back
/// from either backend equals the value written (the audit chain hashes it).
pub(crate) fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
