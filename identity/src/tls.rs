//! rustls configs over an [`Identity`]: TLS 1.3 only, our certificate from the identity loaded
//! now, the peer's checked against the bundle loaded now and a [`Peers`] policy.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, verify_server_cert_signed_by_trust_anchor};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::{ClientHello, ParsedCertificate, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio_rustls::{TlsAcceptor, TlsConnector};

use crate::{Identity, PeerError, Peers, Shared};

/// HTTP/2, the only protocol the cluster speaks.
pub const ALPN_H2: &[u8] = b"h2";

impl Identity {
    /// A server config that asks every client for a certificate and accepts `peers`.
    pub fn server_config(&self, peers: Peers) -> Result<Arc<ServerConfig>, rustls::Error> {
        let mut config = ServerConfig::builder_with_provider(Arc::clone(&self.shared.provider))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(Arc::new(ClientVerifier {
                shared: Arc::clone(&self.shared),
                peers,
            }))
            .with_cert_resolver(Arc::new(OwnCertificate(Arc::clone(&self.shared))));
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        Ok(Arc::new(config))
    }

    /// A client config that presents this identity and accepts only a server in `peers`.
    pub fn client_config(&self, peers: Peers) -> Result<Arc<ClientConfig>, rustls::Error> {
        let mut config = ClientConfig::builder_with_provider(Arc::clone(&self.shared.provider))
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(ServerVerifier {
                shared: Arc::clone(&self.shared),
                peers,
            }))
            .with_client_cert_resolver(Arc::new(OwnCertificate(Arc::clone(&self.shared))));
        config.alpn_protocols = vec![ALPN_H2.to_vec()];
        config.enable_sni = false;
        Ok(Arc::new(config))
    }

    /// Accepts connections from `peers`.
    pub fn acceptor(&self, peers: Peers) -> Result<TlsAcceptor, rustls::Error> {
        Ok(TlsAcceptor::from(self.server_config(peers)?))
    }

    /// Connects to servers in `peers`, with the name [`Self::server_name`].
    pub fn connector(&self, peers: Peers) -> Result<TlsConnector, rustls::Error> {
        Ok(TlsConnector::from(self.client_config(peers)?))
    }

    /// The server name to hand [`TlsConnector::connect`]; it is neither sent nor checked.
    pub fn server_name() -> ServerName<'static> {
        ServerName::IpAddress(std::net::IpAddr::from(std::net::Ipv4Addr::UNSPECIFIED).into())
    }
}

/// Our certificate, whichever is loaded at the handshake.
#[derive(Debug)]
struct OwnCertificate(Arc<Shared>);

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl ResolvesServerCert for OwnCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.current().certified))
    }
}

impl ResolvesClientCert for OwnCertificate {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _schemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(&self.0.current().certified))
    }

    fn has_certs(&self) -> bool {
        true
    }
}

fn refused(error: PeerError) -> rustls::Error {
    rustls::Error::InvalidCertificate(CertificateError::Other(OtherError(Arc::new(error))))
}

fn schemes(provider: &CryptoProvider) -> Vec<SignatureScheme> {
    provider
        .signature_verification_algorithms
        .supported_schemes()
}

/// Checks a client: chain and signatures by webpki against the current bundle, then the
/// SPIFFE ID.
#[derive(Debug)]
struct ClientVerifier {
    shared: Arc<Shared>,
    peers: Peers,
}

impl ClientCertVerifier for ClientVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // The bundle changes under us; clients have one certificate and need no hint.
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let svid = self.shared.current();
        svid.client_verifier
            .verify_client_cert(end_entity, intermediates, now)?;
        self.peers
            .check(end_entity, svid.id.trust_domain())
            .map_err(refused)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.shared.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.shared.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        schemes(&self.shared.provider)
    }
}

/// Checks a server: chain by webpki against the current bundle (no name: SVIDs carry none),
/// then the SPIFFE ID.
#[derive(Debug)]
struct ServerVerifier {
    shared: Arc<Shared>,
    peers: Peers,
}

impl ServerCertVerifier for ServerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let svid = self.shared.current();
        let parsed = ParsedCertificate::try_from(end_entity)?;
        verify_server_cert_signed_by_trust_anchor(
            &parsed,
            &svid.roots,
            intermediates,
            now,
            self.shared.provider.signature_verification_algorithms.all,
        )?;
        self.peers
            .check(end_entity, svid.id.trust_domain())
            .map_err(refused)?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.shared.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.shared.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        schemes(&self.shared.provider)
    }
}
