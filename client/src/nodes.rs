//! Edge nodes: the cluster's, for its operator (`/v1/nodes`, with the cluster's join token as
//! the bearer token), and the project's (`/v1/projects/{p}/nodes`, for its members).

use std::collections::BTreeMap;
use std::time::Duration;

use http::Method;
use serde::{Deserialize, Serialize};

use crate::{Client, Result};

/// How long a drain may take: the coordinator waits up to ten minutes for the node's
/// invocations, and answers only then.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(11 * 60);

open_enum! {
    /// Where a node stands.
    pub enum NodeState {
        /// Holding its lease, taking work.
        Active = "active",
        /// Finishing its work, taking none.
        Draining = "draining",
        /// Its lease lapsed or its connection broke.
        Lost = "lost",
    }
}

/// An edge node (or, for a coordinator that runs functions itself, that process).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Its id (`local` for the coordinator's own process).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its region.
    pub region: String,
    /// Its labels, which functions' node selectors match.
    pub labels: BTreeMap<String, String>,
    /// Where the coordinator reaches it; empty in a project's view.
    pub address: String,
    /// Where it stands.
    pub state: NodeState,
    /// Instances it runs at once.
    pub instance_slots: u32,
    /// Its memory.
    pub memory_bytes: u64,
    /// Its engine.
    pub engine: String,
    /// Invocations this coordinator has running on it.
    pub in_flight: u32,
    /// Invocations it reported running at its last heartbeat.
    pub reported_in_flight: u32,
    /// Its free instance slots.
    pub free_slots: u32,
    /// Requests waiting on it.
    pub queued: u32,
    /// The components it has compiled; empty in a project's view.
    pub warm_digests: Vec<String>,
    /// When it registered (RFC 3339).
    pub registered_at: String,
    /// When it last sent a heartbeat (RFC 3339).
    pub last_heartbeat_at: String,
}

/// What a drain did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Drained {
    /// The node, now draining.
    pub node: Node,
    /// Invocations that finished while it drained.
    pub finished: u64,
}

#[derive(Serialize, Deserialize)]
struct Nodes {
    nodes: Vec<Node>,
}

impl Client {
    /// `GET /v1/nodes`: every node the coordinator knows (active, draining, and lost in the
    /// last ten minutes). The client's token must be the cluster's join token; a coordinator
    /// that runs no cluster answers 404.
    pub async fn list_nodes(&self) -> Result<Vec<Node>> {
        let call = self.call(Method::GET, &["v1", "nodes"]);
        Ok(self.send(call).await?.json::<Nodes>()?.nodes)
    }

    /// `POST /v1/nodes/{id}/drain`: schedules nothing new to the node, and answers once its
    /// invocations in flight have finished (up to ten minutes; this call waits eleven,
    /// whatever the client's time limit). The client's token must be the join token.
    pub async fn drain_node(&self, node_id: &str) -> Result<Drained> {
        let call = self
            .call(Method::POST, &["v1", "nodes", node_id, "drain"])
            .timeout(DRAIN_TIMEOUT.max(self.timeout));
        self.send(call).await?.json()
    }

    /// `GET /v1/projects/{project}/nodes`: the nodes the project's functions run on, without
    /// their addresses or compiled components (any member).
    pub async fn list_project_nodes(&self, project: &str) -> Result<Vec<Node>> {
        let call = self.call(Method::GET, &["v1", "projects", project, "nodes"]);
        Ok(self.send(call).await?.json::<Nodes>()?.nodes)
    }
}
