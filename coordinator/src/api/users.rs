//! `/v1/users/me`: what the coordinator keeps about the caller, exported as JSON, and the
//! caller erased (GDPR articles 15, 20 and 17). Erasing frees the email, clears the display
//! name and password, ends every session and membership; the audit log keeps its rows, whose
//! actor (`user:<id>`) then names nobody, so the hash chain still verifies.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use nexus_store::{Role, UserId};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, ErrorResponse};
use crate::auth::service::Caller;
use crate::error::ApiError;

/// Audit rows an export carries at most.
const MAX_AUDIT_ROWS: i64 = 100_000;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export))
        .routes(routes!(erase))
}

#[derive(Serialize, ToSchema)]
struct Export {
    user: UserExport,
    sessions: Vec<SessionExport>,
    memberships: Vec<MembershipExport>,
    /// What the user did, as the audit log recorded it.
    audit: Vec<AuditExport>,
}

#[derive(Serialize, ToSchema)]
struct UserExport {
    id: String,
    email: String,
    display_name: String,
    created_at: String,
}

#[derive(Serialize, ToSchema)]
struct SessionExport {
    id: String,
    created_at: String,
    last_used_at: String,
    revoked_at: Option<String>,
    user_agent: Option<String>,
    ip: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct MembershipExport {
    project: String,
    project_id: String,
    role: String,
}

#[derive(Serialize, ToSchema)]
struct AuditExport {
    seq: i64,
    at: String,
    action: String,
    target: String,
    result: String,
}

/// Everything the coordinator keeps about the caller, as JSON.
#[utoipa::path(get, path = "/v1/users/me/export", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Export), (status = 401, body = ErrorResponse)))]
async fn export(State(state): State<AppState>, caller: Caller) -> Result<Json<Export>, ApiError> {
    let id = caller.user;
    let (user, sessions, memberships, audit) = state
        .store
        .with_retry(|tx| {
            Box::pin(async move {
                let user = tx.get_user(id).await?;
                let sessions = tx.list_sessions(id).await?;
                let memberships = tx.list_projects_for_user(id).await?;
                let audit = tx
                    .list_audit_by_actor(&format!("user:{id}"), 0, MAX_AUDIT_ROWS)
                    .await?;
                Ok((user, sessions, memberships, audit))
            })
        })
        .await?;
    Ok(Json(Export {
        user: UserExport {
            id: user.id.to_string(),
            email: user.email,
            display_name: user.display_name,
            created_at: user.created_at.to_rfc3339(),
        },
        sessions: sessions
            .into_iter()
            .map(|session| SessionExport {
                id: session.id.to_string(),
                created_at: session.created_at.to_rfc3339(),
                last_used_at: session.last_used_at.to_rfc3339(),
                revoked_at: session.revoked_at.map(|at| at.to_rfc3339()),
                user_agent: session.user_agent,
                ip: session.ip,
            })
            .collect(),
        memberships: memberships
            .into_iter()
            .map(|(project, role)| MembershipExport {
                project: project.slug,
                project_id: project.id.to_string(),
                role: role.as_str().to_owned(),
            })
            .collect(),
        audit: audit
            .into_iter()
            .map(|entry| AuditExport {
                seq: entry.seq,
                at: entry.at.to_rfc3339(),
                action: entry.action,
                target: entry.target,
                result: entry.result,
            })
            .collect(),
    }))
}

/// Erases the caller: refused while they are the only owner of a project (hand it over or
/// delete it first).
#[utoipa::path(delete, path = "/v1/users/me", tag = "users", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorResponse), (status = 409, body = ErrorResponse)))]
async fn erase(State(state): State<AppState>, caller: Caller) -> Result<StatusCode, ApiError> {
    let id: UserId = caller.user;
    state
        .store
        .with_retry(|tx| {
            Box::pin(async move {
                for (project, role) in tx.list_projects_for_user(id).await? {
                    if role == Role::Owner {
                        // Refuses, as for any member, to leave a project without an owner.
                        tx.remove_member(project.id, id).await.map_err(|error| match error {
                            nexus_store::Error::Conflict { .. } => nexus_store::Error::Conflict {
                                message: format!(
                                    "you are the only owner of project {}: add another owner or delete the project first",
                                    project.slug
                                ),
                            },
                            other => other,
                        })?;
                    } else {
                        tx.remove_member(project.id, id).await?;
                    }
                }
                tx.erase_user(id).await
            })
        })
        .await?;
    state.auth.forget_sessions_of(id);
    Ok(StatusCode::NO_CONTENT)
}
