//! The audit log: every mutating API call (POST, PUT, PATCH, DELETE) but an invocation,
//! successful or not, is recorded with who made it, what it was, its target, how it ended and
//! its request id. The store chains the rows by hash, so editing or deleting a row breaks the chain at that row.

use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{MatchedPath, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use nexus_store::NewAuditEntry;

use crate::api::{AppState, RequestId};

/// A mutating call's audit row in the making. The middleware fills in what the request says
/// and the bearer-token extractor who the caller is. A handler whose change can carry the row
/// in its own transaction takes it from here ([`AuditSlot::entry_on_success`]) and says so once
/// that committed ([`AuditSlot::mark_recorded`]); the middleware appends every other row.
#[derive(Clone)]
pub(crate) struct AuditSlot(Arc<Mutex<Draft>>);

struct Draft {
    actor: Option<String>,
    action: String,
    target: String,
    request_id: Option<String>,
    recorded: bool,
}

impl AuditSlot {
    /// The row of `action` on `target` by the request `request_id`, its actor still unknown.
    pub(crate) fn new(action: String, target: String, request_id: Option<String>) -> Self {
        Self(Arc::new(Mutex::new(Draft {
            actor: None,
            action,
            target,
            request_id,
            recorded: false,
        })))
    }

    fn draft(&self) -> std::sync::MutexGuard<'_, Draft> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn set_actor(&self, actor: String) {
        self.draft().actor = Some(actor);
    }

    /// The row of the call if it succeeds, for the change's own transaction to append.
    pub(crate) fn entry_on_success(&self) -> NewAuditEntry {
        self.draft().entry("ok")
    }

    /// The change committed with the row of [`AuditSlot::entry_on_success`].
    pub(crate) fn mark_recorded(&self) {
        self.draft().recorded = true;
    }

    /// The row still to append for a call answered with `status`: none when the change
    /// recorded its success and the call did succeed.
    fn unrecorded(&self, status: StatusCode) -> Option<NewAuditEntry> {
        let draft = self.draft();
        let result = result(status);
        (!(draft.recorded && result == "ok")).then(|| draft.entry(result))
    }
}

impl Draft {
    fn entry(&self, result: &str) -> NewAuditEntry {
        NewAuditEntry {
            actor: self.actor.clone().unwrap_or_else(|| "anonymous".to_owned()),
            action: self.action.clone(),
            target: self.target.clone(),
            result: result.to_owned(),
            request_id: self.request_id.clone(),
            project_id: None,
        }
    }
}

/// The slot of the call being served, for a handler that records its change itself; `None`
/// for calls the audit log does not record.
impl<S: Send + Sync> axum::extract::OptionalFromRequestParts<S> for AuditSlot {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(parts.extensions.get::<Self>().cloned())
    }
}

/// How a call ended, as the log spells it.
pub(crate) fn result(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200..=399 => "ok",
        401 | 403 | 404 => "denied",
        400..=499 => "refused",
        _ => "error",
    }
}

/// Records mutating calls once they have been answered.
pub(crate) async fn record(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let mutating = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    // Invocations are not audited, through the trigger or the API.
    let invocation = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|route| crate::api::is_invocation_route(route.as_str()));
    if !mutating || invocation {
        return next.run(request).await;
    }
    let action = match request.extensions().get::<MatchedPath>() {
        Some(route) => format!("{} {}", request.method(), route.as_str()),
        None => format!("{} (no route)", request.method()),
    };
    let target = request.uri().path().to_owned();
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|RequestId(id)| id.clone());
    let slot = AuditSlot::new(action, target, request_id);
    request.extensions_mut().insert(slot.clone());
    let response = next.run(request).await;
    close(&state.store, &slot, response.status()).await;
    response
}

/// Appends the row of a call answered with `status`, unless its change recorded it.
pub(crate) async fn close(store: &nexus_store::Store, slot: &AuditSlot, status: StatusCode) {
    if let Some(entry) = slot.unrecorded(status) {
        append(store, entry).await;
    }
}

/// Appends `entry`; a failure is logged, never the caller's.
async fn append(store: &nexus_store::Store, entry: NewAuditEntry) {
    let appended = store
        .with_retry(|tx| {
            let entry = entry.clone();
            Box::pin(async move { tx.append_audit(&entry).await })
        })
        .await;
    if let Err(error) = appended {
        tracing::error!(%error, action = %entry.action, "could not record an audit entry");
    }
}
