//! TLS for a public HTTP listener: a certificate and key from files (a web PKI certificate,
//! cert-manager's secret), read again when they change. Clients are not asked for one.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::crypto::CryptoProvider;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::{IdentityError, Reload, watch_files};

/// Where a listener's certificate chain and key are (PEM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateFiles {
    /// The chain, leaf first.
    pub certificate: PathBuf,
    /// The leaf's private key.
    pub key: PathBuf,
}

#[derive(Debug)]
struct Serving {
    files: CertificateFiles,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
}

type Contents = (Vec<u8>, Vec<u8>);

fn read(files: &CertificateFiles) -> Result<Contents, IdentityError> {
    let read = |path: &PathBuf| {
        std::fs::read(path).map_err(|source| IdentityError::Read {
            path: path.clone(),
            source,
        })
    };
    Ok((read(&files.certificate)?, read(&files.key)?))
}

fn parse(
    files: &CertificateFiles,
    (certificate, key): &Contents,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, IdentityError> {
    let invalid = |path: &PathBuf, reason: String| IdentityError::Invalid {
        path: path.clone(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(certificate)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(&files.certificate, error.to_string()))?;
    if chain.is_empty() {
        return Err(invalid(&files.certificate, "no certificate".to_owned()));
    }
    let key = PrivateKeyDer::from_pem_slice(key)
        .map_err(|error| invalid(&files.key, format!("no private key: {error}")))?;
    CertifiedKey::from_der(chain, key, provider).map_err(|error| {
        invalid(
            &files.key,
            format!("the key does not fit the certificate: {error}"),
        )
    })
}

impl Reload for Serving {
    type Files = Contents;

    fn read(&self) -> Result<Contents, IdentityError> {
        read(&self.files)
    }

    fn replace(&self, contents: Contents) -> Result<(), IdentityError> {
        let key = parse(&self.files, &contents, &self.provider)?;
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(key);
        tracing::info!(certificate = %self.files.certificate.display(), "certificate reloaded");
        Ok(())
    }
}

impl ResolvesServerCert for Serving {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        ))
    }
}

/// A TLS 1.2 and 1.3 acceptor (HTTP/2 and HTTP/1.1 by ALPN) serving the certificate in `files`,
/// compared with the files every `reload_interval` from a task of the current Tokio runtime.
pub fn https_acceptor(
    files: CertificateFiles,
    reload_interval: Duration,
) -> Result<TlsAcceptor, IdentityError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let loaded = read(&files)?;
    let key = parse(&files, &loaded, &provider)?;
    let serving = Arc::new(Serving {
        files,
        provider: Arc::clone(&provider),
        current: RwLock::new(Arc::new(key)),
    });
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(watch_files(
            Arc::downgrade(&serving),
            loaded,
            reload_interval,
        ));
    }
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| IdentityError::Invalid {
            path: serving.files.certificate.clone(),
            reason: error.to_string(),
        })?
        .with_no_client_auth()
        .with_cert_resolver(Arc::clone(&serving) as _);
    config.alpn_protocols = vec![crate::ALPN_H2.to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
