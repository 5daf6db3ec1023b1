//! The coordinator's record: users, sessions, projects and members, API keys, functions and
//! their versions and aliases, agents, invocations, nodes and the audit log, in SQLite (the
//! embedded default, a file under `./.nexus/`) or Postgres/CockroachDB (`postgres://…`).
//!
//! [`Store`] opens either backend and applies the migrations in the repository's
//! `migrations/` (one set per backend, same file names). All work happens in a transaction
//! through [`Store::with_retry`], which retries the whole closure when the database reports a
//! serialization failure (SQLSTATE `40001` on Postgres/CockroachDB, `SQLITE_BUSY`/`LOCKED` on
//! SQLite). Repository functions are methods of [`Tx`], so a domain operation and its audit
//! entry commit together or not at all. Every statement is written once and runs on both
//! backends: `$n` parameters, `ON CONFLICT`, `RETURNING`, no sequences, no PL/pgSQL, no
//! advisory locks.
//!
//! This crate deliberately knows nothing of HTTP, JSON bodies, tokens or password hashing: it
//! stores hashes it is given and enforces only the invariants that need a transaction (unique
//! names, refresh-token reuse, the last owner of a project, the audit hash chain).

mod agents;
mod api_keys;
mod audit;
mod edge_outboxes;
mod error;
mod functions;
mod ids;
mod invocations;
mod leases;
mod migrate;
mod projects;
mod retry;
mod rollouts;
mod schedules;
mod sessions;
mod store;
mod time;
mod users;

pub use agents::{Agent, AgentState, NewAgent, UnknownAgentState};
pub use api_keys::{ApiKey, NewApiKey};
pub use audit::{AuditEntry, AuditVerification, BrokenLink, NewAuditEntry};
pub use error::{Error, Result};
pub use functions::{Alias, AsyncRetry, Function, FunctionVersion, NewFunctionVersion};
pub use ids::{
    AgentId, ApiKeyId, FunctionId, FunctionVersionId, HolderId, InvocationId, OutboxId, ProjectId,
    RolloutId, ScheduleId, SessionId, UserId,
};
pub use invocations::{
    Attempt, AttemptReport, Claim, ClaimedInvocation, DeadFilter, Enqueued, Finished, GuestOutput,
    InvocationRecord, InvocationStatus, MAX_BACKOFF, NewInvocation, Reaped, StoredRequest,
    StoredResult, Sweepable, Verdict, backoff,
};
pub use leases::{AgentLease, Lease, LeaseHeld, LeaseRow};
pub use projects::{Member, NewProject, Project, ProjectUpdate, Role};
pub use retry::RetryPolicy;
pub use rollouts::{NewRollout, Rollout, RolloutStatus};
pub use schedules::{NewSchedule, Schedule};
pub use sessions::{NewSession, Rotation, Session, TokenHash};
pub use store::{Backend, DEFAULT_DATABASE_URL, Store, Tx};
pub use users::{NewUser, User};
