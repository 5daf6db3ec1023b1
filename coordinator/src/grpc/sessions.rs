//! `nexus.v1.SessionService`: the gRPC face of `/v1/sessions`, over the same
//! [`AuthService`](crate::auth::service::AuthService). Calls carry `authorization: Bearer
//! <access token>`; as in REST, only a person's access token names a caller (an API key acts
//! in a project, never as a person, so it is refused like any other invalid token). Every
//! answer carries `x-request-id`, and revocations are audited as REST's are.

use nexus_proto::v1::session_service_server::SessionService;
use nexus_proto::v1::{
    CurrentSessionRequest, ListSessionsRequest, ListSessionsResponse, RevokeSessionRequest,
    RevokeSessionResponse, Session,
};
use nexus_store::SessionId;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};

use super::{answer, audit, bearer, request_id};
use crate::api::AppState;
use crate::auth::service::Caller;
use crate::error::ApiError;

/// What the audit log calls a revocation made over gRPC: the HTTP/2 request it arrived as.
const REVOKE_ACTION: &str = "POST /nexus.v1.SessionService/RevokeSession";

/// The longest session id kept in an audit row; a real one is a 36-character UUID.
const MAX_AUDITED_ID_CHARS: usize = 64;

/// The service, over the API's state.
pub(crate) struct Sessions {
    state: AppState,
}

impl Sessions {
    pub(crate) fn new(state: AppState) -> Self {
        Self { state }
    }

    /// The person `metadata`'s bearer token names.
    async fn caller(&self, metadata: &MetadataMap) -> Result<Caller, ApiError> {
        self.state.auth.authenticate(bearer(metadata)?).await
    }

    async fn list(&self, metadata: &MetadataMap) -> Result<ListSessionsResponse, ApiError> {
        let caller = self.caller(metadata).await?;
        let sessions = self.state.auth.sessions(caller).await?;
        Ok(ListSessionsResponse {
            sessions: sessions
                .into_iter()
                .map(|session| view(session, caller))
                .collect(),
        })
    }

    async fn revoke(
        &self,
        metadata: &MetadataMap,
        id: &str,
        actor: &mut Option<String>,
    ) -> Result<RevokeSessionResponse, ApiError> {
        let caller = self.caller(metadata).await?;
        *actor = Some(format!("user:{}", caller.user));
        // As in REST: an id that is not a UUID names no session.
        let id = uuid::Uuid::parse_str(id).map_err(|_| ApiError::not_found("session"))?;
        self.state
            .auth
            .revoke_session(caller, SessionId(id))
            .await?;
        Ok(RevokeSessionResponse {})
    }

    async fn current(&self, metadata: &MetadataMap) -> Result<Session, ApiError> {
        let caller = self.caller(metadata).await?;
        let sessions = self.state.auth.sessions(caller).await?;
        sessions
            .into_iter()
            .find(|session| session.id == caller.session)
            .map(|session| view(session, caller))
            // Revoked between the token check and the listing.
            .ok_or_else(|| ApiError::unauthenticated("the session has ended"))
    }

    /// Appends the audit row of a revocation, however it ended.
    async fn audit_revoke(
        &self,
        actor: Option<String>,
        id: &str,
        outcome: Result<(), &ApiError>,
        request_id: &str,
    ) {
        let target = format!(
            "session:{}",
            id.chars().take(MAX_AUDITED_ID_CHARS).collect::<String>()
        );
        audit(
            &self.state,
            actor,
            REVOKE_ACTION,
            target,
            outcome,
            request_id,
        )
        .await;
    }
}

#[tonic::async_trait]
impl SessionService for Sessions {
    async fn list_sessions(
        &self,
        request: Request<ListSessionsRequest>,
    ) -> Result<Response<ListSessionsResponse>, Status> {
        let request_id = request_id(request.metadata());
        answer(self.list(request.metadata()).await, &request_id)
    }

    async fn revoke_session(
        &self,
        request: Request<RevokeSessionRequest>,
    ) -> Result<Response<RevokeSessionResponse>, Status> {
        let request_id = request_id(request.metadata());
        let mut actor = None;
        let outcome = self
            .revoke(request.metadata(), &request.get_ref().id, &mut actor)
            .await;
        self.audit_revoke(
            actor,
            &request.get_ref().id,
            outcome.as_ref().map(|_| ()),
            &request_id,
        )
        .await;
        answer(outcome, &request_id)
    }

    async fn current_session(
        &self,
        request: Request<CurrentSessionRequest>,
    ) -> Result<Response<Session>, Status> {
        let request_id = request_id(request.metadata());
        answer(self.current(request.metadata()).await, &request_id)
    }
}

/// A session as the API shows it: REST's fields, and whether it is the caller's own.
fn view(session: nexus_store::Session, caller: Caller) -> Session {
    Session {
        id: session.id.to_string(),
        user_id: session.user_id.to_string(),
        created_at: session.created_at.to_rfc3339(),
        last_used_at: session.last_used_at.to_rfc3339(),
        rotated_at: session
            .rotated_at
            .map(|at| at.to_rfc3339())
            .unwrap_or_default(),
        revoked_at: session
            .revoked_at
            .map(|at| at.to_rfc3339())
            .unwrap_or_default(),
        revoked_reason: session.revoked_reason.unwrap_or_default(),
        user_agent: session.user_agent.unwrap_or_default(),
        ip: session.ip.unwrap_or_default(),
        current: session.id == caller.session,
    }
}
