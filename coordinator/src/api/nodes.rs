//! `/v1/nodes`: the cluster's edge nodes, for its operator. Calls carry the cluster's join token
//! as their bearer token: node administration is the operator's, not a project member's.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use nexus_proto::node::v1::DrainRequest;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{AppState, ErrorResponse};
use crate::cluster::{Cluster, NodeView};
use crate::error::ApiError;
use crate::projects::{Permission, Principal};

/// How long a drain waits for the node's invocations to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_nodes))
        .routes(routes!(drain_node))
        .routes(routes!(project_nodes))
}

/// The cluster, if the caller presents its join token.
fn operator(state: &AppState, headers: &HeaderMap) -> Result<Arc<Cluster>, ApiError> {
    let cluster = state
        .cluster
        .clone()
        .ok_or_else(|| ApiError::not_found("cluster"))?;
    let presented = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !cluster.is_token(presented) {
        return Err(ApiError::unauthenticated(
            "node administration needs the cluster's join token",
        ));
    }
    Ok(cluster)
}

#[derive(Serialize, ToSchema)]
struct Nodes {
    nodes: Vec<NodeView>,
}

/// Every node the coordinator knows: active, draining, and lost in the last ten minutes.
#[utoipa::path(get, path = "/v1/nodes", tag = "nodes", security(("bearer" = [])),
    responses((status = 200, body = Nodes), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn list_nodes(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Nodes>, ApiError> {
    let cluster = operator(&state, &headers)?;
    Ok(Json(Nodes {
        nodes: cluster.registry().list(),
    }))
}

/// The nodes the project's functions run on (every member may look): in a cluster its edge
/// nodes, without their addresses or compiled components; in one process, the process.
#[utoipa::path(get, path = "/v1/projects/{project}/nodes", tag = "nodes", security(("bearer" = [])),
    params(("project" = String, Path, description = "The project name")),
    responses((status = 200, body = Nodes), (status = 401, body = ErrorResponse), (status = 404, body = ErrorResponse)))]
async fn project_nodes(
    State(state): State<AppState>,
    principal: Principal,
    Path(project): Path<String>,
) -> Result<Json<Nodes>, ApiError> {
    state
        .projects
        .authorize(principal, &project, Permission::View)
        .await?;
    let nodes = match (&state.cluster, &state.local_node) {
        (Some(cluster), _) => cluster
            .registry()
            .list()
            .into_iter()
            .map(NodeView::for_members)
            .collect(),
        (None, Some(local)) => vec![local()],
        (None, None) => Vec::new(),
    };
    Ok(Json(Nodes { nodes }))
}

#[derive(Serialize, ToSchema)]
struct Drained {
    node: NodeView,
    /// Invocations that finished while the node drained.
    finished: u64,
}

/// Drains a node: nothing new is scheduled to it; answers once its invocations in flight have
/// finished.
#[utoipa::path(post, path = "/v1/nodes/{id}/drain", tag = "nodes", security(("bearer" = [])),
    params(("id" = String, Path, description = "The node id")),
    responses((status = 200, body = Drained), (status = 401, body = ErrorResponse),
        (status = 404, body = ErrorResponse), (status = 502, body = ErrorResponse)))]
async fn drain_node(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Drained>, ApiError> {
    let cluster = operator(&state, &headers)?;
    let id = id.parse().map_err(|_| ApiError::not_found("node"))?;
    let node = cluster
        .registry()
        .drain(id)
        .ok_or_else(|| ApiError::not_found("node"))?;
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, node.client.clone().drain(DrainRequest {}))
        .await
        .map_err(|_| ApiError::unavailable("the node did not finish its invocations in time"))?
        .map_err(|status| {
            ApiError::from_runtime(
                StatusCode::BAD_GATEWAY,
                "node_failed",
                format!("the node did not drain: {}", status.message()),
                None,
            )
        })?;
    Ok(Json(Drained {
        node: node.view(),
        finished: drained.into_inner().finished,
    }))
}
