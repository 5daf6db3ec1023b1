//! Handshakes between identities made by a dev trust domain: what is accepted, what is
//! refused and why, and a rotation taking effect without a restart.
#![expect(clippy::unwrap_used, reason = "tests report failures by panicking")]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use nexus_identity::dev::{DevAuthority, Issued, SvidSpec};
use nexus_identity::{Identity, Peers, SpiffeId, peer_id};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::TlsConnector;

const DOMAIN: &str = "nexus.test";

fn identity(dir: &Path, authority: &DevAuthority, spec: &SvidSpec) -> Identity {
    let paths = authority.write_svid(dir, spec).unwrap();
    Identity::load(paths, Duration::from_millis(20)).unwrap()
}

fn id(path: &str) -> SpiffeId {
    format!("spiffe://{DOMAIN}{path}").parse().unwrap()
}

/// The server's and the client's outcome of one handshake; the server echoes a byte.
async fn handshake(
    server: &Identity,
    accept: Peers,
    client: &Identity,
    expect: Peers,
) -> (Result<SpiffeId, String>, Result<Vec<u8>, String>) {
    let (server_io, client_io) = tokio::io::duplex(64 * 1024);
    let acceptor = server.acceptor(accept).unwrap();
    let connector = client.connector(expect).unwrap();
    let serving = async move {
        let mut tls = acceptor
            .accept(server_io)
            .await
            .map_err(|e| e.to_string())?;
        let peer = peer_id(tls.get_ref().1.peer_certificates().unwrap_or_default())
            .map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
        tls.write_all(&byte).await.map_err(|e| e.to_string())?;
        tls.flush().await.map_err(|e| e.to_string())?;
        Ok(peer)
    };
    let calling = async move {
        let mut tls = connector
            .connect(Identity::server_name(), client_io)
            .await
            .map_err(|e| e.to_string())?;
        let seen = tls.get_ref().1.peer_certificates().unwrap_or_default()[0].to_vec();
        tls.write_all(b"x").await.map_err(|e| e.to_string())?;
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.map_err(|e| e.to_string())?;
        Ok(seen)
    };
    tokio::join!(serving, calling)
}

struct Domain {
    authority: DevAuthority,
    dir: tempfile::TempDir,
    coordinator: Identity,
}

impl Domain {
    fn new() -> Self {
        let authority = DevAuthority::new(DOMAIN).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let coordinator = identity(
            &dir.path().join("coordinator"),
            &authority,
            &SvidSpec::for_id(&id("/coordinator")),
        );
        Self {
            authority,
            dir,
            coordinator,
        }
    }

    fn edge(&self, name: &str, change: impl FnOnce(&mut SvidSpec)) -> Identity {
        let mut spec = SvidSpec::for_id(&id(&format!("/edge/{name}")));
        change(&mut spec);
        identity(&self.dir.path().join(name), &self.authority, &spec)
    }

    /// A client presenting `issued`, whatever it says, to the coordinator's cluster listener;
    /// the coordinator's verdict.
    async fn presents(&self, issued: &Issued) -> Result<SpiffeId, String> {
        let (server_io, client_io) = tokio::io::duplex(64 * 1024);
        let acceptor = self.coordinator.acceptor(Peers::Edges).unwrap();
        let connector = raw_connector(issued);
        // The client's side fails when the server refuses; only the server's verdict counts,
        // and the client holds its connection until the server has it.
        let calling = connector.connect(Identity::server_name(), client_io);
        let serving = async move {
            let tls = acceptor
                .accept(server_io)
                .await
                .map_err(|e| e.to_string())?;
            peer_id(tls.get_ref().1.peer_certificates().unwrap_or_default())
                .map_err(|e| e.to_string())
        };
        tokio::join!(serving, calling).0
    }

    fn issue(&self, change: impl FnOnce(&mut SvidSpec)) -> Issued {
        let mut spec = SvidSpec::for_id(&id("/edge/edge-a"));
        change(&mut spec);
        self.authority.issue(&spec).unwrap()
    }

    /// A node dialling the coordinator's cluster listener.
    async fn node_dials(&self, node: &Identity) -> Result<SpiffeId, String> {
        let expect = Peers::Exactly(id("/coordinator"));
        handshake(&self.coordinator, Peers::Edges, node, expect)
            .await
            .0
    }
}

#[tokio::test]
async fn an_edge_node_and_the_coordinator_know_each_other() {
    let domain = Domain::new();
    let node = domain.edge("edge-a", |_| {});
    assert_eq!(node.id(), id("/edge/edge-a"));
    assert_eq!(domain.node_dials(&node).await.unwrap(), id("/edge/edge-a"));
    // The coordinator dialling the node it registered as `edge-a`.
    let (served, called) = handshake(
        &node,
        Peers::Exactly(id("/coordinator")),
        &domain.coordinator,
        Peers::Exactly(id("/edge/edge-a")),
    )
    .await;
    assert_eq!(served.unwrap(), id("/coordinator"));
    called.unwrap();
}

#[tokio::test]
async fn the_certificate_a_good_node_presents_is_accepted() {
    let domain = Domain::new();
    assert_eq!(
        domain.presents(&domain.issue(|_| {})).await.unwrap(),
        id("/edge/edge-a")
    );
}

#[tokio::test]
async fn an_expired_certificate_is_refused() {
    let domain = Domain::new();
    let expired = domain.issue(|spec| {
        spec.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(2);
        spec.not_after = time::OffsetDateTime::now_utc() - time::Duration::days(1);
    });
    let refused = domain.presents(&expired).await.unwrap_err();
    assert!(refused.contains("expired"), "{refused}");
}

#[tokio::test]
async fn another_trust_domain_is_refused() {
    let domain = Domain::new();
    // Signed by another trust domain's CA, which our bundle does not hold.
    let foreign = DevAuthority::new("elsewhere.test").unwrap();
    let stranger = foreign
        .issue(&SvidSpec::for_id(
            &"spiffe://elsewhere.test/edge/edge-a".parse().unwrap(),
        ))
        .unwrap();
    let refused = domain.presents(&stranger).await.unwrap_err();
    assert!(refused.contains("UnknownIssuer"), "{refused}");
    // Signed by our CA but naming another trust domain.
    let renamed = domain.issue(|spec| {
        spec.uris = vec!["spiffe://elsewhere.test/edge/edge-a".to_owned()];
    });
    let refused = domain.presents(&renamed).await.unwrap_err();
    assert!(
        refused.contains("spiffe://elsewhere.test/edge/edge-a is not in trust domain nexus.test"),
        "{refused}"
    );
}

#[tokio::test]
async fn two_uri_sans_are_refused() {
    let domain = Domain::new();
    let twice = domain.issue(|spec| spec.uris.push(id("/edge/edge-b").to_string()));
    let refused = domain.presents(&twice).await.unwrap_err();
    assert!(refused.contains("2 URI SANs"), "{refused}");
    // Nor will an identity load such a certificate as its own.
    let dir = tempfile::tempdir().unwrap();
    let mut spec = SvidSpec::for_id(&id("/edge/edge-a"));
    spec.uris.push(id("/edge/edge-b").to_string());
    let paths = domain.authority.write_svid(dir.path(), &spec).unwrap();
    let error = Identity::load(paths, Duration::from_secs(1)).unwrap_err();
    assert!(error.to_string().contains("2 URI SANs"), "{error}");
}

#[tokio::test]
async fn a_ca_certificate_as_the_leaf_is_refused() {
    let domain = Domain::new();
    let refused = domain
        .presents(&domain.issue(|spec| spec.ca = true))
        .await
        .unwrap_err();
    assert!(refused.contains("CaUsedAsEndEntity"), "{refused}");
}

#[tokio::test]
async fn a_certificate_without_a_spiffe_id_is_refused() {
    let domain = Domain::new();
    let refused = domain
        .presents(&domain.issue(|spec| spec.uris.clear()))
        .await
        .unwrap_err();
    assert!(refused.contains("no URI SAN"), "{refused}");
    let refused = domain
        .presents(&domain.issue(|spec| spec.uris = vec!["https://edge-a.example".to_owned()]))
        .await
        .unwrap_err();
    assert!(refused.contains("is not a SPIFFE ID"), "{refused}");
}

#[tokio::test]
async fn an_identity_the_connection_does_not_expect_is_refused() {
    let domain = Domain::new();
    let node = domain.edge("edge-b", |_| {});
    // The coordinator dials what registered as `edge-a`; `edge-b` answers.
    let (_, called) = handshake(
        &node,
        Peers::Exactly(id("/coordinator")),
        &domain.coordinator,
        Peers::Exactly(id("/edge/edge-a")),
    )
    .await;
    let refused = called.unwrap_err();
    assert!(
        refused.contains("spiffe://nexus.test/edge/edge-b is not spiffe://nexus.test/edge/edge-a"),
        "{refused}"
    );
    // A node's certificate where the coordinator's is expected, and the reverse.
    let refused = handshake(
        &domain.coordinator,
        Peers::Edges,
        &node,
        Peers::Exactly(id("/edge/edge-a")),
    )
    .await
    .1
    .unwrap_err();
    assert!(
        refused.contains("is not spiffe://nexus.test/edge/edge-a"),
        "{refused}"
    );
    let other_coordinator = domain.edge("coordinator-imposter", |spec| {
        spec.uris = vec![id("/not-an-edge").to_string()];
    });
    let refused = domain.node_dials(&other_coordinator).await.unwrap_err();
    assert!(
        refused.contains("is not an edge node of nexus.test"),
        "{refused}"
    );
    let refused = domain
        .presents(&domain.issue(|spec| spec.uris = vec![id("/coordinator").to_string()]))
        .await
        .unwrap_err();
    assert!(
        refused.contains("is not an edge node of nexus.test"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_plain_tcp_client_is_refused() {
    let domain = Domain::new();
    let (server_io, mut client_io) = tokio::io::duplex(64 * 1024);
    let acceptor = domain.coordinator.acceptor(Peers::Edges).unwrap();
    let accepting = tokio::spawn(async move { acceptor.accept(server_io).await.map(|_| ()) });
    client_io
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    let refused = accepting.await.unwrap().unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::InvalidData, "{refused}");
}

#[tokio::test]
async fn a_rotated_certificate_and_bundle_take_effect_without_a_restart() {
    let domain = Domain::new();
    let node = domain.edge("edge-a", |_| {});
    let first = handshake(
        &node,
        Peers::Exactly(id("/coordinator")),
        &domain.coordinator,
        Peers::Exactly(id("/edge/edge-a")),
    )
    .await
    .1
    .unwrap();
    // SPIRE's helper writes a new certificate for the same identity.
    let mut reloads = node.reloads();
    let paths = domain
        .authority
        .write_svid(
            &domain.dir.path().join("edge-a"),
            &SvidSpec::for_id(&id("/edge/edge-a")),
        )
        .unwrap();
    reloads.changed().await.unwrap();
    let rotated = CertificateDer::from_pem_file(&paths.certificate).unwrap();
    let second = handshake(
        &node,
        Peers::Exactly(id("/coordinator")),
        &domain.coordinator,
        Peers::Exactly(id("/edge/edge-a")),
    )
    .await
    .1
    .unwrap();
    assert_ne!(first, second);
    assert_eq!(second, rotated.to_vec());

    // The trust domain moves to a new CA: the node, reloaded, refuses the coordinator's
    // certificate of the old CA until the coordinator has its new one.
    let successor = DevAuthority::new(DOMAIN).unwrap();
    let mut reloads = node.reloads();
    successor
        .write_svid(
            &domain.dir.path().join("edge-a"),
            &SvidSpec::for_id(&id("/edge/edge-a")),
        )
        .unwrap();
    reloads.changed().await.unwrap();
    let refused = handshake(
        &domain.coordinator,
        Peers::Edges,
        &node,
        Peers::Exactly(id("/coordinator")),
    )
    .await
    .1
    .unwrap_err();
    // The new CA has the old one's name: the chain is found and its signature fails.
    assert!(refused.contains("invalid peer certificate"), "{refused}");
    let mut reloads = domain.coordinator.reloads();
    successor
        .write_svid(
            &domain.dir.path().join("coordinator"),
            &SvidSpec::for_id(&id("/coordinator")),
        )
        .unwrap();
    reloads.changed().await.unwrap();
    assert_eq!(domain.node_dials(&node).await.unwrap(), id("/edge/edge-a"));
}

/// A client presenting `issued` and trusting any server: what a stranger, or a node with a
/// bad certificate, sends.
fn raw_connector(issued: &Issued) -> TlsConnector {
    let chain = vec![CertificateDer::from_pem_slice(issued.certificate_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(issued.key_pem.as_bytes()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
        .with_client_auth_cert(chain, key)
        .unwrap();
    TlsConnector::from(Arc::new(config))
}

#[derive(Debug)]
struct AnyServer(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
