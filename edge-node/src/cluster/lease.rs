//! Registration and the lease: the node joins the cluster, then sends a heartbeat every
//! interval the coordinator asked for, with its load and warm components. When the lease
//! stream breaks (the coordinator restarted, the network failed) it registers again. A node
//! given several coordinator replicas holds one lease with each.

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use nexus_proto::node::v1::{Heartbeat, Load, NodeState, RegisterRequest};
use nexus_runtime::Runtime;
use tokio::sync::{mpsc, watch};
use tokio_stream::wrappers::ReceiverStream;

use super::CoordinatorClient;
use super::edge_service::{NodeLoad, WarmSet};
use super::routes::Wanted;

/// Waits between attempts to reach the coordinator, doubling up to the cap.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_CAP: Duration = Duration::from_secs(2);

/// What the node tells the coordinator about itself and its work.
pub struct LeaseHolder {
    /// The coordinator.
    pub coordinator: CoordinatorClient,
    /// Name, region, labels, address, capacity, engine.
    pub registration: RegisterRequest,
    /// The runtime, for free slots and queue length.
    pub runtime: Arc<Runtime>,
    /// Invocations in flight.
    pub load: Arc<NodeLoad>,
    /// Compiled components.
    pub warm: Arc<WarmSet>,
    /// The node id each coordinator gave while registered (empty while not); this one's is
    /// at `index`.
    pub node_ids: watch::Sender<Vec<String>>,
    /// This lease's place in `node_ids`.
    pub index: usize,
    /// The warm set's change count this coordinator was last told.
    pub warm_seen: AtomicU64,
    /// The routing table's revision the coordinators name, for the node's ingress.
    pub routes_wanted: watch::Sender<Option<Wanted>>,
}

impl LeaseHolder {
    /// Holds the lease until `stop` fires, registering again whenever it is lost.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut wait = RETRY_FIRST;
        loop {
            let held = tokio::select! {
                held = self.hold() => held,
                _ = stop.wait_for(|stop| *stop) => return,
            };
            self.set_node_id(String::new());
            match held {
                Ok(()) => wait = RETRY_FIRST,
                Err(error) => {
                    tracing::warn!(%error, retry_in = ?wait, "no lease from the coordinator");
                }
            }
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            wait = (wait * 2).min(RETRY_CAP);
        }
    }

    /// Registers and heartbeats until the lease ends.
    async fn hold(&self) -> Result<(), tonic::Status> {
        let mut coordinator = self.coordinator.clone();
        let mut registration = self.registration.clone();
        registration.warm_digests = self.warm.changes_since(&self.warm_seen).0;
        let registered = coordinator.register(registration).await?.into_inner();
        let node_id = registered.node_id;
        let interval = Duration::from_millis(u64::from(registered.heartbeat_interval_ms.max(100)));
        tracing::info!(%node_id, "registered with the coordinator");
        let (heartbeats, outgoing) = mpsc::channel(4);
        heartbeats
            .send(self.heartbeat(&node_id, true))
            .await
            .map_err(|_| tonic::Status::cancelled("lease stream closed"))?;
        let mut updates = coordinator
            .lease(ReceiverStream::new(outgoing))
            .await?
            .into_inner();
        self.set_node_id(node_id.clone());
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticks.tick() => {
                    if heartbeats.send(self.heartbeat(&node_id, false)).await.is_err() {
                        return Err(tonic::Status::cancelled("lease stream closed"));
                    }
                }
                update = updates.message() => match update? {
                    Some(update) if update.state == NodeState::Lost as i32 => {
                        return Err(tonic::Status::unavailable("the coordinator considers this node lost"));
                    }
                    Some(update) => self.want_routes(&node_id, update.routes_revision),
                    None => return Err(tonic::Status::unavailable("the coordinator ended the lease")),
                },
            }
        }
    }

    /// Asks for the routing table at `revision` from this coordinator, unless it is wanted
    /// already.
    fn want_routes(&self, node_id: &str, revision: String) {
        if revision.is_empty() {
            return;
        }
        let want = Wanted {
            coordinator: self.index,
            node_id: node_id.to_owned(),
            revision,
        };
        self.routes_wanted.send_if_modified(|wanted| {
            let changed = wanted.as_ref() != Some(&want);
            if changed {
                *wanted = Some(want);
            }
            changed
        });
    }

    fn set_node_id(&self, node_id: String) {
        self.node_ids.send_modify(|ids| {
            if let Some(id) = ids.get_mut(self.index) {
                *id = node_id;
            }
        });
    }

    fn heartbeat(&self, node_id: &str, full: bool) -> Heartbeat {
        let (warm_digests, changed) = self.warm.changes_since(&self.warm_seen);
        let changed = changed || full;
        Heartbeat {
            node_id: node_id.to_owned(),
            load: Some(Load {
                in_flight: self.load.in_flight(),
                free_slots: u32::try_from(self.runtime.free_instance_slots()).unwrap_or(u32::MAX),
                queued: self.runtime.queued_invocations(),
            }),
            warm_digests: if changed { warm_digests } else { Vec::new() },
            warm_digests_changed: changed,
        }
    }
}
