//! A development trust domain: a CA and the X.509 SVIDs it signs, written in the layout
//! SPIRE's helper uses. What `nexus dev-certs` makes, and what the tests make their good and
//! bad certificates with. Never for production: the CA key sits next to the certificates.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use time::OffsetDateTime;

use crate::{
    BUNDLE_FILE, CERTIFICATE_FILE, CertificateFiles, KEY_FILE, SpiffeId, SvidPaths,
    check_trust_domain,
};

/// The CA's certificate and key in a dev trust domain's directory.
pub const CA_CERTIFICATE_FILE: &str = "ca.pem";
/// See [`CA_CERTIFICATE_FILE`].
pub const CA_KEY_FILE: &str = "ca_key.pem";
/// How long a dev SVID is valid.
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(30 * 24 * 3600);

/// Why a dev certificate could not be made.
#[derive(Debug, thiserror::Error)]
pub enum DevCertError {
    /// Not a trust domain name.
    #[error("`{name}` is not a trust domain: {reason}")]
    TrustDomain {
        /// The name given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The directory's CA is of another trust domain.
    #[error("{path} is the CA of trust domain `{kept}`, not `{asked}`")]
    OtherTrustDomain {
        /// The CA's certificate.
        path: PathBuf,
        /// Its trust domain.
        kept: String,
        /// The one asked for.
        asked: String,
    },
    /// rcgen could not make or sign it.
    #[error("making a certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    File {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// What an SVID says; the defaults make a good one, the tests change them to make bad ones.
#[derive(Debug, Clone)]
pub struct SvidSpec {
    /// The URI SANs: one SPIFFE ID for a real SVID.
    pub uris: Vec<String>,
    /// The start of its validity.
    pub not_before: OffsetDateTime,
    /// The end of its validity.
    pub not_after: OffsetDateTime,
    /// Whether it says it is a CA (an SVID must not).
    pub ca: bool,
}

impl SvidSpec {
    /// A valid SVID for `id`, from an hour ago for [`DEFAULT_VALIDITY`].
    pub fn for_id(id: &SpiffeId) -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            uris: vec![id.to_string()],
            not_before: now - time::Duration::hours(1),
            not_after: now + DEFAULT_VALIDITY,
            ca: false,
        }
    }
}

/// A certificate and its key, PEM.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate.
    pub certificate_pem: String,
    /// Its private key (PKCS#8).
    pub key_pem: String,
}

/// A dev trust domain's CA.
pub struct DevAuthority {
    trust_domain: String,
    certificate_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for DevAuthority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevAuthority")
            .field("trust_domain", &self.trust_domain)
            .finish_non_exhaustive()
    }
}

impl DevAuthority {
    /// A new CA for `trust_domain`, valid for ten years.
    pub fn new(trust_domain: &str) -> Result<Self, DevCertError> {
        check_trust_domain(trust_domain).map_err(|reason| DevCertError::TrustDomain {
            name: trust_domain.to_owned(),
            reason,
        })?;
        let key = KeyPair::generate()?;
        let params = ca_params(trust_domain)?;
        let certificate_pem = params.self_signed(&key)?.pem();
        Ok(Self {
            trust_domain: trust_domain.to_owned(),
            certificate_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA kept in `dir` by [`Self::save`], or a new one saved there.
    pub fn open_or_create(dir: &Path, trust_domain: &str) -> Result<Self, DevCertError> {
        let (certificate, key) = (dir.join(CA_CERTIFICATE_FILE), dir.join(CA_KEY_FILE));
        if !certificate.exists() {
            let authority = Self::new(trust_domain)?;
            authority.save(dir)?;
            return Ok(authority);
        }
        let certificate_pem = read(&certificate)?;
        let key = KeyPair::from_pem(&read(&key)?)?;
        let kept = trust_domain_of_ca(&certificate_pem);
        if kept.as_deref() != Some(trust_domain) {
            return Err(DevCertError::OtherTrustDomain {
                path: certificate,
                kept: kept.unwrap_or_default(),
                asked: trust_domain.to_owned(),
            });
        }
        // The subject and key are what a signature names; the same parameters give both.
        let issuer = Issuer::new(ca_params(trust_domain)?, key);
        Ok(Self {
            trust_domain: trust_domain.to_owned(),
            certificate_pem,
            issuer,
        })
    }

    /// Writes the CA's certificate and key (owner-only) into `dir`.
    pub fn save(&self, dir: &Path) -> Result<(), DevCertError> {
        write(&dir.join(CA_CERTIFICATE_FILE), &self.certificate_pem, 0o644)?;
        write(
            &dir.join(CA_KEY_FILE),
            &self.issuer.key().serialize_pem(),
            0o600,
        )
    }

    /// The trust domain.
    pub fn trust_domain(&self) -> &str {
        &self.trust_domain
    }

    /// The trust bundle: the CA's certificate.
    pub fn bundle_pem(&self) -> &str {
        &self.certificate_pem
    }

    /// The SPIFFE ID `path` (e.g. `/edge/edge-a`) names in this trust domain.
    pub fn id(&self, path: &str) -> Result<SpiffeId, crate::InvalidSpiffeId> {
        format!("spiffe://{}{path}", self.trust_domain).parse()
    }

    /// A certificate as `spec` says, signed by this CA.
    pub fn issue(&self, spec: &SvidSpec) -> Result<Issued, DevCertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::OrganizationName, "SirsiNexus dev");
        params.not_before = spec.not_before;
        params.not_after = spec.not_after;
        params.subject_alt_names = spec
            .uris
            .iter()
            .map(|uri| Ok(SanType::URI(uri.as_str().try_into()?)))
            .collect::<Result<_, rcgen::Error>>()?;
        if spec.ca {
            params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
            params.key_usages = vec![
                KeyUsagePurpose::KeyCertSign,
                KeyUsagePurpose::DigitalSignature,
            ];
        } else {
            params.is_ca = IsCa::ExplicitNoCa;
            params.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
        }
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let certificate = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            certificate_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Issues an SVID as `spec` says and writes it, with this CA as its bundle, into `dir`
    /// (`svid.pem`, `svid_key.pem` owner-only, `svid_bundle.pem`), replacing what was there.
    pub fn write_svid(&self, dir: &Path, spec: &SvidSpec) -> Result<SvidPaths, DevCertError> {
        let issued = self.issue(spec)?;
        let paths = SvidPaths::in_dir(dir);
        // The bundle and key first: a reader that sees the new certificate finds its key.
        write(&dir.join(BUNDLE_FILE), &self.certificate_pem, 0o644)?;
        write(&dir.join(KEY_FILE), &issued.key_pem, 0o600)?;
        write(&dir.join(CERTIFICATE_FILE), &issued.certificate_pem, 0o644)?;
        Ok(paths)
    }
}

impl DevAuthority {
    /// A server certificate for `names` (DNS names or IP addresses), for a listener's HTTPS,
    /// written as `cert.pem` and `key.pem` (owner-only) into `dir`.
    pub fn write_https(
        &self,
        dir: &Path,
        names: &[String],
    ) -> Result<CertificateFiles, DevCertError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.subject_alt_names = names
            .iter()
            .map(|name| match name.parse::<std::net::IpAddr>() {
                Ok(address) => Ok(SanType::IpAddress(address)),
                Err(_) => Ok(SanType::DnsName(name.as_str().try_into()?)),
            })
            .collect::<Result<_, rcgen::Error>>()?;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::hours(1);
        params.not_after = now + DEFAULT_VALIDITY;
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let certificate = params.signed_by(&key, &self.issuer)?;
        let files = CertificateFiles {
            certificate: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        };
        write(&files.key, &key.serialize_pem(), 0o600)?;
        write(&files.certificate, &certificate.pem(), 0o644)?;
        Ok(files)
    }
}

fn ca_params(trust_domain: &str) -> Result<CertificateParams, DevCertError> {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("{trust_domain} dev CA"));
    params.subject_alt_names = vec![SanType::URI(
        format!("spiffe://{trust_domain}").as_str().try_into()?,
    )];
    let now = OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::hours(1);
    params.not_after = now + time::Duration::days(3650);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    Ok(params)
}

/// The trust domain a dev CA's certificate names in its URI SAN `spiffe://<trust domain>`.
fn trust_domain_of_ca(pem: &str) -> Option<String> {
    use rustls_pki_types::pem::PemObject as _;
    use x509_parser::prelude::{FromDer as _, GeneralName, X509Certificate};
    let der = rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).ok()?;
    let (_, certificate) = X509Certificate::from_der(der.as_ref()).ok()?;
    let names = certificate.subject_alternative_name().ok()??;
    names
        .value
        .general_names
        .iter()
        .find_map(|name| match name {
            GeneralName::URI(uri) => uri.strip_prefix("spiffe://").map(str::to_owned),
            _ => None,
        })
}

fn read(path: &Path) -> Result<String, DevCertError> {
    std::fs::read_to_string(path).map_err(|source| DevCertError::File {
        path: path.to_owned(),
        source,
    })
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
fn write(path: &Path, text: &str, mode: u32) -> Result<(), DevCertError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let failed = |source| DevCertError::File {
        path: path.to_owned(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(failed)?;
    let temporary = dir.join(format!(
        ".{}.tmp",
        path.file_name()
            .and_then(|name| name.to_str())
            .unwrap_or("file")
    ));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(&temporary)
        .map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    std::fs::rename(&temporary, path).map_err(failed)
}
