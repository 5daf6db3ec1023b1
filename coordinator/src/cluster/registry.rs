//! The nodes of the cluster as this coordinator knows them: what they offer, their leases, their
//! load and warm components, and the clients that reach them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant, SystemTime};

use axum::http::Uri;
use nexus_proto::Digest;
use nexus_proto::node::v1::edge_service_client::EdgeServiceClient;
use nexus_proto::node::v1::{Heartbeat, RegisterRequest};
use nexus_proto::wire::AddToken;
use nexus_store::FunctionVersionId;
use serde::Serialize;
use tokio_rustls::TlsConnector;
use tonic::service::interceptor::InterceptedService;
use utoipa::ToSchema;
use uuid::Uuid;

use super::autoscale::Demand;
use super::channel::NodeChannel;
use crate::events::{EventBus, EventKind};

/// How often a node sends a heartbeat.
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// A node whose last heartbeat is older than this is lost: nothing more is scheduled to it.
pub const LEASE: Duration = Duration::from_secs(3);
/// Lost nodes stay listed this long.
const FORGET_LOST_AFTER: Duration = Duration::from_secs(600);

/// A node's `EdgeService`, every call carrying the join token.
pub type EdgeClient = EdgeServiceClient<InterceptedService<NodeChannel, AddToken>>;

/// Where a node stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Holding its lease, taking work.
    Active,
    /// Finishing its work, taking none.
    Draining,
    /// Its lease lapsed or its connection broke; it takes nothing until it registers again.
    Lost,
}

#[derive(Debug)]
struct Status {
    state: NodeState,
    last_heartbeat: Instant,
    last_heartbeat_at: SystemTime,
    reported_in_flight: u32,
    free_slots: u32,
    queued: u32,
    warm: HashSet<Digest>,
    lost_at: Option<Instant>,
}

/// One registered node.
pub struct Node {
    /// Assigned at registration; a node that registers again gets a new id.
    pub id: Uuid,
    /// The node's name.
    pub name: String,
    /// The node's region.
    pub region: String,
    /// Its labels.
    pub labels: BTreeMap<String, String>,
    /// Where its `EdgeService` listens.
    pub address: String,
    /// Invocations it runs at once.
    pub slots: u32,
    /// Guest memory it offers, in bytes.
    pub memory_bytes: u64,
    /// What compiled code it can share.
    pub engine: String,
    /// When it registered.
    pub registered_at: SystemTime,
    /// Its `EdgeService`.
    pub client: EdgeClient,
    /// Invocations this coordinator has running on it now.
    in_flight: AtomicU32,
    status: Mutex<Status>,
    /// Deployments whose record the node has been sent.
    known: Mutex<HashSet<FunctionVersionId>>,
}

impl Node {
    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether work may go to the node now.
    pub fn schedulable(&self, now: Instant) -> bool {
        let status = self.status();
        status.state == NodeState::Active && now.duration_since(status.last_heartbeat) < LEASE
    }

    /// The node's state.
    pub fn state(&self) -> NodeState {
        self.status().state
    }

    /// Invocations this coordinator has running on the node.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Counts an invocation as running on the node until the guard drops.
    pub fn occupy(self: &Arc<Self>) -> Occupied {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        Occupied(Arc::clone(self))
    }

    /// Whether the node has every one of `digests` compiled.
    pub fn is_warm<'a>(&self, mut digests: impl Iterator<Item = &'a Digest>) -> bool {
        let status = self.status();
        digests.all(|digest| status.warm.contains(digest))
    }

    /// Records that the node has `digests` compiled.
    pub fn add_warm(&self, digests: impl IntoIterator<Item = Digest>) {
        self.status().warm.extend(digests);
    }

    /// Whether the node has been sent the record of `version`.
    pub fn knows(&self, version: FunctionVersionId) -> bool {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .contains(&version)
    }

    /// Records that the node has the record of `version`.
    pub fn learned(&self, version: FunctionVersionId) {
        self.known
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(version);
    }

    fn mark(&self, state: NodeState) -> bool {
        let mut status = self.status();
        if status.state == state || status.state == NodeState::Lost {
            return false;
        }
        status.state = state;
        if state == NodeState::Lost {
            status.lost_at = Some(Instant::now());
        }
        true
    }

    /// The node as the API lists it.
    pub fn view(&self) -> NodeView {
        let status = self.status();
        let mut warm: Vec<String> = status.warm.iter().map(Digest::to_string).collect();
        warm.sort();
        NodeView {
            id: self.id.to_string(),
            name: self.name.clone(),
            region: self.region.clone(),
            labels: self.labels.clone(),
            address: self.address.clone(),
            state: status.state,
            instance_slots: self.slots,
            memory_bytes: self.memory_bytes,
            engine: self.engine.clone(),
            in_flight: self.in_flight(),
            reported_in_flight: status.reported_in_flight,
            free_slots: status.free_slots,
            queued: status.queued,
            warm_digests: warm,
            registered_at: rfc3339(self.registered_at),
            last_heartbeat_at: rfc3339(status.last_heartbeat_at),
        }
    }
}

impl NodeView {
    /// The one node of a coordinator that runs functions in its own process.
    pub fn in_process(instance_slots: u32, free_slots: u32, queued: u32, engine: &str) -> Self {
        let now = rfc3339(SystemTime::now());
        Self {
            id: "local".to_owned(),
            name: "local".to_owned(),
            region: String::new(),
            labels: BTreeMap::new(),
            address: "in-process".to_owned(),
            state: NodeState::Active,
            instance_slots,
            memory_bytes: 0,
            engine: engine.to_owned(),
            in_flight: instance_slots.saturating_sub(free_slots),
            reported_in_flight: instance_slots.saturating_sub(free_slots),
            free_slots,
            queued,
            warm_digests: Vec::new(),
            registered_at: now.clone(),
            last_heartbeat_at: now,
        }
    }

    /// What a project's members see of a node they share with other projects: not its
    /// address, nor which components (of any project) it has compiled.
    pub fn for_members(self) -> Self {
        Self {
            address: String::new(),
            warm_digests: Vec::new(),
            ..self
        }
    }
}

fn rfc3339(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// An invocation counted against a node until dropped.
pub struct Occupied(Arc<Node>);

impl Drop for Occupied {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A node as `GET /v1/nodes` shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NodeView {
    id: String,
    name: String,
    region: String,
    labels: BTreeMap<String, String>,
    address: String,
    state: NodeState,
    instance_slots: u32,
    memory_bytes: u64,
    engine: String,
    /// Invocations this coordinator has running on the node.
    in_flight: u32,
    /// Invocations the node reported running at its last heartbeat.
    reported_in_flight: u32,
    free_slots: u32,
    queued: u32,
    warm_digests: Vec<String>,
    registered_at: String,
    last_heartbeat_at: String,
}

/// Why a registration was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid registration: {0}")]
pub struct InvalidRegistration(String);

/// The nodes this coordinator knows.
#[derive(Default)]
pub struct NodeRegistry {
    nodes: RwLock<HashMap<Uuid, Arc<Node>>>,
    /// Where joins and losses are published, once set.
    events: OnceLock<Arc<dyn EventBus>>,
}

impl NodeRegistry {
    /// Publishes every node joined and lost from now on to `events`.
    pub fn publish_to(&self, events: Arc<dyn EventBus>) {
        let _ = self.events.set(events);
    }

    fn publish(&self, kind: EventKind) {
        if let Some(events) = self.events.get() {
            events.publish(kind);
        }
    }

    /// Adds a node; it holds a lease from now until [`LEASE`] passes without a heartbeat.
    pub fn register(
        &self,
        request: RegisterRequest,
        token: &AddToken,
        tls: Option<TlsConnector>,
    ) -> Result<Arc<Node>, InvalidRegistration> {
        let invalid = |what: &str| InvalidRegistration(what.to_owned());
        if request.name.is_empty() || request.name.len() > 253 {
            return Err(invalid("the name must have 1 to 253 characters"));
        }
        if request.region.len() > 63 {
            return Err(invalid("the region must have at most 63 characters"));
        }
        if request.labels.len() > 64
            || request
                .labels
                .iter()
                .any(|(key, value)| key.is_empty() || key.len() > 253 || value.len() > 253)
        {
            return Err(invalid(
                "at most 64 labels, keys 1 to 253 and values up to 253 characters",
            ));
        }
        if request.warm_digests.len() > 100_000 {
            return Err(invalid("too many warm digests"));
        }
        let capacity = request.capacity.unwrap_or_default();
        if capacity.instance_slots == 0 {
            return Err(invalid("a node needs at least one instance slot"));
        }
        match (&tls, request.address.starts_with("https://")) {
            (Some(_), false) => {
                return Err(invalid(
                    "the address must be an https:// URL: the cluster uses mutual TLS",
                ));
            }
            (None, _) if !request.address.starts_with("http://") => {
                return Err(invalid("the address must be an http:// URL"));
            }
            _ => {}
        }
        let origin: Uri = request
            .address
            .parse()
            .map_err(|error| InvalidRegistration(format!("address: {error}")))?;
        let channel = NodeChannel::lazy(&origin, tls)
            .ok_or_else(|| invalid("the address must name a host"))?;
        let warm = request
            .warm_digests
            .iter()
            .filter_map(|digest| digest.parse().ok())
            .collect();
        let now = SystemTime::now();
        let node = Arc::new(Node {
            id: Uuid::now_v7(),
            name: request.name,
            region: request.region,
            labels: request.labels.into_iter().collect(),
            address: request.address,
            slots: capacity.instance_slots,
            memory_bytes: capacity.memory_bytes,
            engine: request.engine,
            registered_at: now,
            client: EdgeServiceClient::with_origin(
                InterceptedService::new(channel, token.clone()),
                origin,
            )
            .max_decoding_message_size(super::MAX_MESSAGE_BYTES)
            .max_encoding_message_size(super::MAX_MESSAGE_BYTES),
            in_flight: AtomicU32::new(0),
            status: Mutex::new(Status {
                state: NodeState::Active,
                last_heartbeat: Instant::now(),
                last_heartbeat_at: now,
                reported_in_flight: 0,
                free_slots: capacity.instance_slots,
                queued: 0,
                warm,
                lost_at: None,
            }),
            known: Mutex::default(),
        });
        tracing::info!(node = %node.id, name = node.name, address = node.address, slots = node.slots, "node joined");
        self.publish(EventKind::NodeJoined {
            node: node.id.to_string(),
            name: node.name.clone(),
            region: node.region.clone(),
        });
        self.nodes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(node.id, Arc::clone(&node));
        Ok(node)
    }

    /// The node with `id`.
    pub fn get(&self, id: Uuid) -> Option<Arc<Node>> {
        self.nodes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&id)
            .cloned()
    }

    /// Records a heartbeat and answers with the node's state. A lost node stays lost.
    pub fn heartbeat(&self, node: &Node, heartbeat: Heartbeat) -> NodeState {
        let mut status = node.status();
        if status.state == NodeState::Lost {
            return NodeState::Lost;
        }
        status.last_heartbeat = Instant::now();
        status.last_heartbeat_at = SystemTime::now();
        if let Some(load) = heartbeat.load {
            status.reported_in_flight = load.in_flight;
            status.free_slots = load.free_slots;
            status.queued = load.queued;
        }
        if heartbeat.warm_digests_changed {
            status.warm = heartbeat
                .warm_digests
                .iter()
                .filter_map(|digest| digest.parse().ok())
                .collect();
        }
        status.state
    }

    /// Marks `node` lost: its lease lapsed, its lease stream ended or a call to it failed.
    pub fn lose(&self, node: &Node, reason: &str) {
        if node.mark(NodeState::Lost) {
            tracing::warn!(node = %node.id, name = node.name, reason, "node lost");
            self.publish(EventKind::NodeLost {
                node: node.id.to_string(),
                name: node.name.clone(),
                reason: reason.to_owned(),
            });
        }
    }

    /// Stops scheduling to the node with `id`.
    pub fn drain(&self, id: Uuid) -> Option<Arc<Node>> {
        let node = self.get(id)?;
        if node.mark(NodeState::Draining) {
            tracing::info!(node = %node.id, name = node.name, "node draining");
        }
        Some(node)
    }

    /// Nodes work may go to now.
    pub fn schedulable(&self) -> Vec<Arc<Node>> {
        let now = Instant::now();
        self.nodes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .filter(|node| node.schedulable(now))
            .cloned()
            .collect()
    }

    /// Every node, oldest registration first.
    pub fn list(&self) -> Vec<NodeView> {
        let mut nodes: Vec<Arc<Node>> = self
            .nodes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .cloned()
            .collect();
        nodes.sort_by_key(|node| node.id);
        nodes.iter().map(|node| node.view()).collect()
    }

    /// How many nodes are in each lease state, for metrics.
    pub fn count_by_state(&self) -> [(&'static str, i64); 3] {
        let mut counts = [("active", 0), ("draining", 0), ("lost", 0)];
        for node in self
            .nodes
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
        {
            let index = match node.state() {
                NodeState::Active => 0,
                NodeState::Draining => 1,
                NodeState::Lost => 2,
            };
            counts[index].1 += 1;
        }
        counts
    }

    /// Each schedulable node's name, region, invocations this coordinator has running there,
    /// and free slots as the node last reported, for metrics.
    pub fn slot_use(&self) -> Vec<(String, String, u32, u32)> {
        self.schedulable()
            .iter()
            .map(|node| {
                let free = node.status().free_slots;
                (
                    node.name.clone(),
                    node.region.clone(),
                    node.in_flight(),
                    free,
                )
            })
            .collect()
    }

    /// The schedulable nodes' slots and their use (as each node reported it, or the
    /// invocations this coordinator has running there, whichever is more) and the invocations
    /// waiting in the nodes' own queues: the autoscaling signal's input.
    pub fn demand(&self) -> Demand {
        self.schedulable()
            .iter()
            .fold(Demand::default(), |mut demand, node| {
                let status = node.status();
                let reported = node.slots.saturating_sub(status.free_slots);
                demand.nodes += 1;
                demand.slots += u64::from(node.slots);
                demand.busy += u64::from(reported.max(node.in_flight()));
                demand.queued += u64::from(status.queued);
                demand
            })
    }

    /// Marks nodes whose lease lapsed lost and forgets nodes lost long ago.
    pub fn sweep(&self) {
        let now = Instant::now();
        let mut nodes = self
            .nodes
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        for node in nodes.values() {
            let lapsed = now.duration_since(node.status().last_heartbeat) >= LEASE;
            if lapsed {
                self.lose(node, "lease lapsed");
            }
        }
        nodes.retain(|_, node| {
            node.status()
                .lost_at
                .is_none_or(|lost| now.duration_since(lost) < FORGET_LOST_AFTER)
        });
    }
}

#[cfg(test)]
mod tests {
    use futures::StreamExt as _;
    use nexus_proto::node::v1::Capacity;

    use super::*;
    use crate::events::{EventId, InProcessBus};

    #[tokio::test]
    async fn joins_and_losses_are_published_once() {
        let registry = NodeRegistry::default();
        let bus = Arc::new(InProcessBus::default());
        registry.publish_to(Arc::clone(&bus) as Arc<dyn EventBus>);
        let request = RegisterRequest {
            name: "edge-1".to_owned(),
            region: "eu".to_owned(),
            address: "http://127.0.0.1:9".to_owned(),
            capacity: Some(Capacity {
                instance_slots: 4,
                ..Capacity::default()
            }),
            ..RegisterRequest::default()
        };
        let node = registry
            .register(request, &AddToken::new("token").unwrap(), None)
            .unwrap();
        registry.lose(&node, "a call to it failed");
        registry.lose(&node, "lease lapsed");
        let mut events = bus.subscribe(Some(EventId::default())).await;
        let kinds: Vec<EventKind> = vec![
            events.next().await.unwrap().unwrap().kind,
            events.next().await.unwrap().unwrap().kind,
        ];
        let id = node.id.to_string();
        assert_eq!(
            kinds,
            [
                EventKind::NodeJoined {
                    node: id.clone(),
                    name: "edge-1".to_owned(),
                    region: "eu".to_owned(),
                },
                EventKind::NodeLost {
                    node: id,
                    name: "edge-1".to_owned(),
                    reason: "a call to it failed".to_owned(),
                },
            ]
        );
        // Lost once: the second loss published nothing.
        assert!(
            bus.append(EventKind::AgentDeleted {
                project: "p".to_owned(),
                agent: "a".to_owned(),
            }) > EventId::default()
        );
        assert!(matches!(
            events.next().await.unwrap().unwrap().kind,
            EventKind::AgentDeleted { .. }
        ));
    }
}
