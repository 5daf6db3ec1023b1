//! What a peer's certificate must say: exactly one URI SAN, a SPIFFE ID in our trust domain,
//! and the identity the connection expects.

use rustls_pki_types::CertificateDer;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::FromDer as _;

use crate::SpiffeId;
use crate::spiffe_id::InvalidSpiffeId;

/// Which peers a connection accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peers {
    /// Only this identity (a node dialling the coordinator, the coordinator dialling a node).
    Exactly(SpiffeId),
    /// Any edge node of the trust domain (the coordinator's cluster listener; which node it is
    /// is checked against its registration).
    Edges,
    /// Any identity of the trust domain (a node's listener, whose gRPC calls are then checked).
    TrustDomain,
}

/// Why a peer's certificate names no identity we accept.
#[derive(Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    /// The peer sent no certificate.
    #[error("the peer sent no certificate")]
    NoCertificate,
    /// The leaf certificate could not be parsed.
    #[error("the certificate cannot be parsed: {0}")]
    Unparsable(String),
    /// No URI SAN.
    #[error("the certificate has no URI SAN (an X.509 SVID has exactly one)")]
    NoSpiffeId,
    /// Several URI SANs.
    #[error("the certificate has {0} URI SANs (an X.509 SVID has exactly one)")]
    SeveralUriSans(usize),
    /// The URI SAN is not a SPIFFE ID.
    #[error(transparent)]
    NotSpiffe(#[from] InvalidSpiffeId),
    /// An identity of another trust domain.
    #[error("{found} is not in trust domain {expected}")]
    ForeignTrustDomain {
        /// The peer's identity.
        found: SpiffeId,
        /// Ours.
        expected: String,
    },
    /// An identity of our trust domain, but not one this connection accepts.
    #[error("{found} is not {expected}")]
    Unexpected {
        /// The peer's identity.
        found: SpiffeId,
        /// What was accepted.
        expected: String,
    },
}

/// As its message: rustls shows a refusal's reason by `Debug`, in errors and logs.
impl std::fmt::Debug for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

/// The SPIFFE ID of a leaf certificate: its one URI SAN.
pub fn spiffe_id_of(leaf: &CertificateDer<'_>) -> Result<SpiffeId, PeerError> {
    let (_, certificate) = X509Certificate::from_der(leaf.as_ref())
        .map_err(|error| PeerError::Unparsable(error.to_string()))?;
    let names = certificate
        .subject_alternative_name()
        .map_err(|error| PeerError::Unparsable(error.to_string()))?;
    let uris: Vec<&str> = names
        .iter()
        .flat_map(|names| names.value.general_names.iter())
        .filter_map(|name| match name {
            GeneralName::URI(uri) => Some(*uri),
            _ => None,
        })
        .collect();
    match uris.as_slice() {
        [] => Err(PeerError::NoSpiffeId),
        [uri] => Ok(uri.parse()?),
        several => Err(PeerError::SeveralUriSans(several.len())),
    }
}

/// The identity of the peer that sent `certificates` (leaf first).
pub fn peer_id(certificates: &[CertificateDer<'_>]) -> Result<SpiffeId, PeerError> {
    spiffe_id_of(certificates.first().ok_or(PeerError::NoCertificate)?)
}

impl Peers {
    /// Checks the peer's leaf against this policy, in `trust_domain`.
    pub(crate) fn check(
        &self,
        leaf: &CertificateDer<'_>,
        trust_domain: &str,
    ) -> Result<SpiffeId, PeerError> {
        let found = spiffe_id_of(leaf)?;
        if found.trust_domain() != trust_domain {
            return Err(PeerError::ForeignTrustDomain {
                found,
                expected: trust_domain.to_owned(),
            });
        }
        let accepted = match self {
            Self::Exactly(expected) => &found == expected,
            Self::Edges => found.edge_node().is_some(),
            Self::TrustDomain => true,
        };
        if accepted {
            Ok(found)
        } else {
            let expected = match self {
                Self::Exactly(expected) => expected.to_string(),
                Self::Edges => format!("an edge node of {trust_domain}"),
                Self::TrustDomain => trust_domain.to_owned(),
            };
            Err(PeerError::Unexpected { found, expected })
        }
    }
}
