//! Store-and-forward: a node whose clients call its own ingress keeps serving them while it is
//! cut off from the coordinator for 60 s, keeps the asynchronous invocations it accepts and
//! the calls it answers in its outbox on disk, and forwards them once it is reachable again:
//! every accepted invocation recorded and run once, under the id its client was given, and
//! every call it answered published once as an event.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use http::{Request, StatusCode};
use http_body_util::Full;
use nexus_client::{Client, EventFilter, EventFrame, EventKind};
use nexus_proto::node::v1::{
    Capacity, FinishedInvocation, ForwardRequest, OutboxEntry, QueuedInvocation, RegisterRequest,
    RoutesRequest, outbox_entry,
};
use nexus_tests::HttpClient;
use nexus_tests::postgres::FreshDatabase;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, watch};

use super::durability::statuses;
use super::processes::{Coordinator, Edge, metric};

/// How long the node is cut off.
const CUT_OFF: Duration = Duration::from_secs(60);
/// Clients calling the node at once, each about every [`PACE`].
const CLIENTS: usize = 4;
const PACE: Duration = Duration::from_millis(20);
/// One call in this many is asynchronous.
const ASYNC_EVERY: usize = 4;

/// A TCP relay to a coordinator that can be cut like a network partition: no byte crosses it,
/// and connections already open, or opened meanwhile, stay open but silent until it heals
/// (then they are closed), so each side notices only by its own timeouts.
struct Partition {
    address: SocketAddr,
    cut: watch::Sender<bool>,
}

impl Partition {
    async fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (cut, _) = watch::channel(false);
        let cuts = cut.clone();
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut cut = cuts.subscribe();
                tokio::spawn(async move {
                    if !*cut.borrow_and_update() {
                        let Ok(mut outbound) = TcpStream::connect(target).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => return,
                            _ = cut.wait_for(|cut| *cut) => {}
                        }
                        let _silent = outbound;
                        let _ = cut.wait_for(|cut| !*cut).await;
                    } else {
                        let _ = cut.wait_for(|cut| !*cut).await;
                    }
                    drop(inbound);
                });
            }
        });
        Self { address, cut }
    }

    fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    fn set_cut(&self, cut: bool) {
        self.cut.send_replace(cut);
    }
}

/// What the clients saw.
#[derive(Default)]
struct Seen {
    answered: AtomicUsize,
    failures: Mutex<Vec<String>>,
    accepted: Mutex<Vec<String>>,
}

async fn call(client: &HttpClient, ingress: &str, n: usize, seen: &Seen) {
    if n.is_multiple_of(ASYNC_EVERY) {
        let request = Request::post(format!("{ingress}/shop/hello/queued/{n}"))
            .header("prefer", "respond-async")
            .body(Full::from(format!("call {n}")))
            .unwrap();
        match client.try_send(request).await {
            Ok(response) if response.status == StatusCode::ACCEPTED => {
                let id = response.json()["id"].as_str().unwrap().to_owned();
                seen.accepted.lock().await.push(id);
            }
            Ok(response) => seen.failures.lock().await.push(format!(
                "async {n}: {} {}",
                response.status,
                response.text()
            )),
            Err(error) => seen
                .failures
                .lock()
                .await
                .push(format!("async {n}: {error}")),
        }
        return;
    }
    match client
        .try_send(
            Request::get(format!("{ingress}/shop/hello/"))
                .body(Full::default())
                .unwrap(),
        )
        .await
    {
        Ok(response) if response.status == StatusCode::OK => {
            seen.answered.fetch_add(1, Ordering::Relaxed);
        }
        Ok(response) => seen.failures.lock().await.push(format!(
            "sync {n}: {} {}",
            response.status,
            response.text()
        )),
        Err(error) => seen
            .failures
            .lock()
            .await
            .push(format!("sync {n}: {error}")),
    }
}

/// Polls `condition` every 50 ms until it holds, for at most `within`.
async fn until<F: Future<Output = bool>>(
    within: Duration,
    what: &str,
    mut condition: impl FnMut() -> F,
) {
    let give_up = Instant::now() + within;
    while !condition().await {
        assert!(Instant::now() < give_up, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A coordinator on a fresh database with `hello` deployed, and a node with its own ingress
/// joined to it through a [`Partition`].
struct Behind {
    _database: FreshDatabase,
    state: tempfile::TempDir,
    coordinator: Coordinator,
    partition: Partition,
    node: Edge,
}

impl Behind {
    async fn start(name: &str) -> Self {
        let database = FreshDatabase::create().await;
        let state = tempfile::tempdir().unwrap();
        let coordinator = Coordinator::start(&database, &state.path().join("coordinator")).await;
        let target: SocketAddr = coordinator
            .join
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        let partition = Partition::start(target).await;
        let node = Edge::join(
            &partition.url(),
            &coordinator.token,
            name,
            &state.path().join(name),
            &["--ingress", "127.0.0.1:0"],
            &[],
        )
        .await;
        coordinator.deploy_component("hello", "hello").await;
        Self {
            _database: database,
            state,
            coordinator,
            partition,
            node,
        }
    }
}

/// Waits until the routing table reaches the node at `ingress` (within a heartbeat or two)
/// and it answers `hello`; until then it knows no such function, and records nothing.
async fn serves(client: &HttpClient, ingress: &str) {
    until(
        Duration::from_secs(30),
        "the node never served its ingress",
        || {
            let (client, url) = (client.clone(), format!("{ingress}/shop/hello/"));
            async move { client.get(&url).await.status == StatusCode::OK }
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_for_a_minute_keeps_serving_and_forwards_everything_once() {
    let Behind {
        _database,
        state: _state,
        coordinator,
        partition,
        node,
    } = Behind::start("edge-a").await;
    let ingress = node.ingress.clone().unwrap();
    let client = HttpClient::default();

    let watcher = Client::new(&coordinator.base)
        .unwrap()
        .with_token(coordinator.access_token.clone());
    let filter = EventFilter {
        types: vec!["invocation_finished".to_owned()],
        ..EventFilter::default()
    };
    let mut events = watcher.events("shop", &filter).await.unwrap();
    let forwarded_events = Arc::new(AtomicUsize::new(0));
    let counting = {
        let forwarded_events = Arc::clone(&forwarded_events);
        tokio::spawn(async move {
            while let Some(frame) = events.next().await {
                match frame.unwrap() {
                    EventFrame::Event(event) => {
                        if let EventKind::InvocationFinished(finished) = event.kind
                            && finished.node.as_deref() == Some("edge-a")
                        {
                            forwarded_events.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    EventFrame::Missed { message } => panic!("events were missed: {message}"),
                }
            }
        })
    };

    serves(&client, &ingress).await;
    let unknown = client.get(&format!("{ingress}/shop/nothing/")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.text());

    // Load throughout: calls answered now, and asynchronous ones.
    let seen = Arc::new(Seen::default());
    seen.answered.store(1, Ordering::Relaxed);
    let stop = Arc::new(AtomicBool::new(false));
    let next = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, ingress, seen, stop, next) = (
                client.clone(),
                ingress.clone(),
                Arc::clone(&seen),
                Arc::clone(&stop),
                Arc::clone(&next),
            );
            tokio::spawn(async move {
                let mut pace = tokio::time::interval(PACE);
                while !stop.load(Ordering::Relaxed) {
                    pace.tick().await;
                    call(
                        &client,
                        &ingress,
                        next.fetch_add(1, Ordering::Relaxed),
                        &seen,
                    )
                    .await;
                }
            })
        })
        .collect();
    until(Duration::from_secs(30), "no load before the cut", || {
        let seen = Arc::clone(&seen);
        async move { seen.answered.load(Ordering::Relaxed) >= 100 }
    })
    .await;

    // Cut off: the coordinator loses the node, the node keeps serving and queues.
    partition.set_cut(true);
    let cut_at = Instant::now();
    until(Duration::from_secs(15), "the coordinator never lost the node", || {
        let coordinator = &coordinator;
        let id = node.id.clone();
        async move { coordinator.node_states().await.get(&id).map(String::as_str) == Some("lost") }
    })
    .await;
    let answered_at_cut = seen.answered.load(Ordering::Relaxed);
    until(CUT_OFF, "the outbox did not fill while cut off", || {
        let (client, base) = (client.clone(), node.base.clone());
        async move { metric(&client, &base, "nexus_edge_outbox_entries").await > 100 }
    })
    .await;
    tokio::time::sleep(CUT_OFF.saturating_sub(cut_at.elapsed())).await;
    let waiting = metric(&client, &node.base, "nexus_edge_outbox_entries").await;
    let answered_while_cut = seen.answered.load(Ordering::Relaxed) - answered_at_cut;
    assert!(
        answered_while_cut > 1_000,
        "the node answered only {answered_while_cut} calls in {CUT_OFF:?} cut off"
    );

    // Reconnected: the outbox drains while the load goes on.
    partition.set_cut(false);
    let healed_at = Instant::now();
    until(Duration::from_secs(180), "the outbox never drained", || {
        let (client, base) = (client.clone(), node.base.clone());
        async move { metric(&client, &base, "nexus_edge_outbox_entries").await < 50 }
    })
    .await;
    let drained_in = healed_at.elapsed();
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.await.unwrap();
    }
    until(
        Duration::from_secs(30),
        "the last entries were not forwarded",
        || {
            let (client, base) = (client.clone(), node.base.clone());
            async move { metric(&client, &base, "nexus_edge_outbox_entries").await == 0 }
        },
    )
    .await;

    let failures = seen.failures.lock().await.clone();
    assert!(failures.is_empty(), "clients saw failures: {failures:?}");
    let accepted: BTreeSet<String> = seen.accepted.lock().await.iter().cloned().collect();
    let answered = seen.answered.load(Ordering::Relaxed);
    assert_eq!(
        accepted.len(),
        seen.accepted.lock().await.len(),
        "an id given twice"
    );

    // Every accepted invocation recorded once under its id and run; nothing else recorded.
    let all = loop {
        let all = statuses(&coordinator).await;
        if all.len() >= accepted.len()
            && all
                .values()
                .all(|(status, _)| status != "queued" && status != "running")
        {
            break all;
        }
        assert!(
            healed_at.elapsed() < Duration::from_secs(300),
            "{} of {} invocations recorded and finished",
            all.len(),
            accepted.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(all.keys().cloned().collect::<BTreeSet<_>>(), accepted);
    let failed: Vec<_> = all
        .iter()
        .filter(|(_, (status, _))| status != "succeeded")
        .collect();
    assert!(failed.is_empty(), "not succeeded: {failed:?}");
    let repeated = all.values().filter(|(_, attempts)| *attempts > 1).count();

    // Every answered call published once, as the node's.
    let forwarded = metric(&client, &node.base, "nexus_edge_outbox_forwarded_total").await;
    assert_eq!(forwarded, (answered + accepted.len()) as u64);
    until(Duration::from_secs(30), "forwarded events missing", || {
        let forwarded_events = Arc::clone(&forwarded_events);
        async move { forwarded_events.load(Ordering::Relaxed) >= answered }
    })
    .await;
    assert_eq!(forwarded_events.load(Ordering::Relaxed), answered);
    counting.abort();
    println!(
        "cut off {CUT_OFF:?}: {answered_while_cut} calls answered meanwhile, {waiting} entries \
         waiting at the end; after reconnecting the outbox drained in {drained_in:?}; in all \
         {answered} calls answered, {} invocations accepted, each recorded once and \
         succeeded ({repeated} after more than one attempt)",
        accepted.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forwarded_batch_sent_again_is_recorded_once() {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let coordinator = Coordinator::start(&database, &state.path().join("coordinator")).await;
    coordinator.deploy_component("hello", "hello").await;
    let mut node =
        nexus_edge::cluster::coordinator_client(&coordinator.join, &coordinator.token, None)
            .unwrap();

    // The routing table names the function's version and carries its record once.
    let registered = node
        .register(RegisterRequest {
            name: "fake".to_owned(),
            address: "http://127.0.0.1:9".to_owned(),
            capacity: Some(Capacity {
                instance_slots: 1,
                memory_bytes: 1 << 20,
            }),
            ..RegisterRequest::default()
        })
        .await
        .unwrap()
        .into_inner();
    let routes = node
        .routes(RoutesRequest {
            node_id: registered.node_id.clone(),
            known_deployments: Vec::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!routes.revision.is_empty());
    let [function] = routes.functions.as_slice() else {
        panic!("{:?}", routes.functions)
    };
    assert_eq!(
        (function.project.as_str(), function.function.as_str()),
        ("shop", "hello")
    );
    let live = &function.aliases[0];
    assert_eq!(live.name, "live");
    let main = live.main.clone().unwrap();
    assert_eq!(routes.deployments.len(), 1);
    assert_eq!(routes.deployments[0].id, main.deployment);
    let again = node
        .routes(RoutesRequest {
            node_id: registered.node_id,
            known_deployments: vec![main.deployment.clone()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.revision, routes.revision);
    assert!(
        again.deployments.is_empty(),
        "a record the node holds is not sent"
    );

    let watcher = Client::new(&coordinator.base)
        .unwrap()
        .with_token(coordinator.access_token.clone());
    let filter = EventFilter {
        types: vec!["invocation_finished".to_owned()],
        ..EventFilter::default()
    };
    let mut events = watcher.events("shop", &filter).await.unwrap();
    let queued = |seq: u64| OutboxEntry {
        seq,
        entry: Some(outbox_entry::Entry::Invocation(QueuedInvocation {
            id: uuid::Uuid::new_v4().to_string(),
            project_id: function.project_id.clone(),
            function_id: function.function_id.clone(),
            function: "hello".to_owned(),
            version: main.version,
            method: "GET".to_owned(),
            uri: "/shop/hello/".to_owned(),
            prefix: "/shop/hello".to_owned(),
            client_address: "127.0.0.1:1".to_owned(),
            ..QueuedInvocation::default()
        })),
    };
    let finished = |seq: u64, status: u32| OutboxEntry {
        seq,
        entry: Some(outbox_entry::Entry::Finished(FinishedInvocation {
            project_id: function.project_id.clone(),
            function: "hello".to_owned(),
            version: main.version,
            status,
            duration_us: 1_000,
            finished_at_ms: 0,
        })),
    };
    let unreadable = OutboxEntry {
        seq: 4,
        entry: Some(outbox_entry::Entry::Invocation(QueuedInvocation {
            id: "not a uuid".to_owned(),
            ..QueuedInvocation::default()
        })),
    };
    let outbox = uuid::Uuid::new_v4().to_string();
    let batch = vec![queued(1), finished(2, 201), queued(3), unreadable];
    let ids: BTreeSet<String> = batch
        .iter()
        .filter_map(|entry| match &entry.entry {
            Some(outbox_entry::Entry::Invocation(queued)) if queued.id != "not a uuid" => {
                Some(queued.id.clone())
            }
            _ => None,
        })
        .collect();
    let forward = |entries: Vec<OutboxEntry>| {
        let mut node = node.clone();
        let outbox = outbox.clone();
        async move {
            node.forward(ForwardRequest {
                outbox,
                node_name: "fake".to_owned(),
                entries,
            })
            .await
            .unwrap()
            .into_inner()
            .forwarded_through
        }
    };
    // Sent, then sent again as if the answer had been lost, then with one entry more.
    assert_eq!(forward(batch.clone()).await, 4);
    assert_eq!(forward(batch.clone()).await, 4);
    let mut longer = batch.clone();
    longer.push(finished(5, 202));
    assert_eq!(forward(longer).await, 5);

    // Recorded (before each answer) once each, the unreadable one dropped; they need not run
    // here (no node can).
    let all = statuses(&coordinator).await;
    assert_eq!(all.keys().cloned().collect::<BTreeSet<_>>(), ids);
    // The two forwarded calls once each: a call published twice would come before the later
    // batch's 202.
    let mut calls = Vec::new();
    while !calls.contains(&202) {
        let Some(Ok(EventFrame::Event(event))) = events.next().await else {
            panic!("the event stream ended")
        };
        if let EventKind::InvocationFinished(finished) = event.kind
            && finished.node.as_deref() == Some("fake")
        {
            calls.push(finished.status);
        }
    }
    assert_eq!(calls, vec![201, 202]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_restarted_while_cut_off_serves_what_it_served_before() {
    let Behind {
        _database,
        state,
        coordinator,
        partition,
        node,
    } = Behind::start("edge-b").await;
    let node_state = state.path().join("edge-b");
    let client = HttpClient::default();
    serves(&client, node.ingress.as_deref().unwrap()).await;

    // Cut off, then restarted: what it knows is on its disk.
    partition.set_cut(true);
    node.stop().await;
    let node =
        Edge::unregistered(&partition.url(), &coordinator.token, "edge-b", &node_state).await;
    let ingress = node.ingress.clone().unwrap();
    // What the node did just before may still wait in its outbox.
    let waiting = metric(&client, &node.base, "nexus_edge_outbox_entries").await;
    let answered = client.get(&format!("{ingress}/shop/hello/")).await;
    assert_eq!(answered.status, StatusCode::OK, "{}", answered.text());
    assert_eq!(answered.headers["nexus-version"], "1");
    let request = Request::post(format!("{ingress}/shop/hello/later"))
        .header("prefer", "respond-async")
        .header("idempotency-key", "order-7")
        .body(Full::from("later"))
        .unwrap();
    let accepted = client.send(request).await;
    assert_eq!(accepted.status, StatusCode::ACCEPTED, "{}", accepted.text());
    let id = accepted.json()["id"].as_str().unwrap().to_owned();
    // The client's retry with the same key is the same invocation.
    let retried = client
        .send(
            Request::post(format!("{ingress}/shop/hello/later"))
                .header("prefer", "respond-async")
                .header("idempotency-key", "order-7")
                .body(Full::from("later"))
                .unwrap(),
        )
        .await;
    assert_eq!(retried.status, StatusCode::ACCEPTED);
    assert_eq!(retried.json()["id"].as_str(), Some(id.as_str()));
    assert_eq!(retried.headers["nexus-idempotent-replay"], "true");
    // The call answered and one invocation, however often it was sent.
    assert_eq!(
        metric(&client, &node.base, "nexus_edge_outbox_entries").await,
        waiting + 2
    );

    // Back: the invocation is recorded under the id the client holds, and runs.
    partition.set_cut(false);
    until(Duration::from_secs(60), "the invocation never ran", || {
        let coordinator = &coordinator;
        let id = id.clone();
        async move {
            statuses(coordinator)
                .await
                .get(&id)
                .is_some_and(|(status, _)| status == "succeeded")
        }
    })
    .await;
    assert_eq!(statuses(&coordinator).await.len(), 1);
}
