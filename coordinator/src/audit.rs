//! The audit log: every mutating API call (POST, PUT, PATCH, DELETE) but an invocation,
//! successful or not, is recorded with who made it, what it was, its target, how it ended and
//! its request id. The store chains the rows by hash, so editing or deleting a row breaks the chain at that row.

use std::sync::{Arc, Mutex, PoisonError};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use nexus_store::NewAuditEntry;

use crate::api::{AppState, RequestId};

/// Filled in by the bearer-token extractor when the request names its caller.
#[derive(Clone, Default)]
pub(crate) struct ActorSlot(Arc<Mutex<Option<String>>>);

impl ActorSlot {
    pub(crate) fn set(&self, actor: String) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = Some(actor);
    }

    fn actor(&self) -> String {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
            .unwrap_or_else(|| "anonymous".to_owned())
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
    let slot = ActorSlot::default();
    request.extensions_mut().insert(slot.clone());
    let action = match request.extensions().get::<MatchedPath>() {
        Some(route) => format!("{} {}", request.method(), route.as_str()),
        None => format!("{} (no route)", request.method()),
    };
    let target = request.uri().path().to_owned();
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(|RequestId(id)| id.clone());
    let response = next.run(request).await;
    let entry = NewAuditEntry {
        actor: slot.actor(),
        action,
        target,
        result: result(response.status()).to_owned(),
        request_id,
        project_id: None,
    };
    append(&state.store, entry).await;
    response
}

/// Appends `entry`; a failure is logged, never the caller's.
pub(crate) async fn append(store: &nexus_store::Store, entry: NewAuditEntry) {
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
