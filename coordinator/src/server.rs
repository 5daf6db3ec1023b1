//! Running the coordinator: its database, its signing key, and its API on a listener with the
//! limits every SirsiNexus listener has.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Extension;
use axum::extract::ConnectInfo;
use hyper_util::service::TowerToHyperService;
use nexus_http::ServerLimits;
use nexus_store::Store;
use sha2::{Digest as _, Sha256};
use tokio::net::TcpListener;

use crate::api::{AppState, router};
use crate::auth::access_token::AccessTokenKeys;

/// What the coordinator runs with.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// `sqlite://PATH`, a file path, or `postgres://…`.
    pub database_url: String,
    /// The file holding the access-token signing secret; created (mode 0600) when missing,
    /// so tokens survive a restart. Replicas must share it.
    pub signing_key_file: PathBuf,
    /// The directory for the coordinator's files: uploaded components under `blobs/`.
    pub state_dir: PathBuf,
    /// The listener's limits.
    pub limits: ServerLimits,
}

/// Why the coordinator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be opened or migrated.
    #[error("database: {0}")]
    Store(#[from] nexus_store::Error),
    /// The signing key could not be read or created.
    #[error("signing key {path}: {reason}")]
    SigningKey {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Opens the database (migrating it) and the signing key, and serves the API on `listener`
/// until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    config: CoordinatorConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    let store = Store::connect(&config.database_url).await?;
    store.migrate().await?;
    let keys = signing_keys(&config.signing_key_file)?;
    let app = router(AppState::new(Arc::new(store), keys, &config.state_dir));
    let served = nexus_http::serve(listener, &config.limits, shutdown, |client| {
        TowerToHyperService::new(app.clone().layer(Extension(ConnectInfo(client))))
    })
    .await;
    if let Err(error) = served {
        tracing::error!(%error, "the coordinator's listener failed");
    }
    Ok(())
}

/// The signing key in `path`, created when missing. Its id is derived from the secret, so
/// every replica sharing the file names it alike.
fn signing_keys(path: &Path) -> Result<AccessTokenKeys, StartError> {
    let failed = |reason: String| StartError::SigningKey {
        path: path.to_owned(),
        reason,
    };
    let secret = match std::fs::read_to_string(path) {
        Ok(text) => hex::decode(text.trim()).map_err(|error| failed(error.to_string()))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            let mut secret = [0u8; 32];
            getrandom::fill(&mut secret).map_err(|error| failed(error.to_string()))?;
            write_private(path, &hex::encode(secret)).map_err(|error| failed(error.to_string()))?;
            secret.to_vec()
        }
        Err(error) => return Err(failed(error.to_string())),
    };
    if secret.len() < 32 {
        return Err(failed("the secret must be at least 32 bytes".to_owned()));
    }
    let kid = hex::encode(&Sha256::digest(&secret)[..6]);
    Ok(AccessTokenKeys::new(&kid, &secret))
}

/// Writes `text` to a new file only its owner can read.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(text.as_bytes())
}
