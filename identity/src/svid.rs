//! An X.509 SVID read from files in the layout SPIRE's helper writes: the certificate chain,
//! its key, and the trust bundle (the CAs peers' certificates must chain to).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::ClientCertVerifier;
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::SpiffeId;
use crate::peer::{PeerError, spiffe_id_of};

/// The names spiffe-helper gives its files by default.
pub const CERTIFICATE_FILE: &str = "svid.pem";
/// See [`CERTIFICATE_FILE`].
pub const KEY_FILE: &str = "svid_key.pem";
/// See [`CERTIFICATE_FILE`].
pub const BUNDLE_FILE: &str = "svid_bundle.pem";

/// Where an identity's three files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SvidPaths {
    /// The certificate chain, leaf first (PEM).
    pub certificate: PathBuf,
    /// The leaf's private key (PEM, PKCS#8, SEC1 or PKCS#1).
    pub key: PathBuf,
    /// The trust bundle: the trust domain's CA certificates (PEM).
    pub bundle: PathBuf,
}

impl SvidPaths {
    /// `svid.pem`, `svid_key.pem` and `svid_bundle.pem` in `dir`, as spiffe-helper writes them.
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            certificate: dir.join(CERTIFICATE_FILE),
            key: dir.join(KEY_FILE),
            bundle: dir.join(BUNDLE_FILE),
        }
    }
}

/// Why an identity could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// A file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// A file holds no usable certificate or key.
    #[error("{path}: {reason}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The identity's own certificate is not an X.509 SVID.
    #[error("{path}: {source}")]
    NotAnSvid {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong with it.
        source: PeerError,
    },
}

/// The three files' contents, compared to notice a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SvidFiles {
    pub(crate) certificate: Vec<u8>,
    pub(crate) key: Vec<u8>,
    pub(crate) bundle: Vec<u8>,
}

impl SvidFiles {
    pub(crate) fn read(paths: &SvidPaths) -> Result<Self, IdentityError> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|source| IdentityError::Read {
                path: path.to_owned(),
                source,
            })
        };
        Ok(Self {
            certificate: read(&paths.certificate)?,
            key: read(&paths.key)?,
            bundle: read(&paths.bundle)?,
        })
    }
}

/// A loaded identity: what the TLS configs use until the files change.
pub(crate) struct Svid {
    pub(crate) id: SpiffeId,
    pub(crate) certified: Arc<CertifiedKey>,
    pub(crate) roots: Arc<RootCertStore>,
    pub(crate) client_verifier: Arc<dyn ClientCertVerifier>,
}

impl Svid {
    pub(crate) fn parse(
        paths: &SvidPaths,
        files: &SvidFiles,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Self, IdentityError> {
        let invalid = |path: &Path, reason: String| IdentityError::Invalid {
            path: path.to_owned(),
            reason,
        };
        let chain = certificates(&files.certificate)
            .map_err(|reason| invalid(&paths.certificate, reason))?;
        let key = PrivateKeyDer::from_pem_slice(&files.key)
            .map_err(|error| invalid(&paths.key, format!("no private key: {error}")))?;
        let id = spiffe_id_of(&chain[0]).map_err(|source| IdentityError::NotAnSvid {
            path: paths.certificate.clone(),
            source,
        })?;
        let certified = CertifiedKey::from_der(chain, key, provider).map_err(|error| {
            invalid(
                &paths.key,
                format!("the key does not fit the certificate: {error}"),
            )
        })?;
        let mut roots = RootCertStore::empty();
        for ca in certificates(&files.bundle).map_err(|reason| invalid(&paths.bundle, reason))? {
            roots
                .add(ca)
                .map_err(|error| invalid(&paths.bundle, format!("a CA certificate: {error}")))?;
        }
        let roots = Arc::new(roots);
        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(provider))
                .build()
                .map_err(|error| invalid(&paths.bundle, error.to_string()))?;
        Ok(Self {
            id,
            certified: Arc::new(certified),
            roots,
            client_verifier,
        })
    }
}

fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certificates = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| format!("not PEM certificates: {error}"))?;
    if certificates.is_empty() {
        return Err("no certificate".to_owned());
    }
    Ok(certificates)
}
