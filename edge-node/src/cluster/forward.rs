//! The forwarder: hands the [outbox](super::outbox)'s entries to a coordinator, oldest first,
//! and forgets them once one has recorded them. The next batch goes only after the previous
//! one is acknowledged, and whatever has no answer is sent again (to the next coordinator):
//! the coordinator records each `seq` once, and relies on seeing them in order.

use std::sync::Arc;
use std::time::Duration;

use nexus_proto::node::v1::ForwardRequest;
use tokio::sync::watch;

use super::CoordinatorClient;
use super::outbox::{Outbox, OutboxError};

/// Most entries one `Forward` call carries.
const BATCH_ENTRIES: usize = 1024;
/// Most payload bytes one call carries, unless its one entry is larger: well under the
/// coordinator's 4 MiB message limit.
const BATCH_BYTES: usize = 1024 * 1024;
/// How long a coordinator may take to answer before the next one is tried.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// Waits between failed attempts, doubling up to the cap.
const RETRY_FIRST: Duration = Duration::from_millis(100);
const RETRY_CAP: Duration = Duration::from_secs(2);

/// Why a batch was not forwarded.
#[derive(Debug, thiserror::Error)]
enum ForwardError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error("the coordinator refused: {0}")]
    Refused(#[from] tonic::Status),
    #[error("the coordinator did not answer within {FORWARD_TIMEOUT:?}")]
    TimedOut,
    #[error("the coordinator recorded none of the batch (through seq {0})")]
    NoProgress(u64),
    #[error("no coordinator to forward to")]
    NoCoordinator,
}

/// Forwards one outbox to the coordinators, in order, until stopped.
pub struct Forwarder {
    outbox: Arc<Outbox>,
    coordinators: Arc<[CoordinatorClient]>,
    node_name: String,
    /// The node id each coordinator gave (empty while none): when set, a batch goes only to
    /// a coordinator the node holds a lease with, so that what the node accepted while cut
    /// off arrives when the node can run it again, not before.
    leases: Option<watch::Receiver<Vec<String>>>,
}

impl Forwarder {
    /// Forwards `outbox` to any of `coordinators` (replicas share one store), as `node_name`.
    pub fn new(
        outbox: Arc<Outbox>,
        coordinators: Arc<[CoordinatorClient]>,
        node_name: String,
    ) -> Self {
        Self {
            outbox,
            coordinators,
            node_name,
            leases: None,
        }
    }

    /// Forwards only to coordinators the node holds a lease with, as `leases` tells.
    #[must_use]
    pub fn when_leased(mut self, leases: watch::Receiver<Vec<String>>) -> Self {
        self.leases = Some(leases);
        self
    }

    /// `index` if the node holds a lease with that coordinator (or no leases are followed),
    /// else one it holds a lease with, once it holds any.
    async fn leased(&self, index: usize) -> usize {
        let Some(leases) = &self.leases else {
            return index;
        };
        let mut leases = leases.clone();
        let Ok(ids) = leases
            .wait_for(|ids| ids.iter().any(|id| !id.is_empty()))
            .await
        else {
            return index;
        };
        if ids.get(index).is_some_and(|id| !id.is_empty()) {
            index
        } else {
            ids.iter().position(|id| !id.is_empty()).unwrap_or(index)
        }
    }

    /// Forwards whatever the outbox holds, as it comes, until `stop` fires. What is not
    /// acknowledged by then stays on disk for the next start.
    #[tracing::instrument(name = "edge_node.forward", skip_all, fields(outbox = %self.outbox.id()))]
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        let mut coordinator = 0;
        let mut wait = RETRY_FIRST;
        let mut failing = false;
        loop {
            let forwarded = tokio::select! {
                forwarded = self.forward_next(coordinator) => forwarded,
                _ = stop.wait_for(|stop| *stop) => return,
            };
            match forwarded {
                Ok(waiting) => {
                    if failing {
                        tracing::info!(coordinator, waiting, "forwarding the outbox again");
                    }
                    failing = false;
                    wait = RETRY_FIRST;
                    continue;
                }
                // Once per outage: every attempt would flood the log while a coordinator is away.
                Err(error) if !failing => {
                    let waiting = self.outbox.stats().entries;
                    tracing::warn!(%error, coordinator, waiting, "cannot forward the outbox; retrying");
                    failing = true;
                }
                Err(error) => tracing::debug!(%error, coordinator, "cannot forward the outbox"),
            }
            coordinator = (coordinator + 1) % self.coordinators.len().max(1);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|stop| *stop) => return,
            }
            wait = (wait * 2).min(RETRY_CAP);
        }
    }

    /// Waits for entries, sends the oldest batch to coordinator `index` and forgets what it
    /// recorded. Returns how many entries were waiting.
    async fn forward_next(&self, index: usize) -> Result<u64, ForwardError> {
        self.outbox.wait_for_entries().await;
        let index = self.leased(index).await;
        let waiting = self.outbox.stats().entries;
        let entries = self.outbox.batch(BATCH_ENTRIES, BATCH_BYTES).await?;
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return Ok(waiting);
        };
        let (first, last) = (first.seq, last.seq);
        let mut client = self
            .coordinators
            .get(index)
            .cloned()
            .ok_or(ForwardError::NoCoordinator)?;
        let request = ForwardRequest {
            outbox: self.outbox.id().to_string(),
            node_name: self.node_name.clone(),
            entries,
        };
        let answered = tokio::time::timeout(FORWARD_TIMEOUT, client.forward(request)).await;
        let answer = answered.map_err(|_| ForwardError::TimedOut)??.into_inner();
        // Never forget what was not sent, whatever the answer says.
        let through = answer.forwarded_through.min(last);
        if through < first {
            return Err(ForwardError::NoProgress(answer.forwarded_through));
        }
        self.outbox.acknowledge(through).await?;
        Ok(waiting)
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicU32, Ordering};

    use futures::stream::Empty;
    use nexus_proto::node::v1::node_service_server::{NodeService, NodeServiceServer};
    use nexus_proto::node::v1::{
        ComponentChunk, FetchComponentRequest, ForwardResponse, Heartbeat, LeaseUpdate,
        QueuedInvocation, RegisterRequest, RegisterResponse, RoutesRequest, RoutesResponse,
    };
    use nexus_proto::wire::RequireToken;
    use tokio::net::TcpListener;
    use tokio::sync::mpsc;
    use tonic::service::interceptor::InterceptedService;
    use tonic::transport::server::TcpIncoming;
    use tonic::{Request, Response, Status, Streaming};

    use super::*;
    use crate::cluster::coordinator_client;

    const TOKEN: &str = "join-token";
    const WAIT: Duration = Duration::from_secs(30);

    /// Refuses the first `refusals` calls, then records at most `records` entries of each
    /// batch. Tells the test of every call, and whether it was answered with success.
    struct FakeCoordinator {
        refusals: AtomicU32,
        records: u64,
        calls: mpsc::UnboundedSender<(ForwardRequest, bool)>,
    }

    #[tonic::async_trait]
    impl NodeService for FakeCoordinator {
        async fn register(
            &self,
            _: Request<RegisterRequest>,
        ) -> Result<Response<RegisterResponse>, Status> {
            Err(Status::unimplemented("register"))
        }

        type LeaseStream = Empty<Result<LeaseUpdate, Status>>;

        async fn lease(
            &self,
            _: Request<Streaming<Heartbeat>>,
        ) -> Result<Response<Self::LeaseStream>, Status> {
            Err(Status::unimplemented("lease"))
        }

        type FetchComponentStream = Empty<Result<ComponentChunk, Status>>;

        async fn fetch_component(
            &self,
            _: Request<FetchComponentRequest>,
        ) -> Result<Response<Self::FetchComponentStream>, Status> {
            Err(Status::unimplemented("fetch_component"))
        }

        async fn routes(
            &self,
            _: Request<RoutesRequest>,
        ) -> Result<Response<RoutesResponse>, Status> {
            Err(Status::unimplemented("routes"))
        }

        async fn forward(
            &self,
            request: Request<ForwardRequest>,
        ) -> Result<Response<ForwardResponse>, Status> {
            let request = request.into_inner();
            let refuse = self
                .refusals
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |left| {
                    left.checked_sub(1)
                })
                .is_ok();
            let first = request.entries.first().map_or(0, |entry| entry.seq);
            let last = request.entries.last().map_or(0, |entry| entry.seq);
            let _ = self.calls.send((request, !refuse));
            if refuse {
                return Err(Status::unavailable("not yet"));
            }
            let forwarded_through = last.min(first + self.records - 1);
            Ok(Response::new(ForwardResponse { forwarded_through }))
        }
    }

    async fn serve(coordinator: FakeCoordinator) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let service = NodeServiceServer::new(coordinator);
        let server = tonic::transport::Server::builder()
            .add_service(InterceptedService::new(service, RequireToken::new(TOKEN)))
            .serve_with_incoming(TcpIncoming::from(listener));
        tokio::spawn(server);
        address
    }

    fn client(address: SocketAddr) -> CoordinatorClient {
        coordinator_client(&format!("http://{address}"), TOKEN, None).unwrap()
    }

    async fn outbox_with(dir: &tempfile::TempDir, entries: usize) -> Arc<Outbox> {
        let outbox = Outbox::open(&dir.path().join("outbox.sqlite"), 1 << 30)
            .await
            .unwrap();
        let accepts = (0..entries).map(|n| {
            outbox.accept(QueuedInvocation {
                id: format!("invocation {n}"),
                ..QueuedInvocation::default()
            })
        });
        for accepted in futures::future::join_all(accepts).await {
            accepted.unwrap();
        }
        outbox
    }

    /// Forwards `outbox` to `coordinators` until it is empty, then stops the forwarder; returns
    /// every call the coordinator saw, in order.
    async fn forward_all(
        outbox: &Arc<Outbox>,
        coordinators: Vec<CoordinatorClient>,
        mut calls: mpsc::UnboundedReceiver<(ForwardRequest, bool)>,
    ) -> Vec<(ForwardRequest, bool)> {
        let (stop, stopped) = watch::channel(false);
        let forwarder = Forwarder::new(Arc::clone(outbox), coordinators.into(), "edge-1".into());
        let forwarding = tokio::spawn(forwarder.run(stopped));
        tokio::time::timeout(WAIT, outbox.wait_until_empty())
            .await
            .unwrap();
        stop.send_replace(true);
        tokio::time::timeout(WAIT, forwarding)
            .await
            .unwrap()
            .unwrap();
        let mut seen = Vec::new();
        while let Ok(call) = calls.try_recv() {
            assert_eq!(call.0.outbox, outbox.id().to_string());
            assert_eq!(call.0.node_name, "edge-1");
            seen.push(call);
        }
        seen
    }

    fn seqs(request: &ForwardRequest) -> Vec<u64> {
        request.entries.iter().map(|entry| entry.seq).collect()
    }

    #[tokio::test]
    async fn every_entry_arrives_once_in_order_after_an_outage() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = outbox_with(&dir, 600).await;
        let (calls, received) = mpsc::unbounded_channel();
        let refusals = AtomicU32::new(3);
        let address = serve(FakeCoordinator {
            refusals,
            records: u64::MAX / 2,
            calls,
        })
        .await;
        let seen = forward_all(&outbox, vec![client(address), client(address)], received).await;

        let (answered, refused): (Vec<_>, Vec<_>) = seen.iter().partition(|(_, ok)| *ok);
        assert_eq!(refused.len(), 3);
        for (request, _) in &refused {
            assert_eq!(seqs(request).first(), Some(&1));
        }
        let recorded: Vec<u64> = answered
            .iter()
            .flat_map(|(request, _)| seqs(request))
            .collect();
        assert_eq!(recorded, (1..=600).collect::<Vec<_>>());
        assert!(
            answered
                .iter()
                .all(|(request, _)| request.entries.len() <= BATCH_ENTRIES)
        );
        assert_eq!((outbox.stats().entries, outbox.stats().forwarded), (0, 600));
    }

    #[tokio::test]
    async fn a_partial_answer_sends_the_rest_next() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = outbox_with(&dir, 300).await;
        let (calls, received) = mpsc::unbounded_channel();
        let refusals = AtomicU32::new(0);
        let records = 100;
        let address = serve(FakeCoordinator {
            refusals,
            records,
            calls,
        })
        .await;
        let seen = forward_all(&outbox, vec![client(address)], received).await;
        let firsts: Vec<u64> = seen.iter().map(|(request, _)| seqs(request)[0]).collect();
        assert_eq!(firsts, [1, 101, 201]);
    }

    #[tokio::test]
    async fn stops_promptly_while_a_call_hangs() {
        let dir = tempfile::tempdir().unwrap();
        let outbox = outbox_with(&dir, 3).await;
        let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let coordinators = vec![client(silent.local_addr().unwrap())];
        let (stop, stopped) = watch::channel(false);
        let forwarder = Forwarder::new(Arc::clone(&outbox), coordinators.into(), "edge-1".into());
        let forwarding = tokio::spawn(forwarder.run(stopped));
        // The forwarder has dialled a coordinator that never answers: its call hangs.
        let _connection = tokio::time::timeout(WAIT, silent.accept()).await.unwrap();
        stop.send_replace(true);
        let prompt = Duration::from_secs(1);
        tokio::time::timeout(prompt, forwarding)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(outbox.stats().entries, 3);
    }
}
