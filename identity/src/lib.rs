//! SPIFFE X.509 identities for the mutual TLS between the coordinator and its edge nodes.
//!
//! An [`Identity`] is read from the three files SPIRE's helper keeps up to date (certificate
//! chain, key, trust bundle) and read again when they change, so a rotated certificate or
//! bundle takes effect on the next handshake, without a restart. Its TLS configs speak TLS 1.3
//! only and check the peer's certificate twice: it must chain to the bundle (expiry, key
//! usage, a CA certificate used as a leaf, all by webpki), and its one URI SAN must be a SPIFFE
//! ID of our trust domain that the connection accepts ([`Peers`]).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::crypto::CryptoProvider;
use tokio::sync::watch;

pub mod dev;
mod https;
mod peer;
mod spiffe_id;
mod svid;
mod tls;

pub use https::{CertificateFiles, https_acceptor};
pub use peer::{PeerError, Peers, peer_id, spiffe_id_of};
pub use spiffe_id::{InvalidSpiffeId, SpiffeId, check_trust_domain};
pub use svid::{BUNDLE_FILE, CERTIFICATE_FILE, IdentityError, KEY_FILE, SvidPaths};
pub use tls::ALPN_H2;

use svid::{Svid, SvidFiles};

/// How often the files are compared with what was loaded.
pub const DEFAULT_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// This process's identity, reloaded when its files change. Cheap to clone.
#[derive(Clone)]
pub struct Identity {
    shared: Arc<Shared>,
}

struct Shared {
    paths: SvidPaths,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<Svid>>,
    /// Counts the loads: a test or an operator can wait for the next one.
    generation: watch::Sender<u64>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("id", &self.id().to_string())
            .field("certificate", &self.shared.paths.certificate)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Loads the identity in `paths` and, when called in a Tokio runtime, starts comparing the
    /// files every `reload_interval` (the task ends with the last clone of the identity).
    pub fn load(paths: SvidPaths, reload_interval: Duration) -> Result<Self, IdentityError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let files = SvidFiles::read(&paths)?;
        let svid = Svid::parse(&paths, &files, &provider)?;
        let identity = Self {
            shared: Arc::new(Shared {
                paths,
                provider,
                current: RwLock::new(Arc::new(svid)),
                generation: watch::Sender::new(0),
            }),
        };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(watch_files(
                Arc::downgrade(&identity.shared),
                files,
                reload_interval,
            ));
        }
        Ok(identity)
    }

    /// This process's SPIFFE ID, as the current certificate names it.
    pub fn id(&self) -> SpiffeId {
        self.current().id.clone()
    }

    /// The trust domain peers must belong to.
    pub fn trust_domain(&self) -> String {
        self.current().id.trust_domain().to_owned()
    }

    /// Ticks each time the files are loaded again.
    pub fn reloads(&self) -> watch::Receiver<u64> {
        self.shared.generation.subscribe()
    }

    fn current(&self) -> Arc<Svid> {
        self.shared.current()
    }
}

impl Shared {
    fn current(&self) -> Arc<Svid> {
        Arc::clone(
            &self
                .current
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        )
    }

    fn replace(&self, files: SvidFiles) -> Result<(), IdentityError> {
        let svid = Svid::parse(&self.paths, &files, &self.provider)?;
        *self
            .current
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(svid);
        self.generation.send_modify(|generation| *generation += 1);
        Ok(())
    }
}

/// Something read from files and read again when they change.
pub(crate) trait Reload: Send + Sync + 'static {
    /// The files' contents, compared to notice a change.
    type Files: PartialEq + Clone + Send + 'static;
    fn read(&self) -> Result<Self::Files, IdentityError>;
    fn replace(&self, files: Self::Files) -> Result<(), IdentityError>;
}

impl Reload for Shared {
    type Files = SvidFiles;

    fn read(&self) -> Result<SvidFiles, IdentityError> {
        SvidFiles::read(&self.paths)
    }

    fn replace(&self, files: SvidFiles) -> Result<(), IdentityError> {
        Shared::replace(self, files)?;
        tracing::info!(id = %self.current().id, "identity reloaded");
        Ok(())
    }
}

/// Compares the files with the last ones loaded every `interval`, until `watched` is gone; a
/// change that does not parse (a rotation half written) keeps what is in use and is tried
/// again at the next look.
pub(crate) async fn watch_files<R: Reload>(
    watched: std::sync::Weak<R>,
    mut loaded: R::Files,
    interval: Duration,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let Some(watched) = watched.upgrade() else {
            return;
        };
        let reader = Arc::clone(&watched);
        let files = match tokio::task::spawn_blocking(move || reader.read()).await {
            Ok(Ok(files)) => files,
            Ok(Err(error)) => {
                tracing::warn!(%error, "certificate files cannot be read; keeping the ones loaded");
                continue;
            }
            Err(_) => return,
        };
        if files == loaded {
            continue;
        }
        match watched.replace(files.clone()) {
            Ok(()) => loaded = files,
            Err(error) => {
                tracing::warn!(%error, "new certificate files are not usable yet; keeping the ones loaded");
            }
        }
    }
}
