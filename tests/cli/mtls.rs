//! Mutual TLS between the coordinator and its nodes, with SPIFFE identities from
//! `nexus dev-certs`, on real processes: nodes join and are called over TLS 1.3 only; a node
//! cannot register under another node's name, nor call another node; plain TCP gets nothing
//! of HTTP/2 from either side. And the API served over HTTPS.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test reports failures by panicking"
)]

use std::collections::HashSet;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use nexus_edge::cluster::{coordinator_client, mutual_tls_channel};
use nexus_identity::{DEFAULT_RELOAD_INTERVAL, Identity, Peers, SpiffeId, SvidPaths};
use nexus_proto::node::v1::edge_service_client::EdgeServiceClient;
use nexus_proto::node::v1::{Capacity, DrainRequest, RegisterRequest};
use nexus_tests::postgres::FreshDatabase;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio::process::Command;

#[path = "cluster/processes.rs"]
#[allow(
    dead_code,
    reason = "the helpers of every cluster test; this one uses a few"
)]
mod processes;

use processes::{Coordinator, Edge, STARTUP, next_line, served_by};

const TRUST_DOMAIN: &str = "nexus.test";

/// `nexus dev-certs` for the coordinator and nodes `edge-a` and `edge-b`.
async fn dev_certs(dir: &Path) {
    let made = Command::new(env!("CARGO_BIN_EXE_nexus"))
        .args(["dev-certs", "--trust-domain", TRUST_DOMAIN])
        .args(["--node", "edge-a", "--node", "edge-b"])
        .arg("--dir")
        .arg(dir)
        .output()
        .await
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let printed = String::from_utf8_lossy(&made.stdout);
    assert!(
        printed.contains("spiffe://nexus.test/edge/edge-b"),
        "{printed}"
    );
}

fn identity(dir: &Path) -> Identity {
    Identity::load(SvidPaths::in_dir(dir), DEFAULT_RELOAD_INTERVAL).unwrap()
}

/// What a plain-TCP client that speaks HTTP/2 gets from a mutual-TLS listener: a TLS alert
/// or nothing, never a SETTINGS frame.
async fn plain_tcp_gets_no_http2(url: &str) {
    let address = url.strip_prefix("https://").unwrap();
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(STARTUP, stream.read_to_end(&mut answer))
        .await
        .expect("the listener kept a plain-TCP client waiting");
    // 0x15: a TLS alert record; an HTTP/2 server would answer with a SETTINGS frame (type 4).
    assert!(
        answer.is_empty() || answer[0] == 0x15,
        "{address} answered plain TCP with {answer:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_and_are_called_over_mutual_tls_only() {
    let database = FreshDatabase::create().await;
    let state = tempfile::tempdir().unwrap();
    let certs = state.path().join("certs");
    dev_certs(&certs).await;
    let coordinator_identity = certs.join("coordinator");
    let coordinator = Coordinator::start_with(
        &database,
        &state.path().join("coordinator"),
        &[
            "--identity-dir",
            coordinator_identity.to_str().unwrap(),
            "--cluster-listen",
            "127.0.0.1:0",
        ],
    )
    .await;
    assert!(
        coordinator.join.starts_with("https://"),
        "{}",
        coordinator.join
    );
    let mut edges = Vec::new();
    for name in ["edge-a", "edge-b"] {
        let dir = certs.join("edge").join(name);
        let edge = Edge::start_with(
            &coordinator,
            name,
            &state.path().join(name),
            &["--identity-dir", dir.to_str().unwrap()],
        )
        .await;
        assert!(edge.base.starts_with("https://"), "{}", edge.base);
        edges.push(edge);
    }
    coordinator.deploy().await;
    let mut served = HashSet::new();
    for _ in 0..20 {
        served.insert(served_by(&coordinator.invoke().await));
    }
    let ids: HashSet<String> = edges.iter().map(|edge| edge.id.clone()).collect();
    assert_eq!(served, ids);

    // A node proving edge-b's identity cannot register as edge-a.
    let edge_b = identity(&certs.join("edge/edge-b"));
    let mut client =
        coordinator_client(&coordinator.join, &coordinator.token, Some(&edge_b)).unwrap();
    let refused = client
        .register(RegisterRequest {
            name: "edge-a".to_owned(),
            address: "https://127.0.0.1:9".to_owned(),
            capacity: Some(Capacity {
                instance_slots: 1,
                memory_bytes: 1 << 20,
            }),
            ..RegisterRequest::default()
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused}");
    assert!(
        refused
            .message()
            .contains("spiffe://nexus.test/edge/edge-b does not match its registration as spiffe://nexus.test/edge/edge-a"),
        "{refused}"
    );

    // Only the coordinator may call a node: edge-b calling edge-a is refused.
    let edge_a_id = SpiffeId::edge(TRUST_DOMAIN, "edge-a").unwrap();
    let channel = mutual_tls_channel(&edges[0].base, &edge_b, Peers::Exactly(edge_a_id)).unwrap();
    let refused = EdgeServiceClient::new(channel)
        .drain(DrainRequest::default())
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied, "{refused}");
    assert!(
        refused.message().contains("may not call this node"),
        "{refused}"
    );

    // Plain TCP gets no HTTP/2 from the cluster listener nor from a node.
    plain_tcp_gets_no_http2(&coordinator.join).await;
    plain_tcp_gets_no_http2(&edges[0].base).await;
    // The nodes still serve.
    assert_eq!(coordinator.invoke().await.status, http::StatusCode::OK);
}

#[tokio::test]
async fn the_api_is_served_over_https_when_configured() {
    let state = tempfile::tempdir().unwrap();
    let certs = state.path().join("certs");
    dev_certs(&certs).await;
    let mut child = Command::new(env!("CARGO_BIN_EXE_nexus"))
        .args(["coordinator", "--listen", "127.0.0.1:0"])
        .arg("--state-dir")
        .arg(state.path())
        .arg("--database-url")
        .arg(format!(
            "sqlite://{}",
            state.path().join("nexus.db").display()
        ))
        .arg("--signing-key-file")
        .arg(state.path().join("signing-key"))
        .arg("--tls-certificate")
        .arg(certs.join("https/cert.pem"))
        .arg("--tls-key")
        .arg(certs.join("https/key.pem"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines =
        tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(child.stdout.take().unwrap()));
    let listening = next_line(&mut lines).await;
    let address = listening
        .strip_prefix("Coordinator listening on https://")
        .unwrap_or_else(|| panic!("unexpected output: {listening}"))
        .to_owned();

    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(certs.join("ca.pem")).unwrap())
        .unwrap();
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(&address).await.unwrap();
    let mut tls = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    tls.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tls.read_to_string(&mut answer).await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");

    // Plain HTTP on the same port is not served.
    let mut plain = TcpStream::connect(&address).await.unwrap();
    plain
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = plain.read_to_end(&mut answer).await;
    assert!(!answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
}
