//! What edge nodes serve on their own and what they send back: the routing table they serve
//! their ingress from ([`super::routes`]), and the entries of their outboxes (asynchronous
//! invocations they accepted, calls they answered), recorded once each however often a node
//! sends them.

use std::collections::HashSet;
use std::sync::Arc;

use nexus_proto::node::v1::{
    FinishedInvocation, ForwardRequest, ForwardResponse, QueuedInvocation, RoutesRequest,
    RoutesResponse, outbox_entry,
};
use nexus_proto::wire;
use nexus_store::{
    AsyncRetry, FunctionId, InvocationId, NewInvocation, OutboxId, ProjectId, StoredRequest,
};
use tonic::Status;

use super::registry::NodeRegistry;
use super::routes::RoutingTable;
use crate::events::{EventBus, EventKind};
use crate::invocations::{ForwardedBatch, ForwardedInvocation, InvocationService};

/// The coordinator's side of store-and-forward.
#[derive(Clone)]
pub struct EdgeSync {
    /// What nodes serve by.
    pub routes: Arc<RoutingTable>,
    /// Where forwarded invocations are recorded.
    pub invocations: InvocationService,
    /// Where forwarded events are published.
    pub events: Arc<dyn EventBus>,
}

impl EdgeSync {
    /// The routing table's revision, at once (empty while none has been built).
    pub fn revision(&self) -> String {
        self.routes.revision()
    }

    /// The part of the routing table the node asking may serve.
    pub async fn routes(
        &self,
        registry: &NodeRegistry,
        request: RoutesRequest,
    ) -> Result<RoutesResponse, Status> {
        let node = request
            .node_id
            .parse()
            .ok()
            .and_then(|id| registry.get(id))
            .ok_or_else(|| Status::not_found("unknown node id: register first"))?;
        let table = self
            .routes
            .current()
            .await
            .ok_or_else(|| Status::unavailable("the routing table cannot be read now"))?;
        let known: HashSet<String> = request.known_deployments.into_iter().collect();
        Ok(table.for_node(&node.labels, &known))
    }

    /// Records a batch of a node's outbox: its invocations and events after the outbox's
    /// mark. An entry that cannot be read is dropped with a warning rather than refused, so
    /// that it cannot hold up the outbox behind it.
    pub async fn forward(&self, request: ForwardRequest) -> Result<ForwardResponse, Status> {
        let outbox = request
            .outbox
            .parse()
            .map(OutboxId)
            .map_err(|_| Status::invalid_argument("the outbox id is not a UUID"))?;
        let Some(through) = request.entries.last().map(|entry| entry.seq) else {
            return Ok(ForwardResponse {
                forwarded_through: 0,
            });
        };
        if request
            .entries
            .windows(2)
            .any(|pair| pair[0].seq >= pair[1].seq)
        {
            return Err(Status::invalid_argument(
                "outbox entries must come in increasing seq",
            ));
        }
        let mut invocations = Vec::new();
        let mut finished = Vec::new();
        for entry in request.entries {
            match entry.entry {
                Some(outbox_entry::Entry::Invocation(queued)) => match forwarded(entry.seq, queued)
                {
                    Ok(invocation) => invocations.push(invocation),
                    Err(reason) => {
                        tracing::warn!(
                            node = request.node_name,
                            seq = entry.seq,
                            reason,
                            "dropped an unreadable forwarded invocation"
                        );
                    }
                },
                Some(outbox_entry::Entry::Finished(event)) => finished.push((entry.seq, event)),
                None => {}
            }
        }
        let batch = ForwardedBatch {
            outbox,
            node_name: request.node_name,
            through,
            invocations,
        };
        let before = self
            .invocations
            .accept_forwarded(&batch)
            .await
            .map_err(|error| Status::unavailable(error.message))?;
        for (_, event) in finished.into_iter().filter(|(seq, _)| *seq > before) {
            self.events.publish(finished_event(event, &batch.node_name));
        }
        Ok(ForwardResponse {
            forwarded_through: through,
        })
    }
}

/// Replaced by the function's own policy when the invocation is recorded.
const PLACEHOLDER_RETRY: AsyncRetry = AsyncRetry {
    max_attempts: 1,
    max_age_ms: 0,
    backoff_ms: 0,
};

fn forwarded(seq: u64, queued: QueuedInvocation) -> Result<ForwardedInvocation, &'static str> {
    let uuid = |text: &str| {
        text.parse::<uuid::Uuid>()
            .map_err(|_| "an id is not a UUID")
    };
    let headers = wire::headers_from_wire(queued.headers).map_err(|_| "a header is invalid")?;
    Ok(ForwardedInvocation {
        seq,
        new: NewInvocation {
            id: InvocationId(uuid(&queued.id)?),
            project_id: ProjectId(uuid(&queued.project_id)?),
            function_id: FunctionId(uuid(&queued.function_id)?),
            version: queued.version,
            agent_id: None,
            idempotency_key: (!queued.idempotency_key.is_empty()).then_some(queued.idempotency_key),
            retry: PLACEHOLDER_RETRY,
            request: StoredRequest {
                method: queued.method,
                uri: queued.uri,
                prefix: queued.prefix,
                headers: crate::invocations::encode_headers(&headers),
                body: queued.body.to_vec(),
                client: queued.client_address,
            },
        },
        function: queued.function,
    })
}

fn finished_event(event: FinishedInvocation, node: &str) -> EventKind {
    EventKind::InvocationFinished {
        project: event.project_id,
        function: event.function,
        agent: None,
        invocation: None,
        status: u16::try_from(event.status).unwrap_or(0),
        version: Some(event.version),
        target: Some("edge".to_owned()),
        duration_us: Some(event.duration_us),
        node: Some(node.to_owned()),
    }
}
