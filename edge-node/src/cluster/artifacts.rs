//! Component bytes on the node's disk, by digest: fetched from the coordinator on first use,
//! checked against the digest, kept across restarts. (Compiled code is kept next to them by the
//! runtime's compile cache, keyed by the bytes and the engine.)

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nexus_proto::Digest;
use nexus_proto::node::v1::FetchComponentRequest;
use nexus_runtime::ArtifactSource;

use super::CoordinatorClient;

/// The largest component a node accepts from the coordinator.
pub const MAX_COMPONENT_BYTES: u64 = 256 * 1024 * 1024;

/// Why a component could not be had.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The coordinator did not answer or refused.
    #[error("fetching {digest} from the coordinator failed: {status}")]
    Coordinator {
        /// The component.
        digest: Digest,
        /// What the coordinator said.
        status: tonic::Status,
    },
    /// The bytes do not hash to the digest asked for.
    #[error("the coordinator sent bytes for {expected} that hash to {actual}")]
    Mismatch {
        /// What was asked for.
        expected: Digest,
        /// What arrived.
        actual: Digest,
    },
    /// More than [`MAX_COMPONENT_BYTES`].
    #[error("component {0} is larger than the node accepts")]
    TooLarge(Digest),
    /// The disk.
    #[error("storing component {digest}: {error}")]
    Io {
        /// The component.
        digest: Digest,
        /// What failed.
        error: std::io::Error,
    },
}

/// Components on disk under one directory, one file per digest.
pub struct ArtifactStore {
    dir: PathBuf,
    /// One fetch per digest at a time; later callers find the file.
    fetching: Mutex<HashMap<Digest, Arc<tokio::sync::Mutex<()>>>>,
}

impl ArtifactStore {
    /// The store in `dir`, created when missing.
    pub fn open(dir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            fetching: Mutex::default(),
        })
    }

    fn path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(digest.hex())
    }

    /// Whether the bytes of `digest` are on disk.
    pub async fn contains(&self, digest: &Digest) -> bool {
        tokio::fs::metadata(self.path(digest))
            .await
            .is_ok_and(|metadata| metadata.is_file())
    }

    /// Makes sure the bytes of `digest` are on disk, fetching them from the first of
    /// `coordinators` that has them if not (replicas share one blob store).
    pub async fn ensure(
        &self,
        digest: &Digest,
        coordinators: &[CoordinatorClient],
    ) -> Result<(), FetchError> {
        if self.contains(digest).await {
            return Ok(());
        }
        let lock = Arc::clone(
            self.fetching
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .entry(*digest)
                .or_default(),
        );
        let _fetching = lock.lock().await;
        if !self.contains(digest).await {
            let mut fetched = Err(FetchError::Coordinator {
                digest: *digest,
                status: tonic::Status::unavailable("no coordinator to fetch from"),
            });
            for coordinator in coordinators {
                fetched = fetch(digest, coordinator).await;
                if fetched.is_ok() {
                    break;
                }
            }
            self.store(digest, &fetched?).await?;
        }
        self.fetching
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .remove(digest);
        Ok(())
    }

    /// Writes to a temporary file and renames it, so a crash never leaves a partial component
    /// under its digest.
    async fn store(&self, digest: &Digest, bytes: &[u8]) -> Result<(), FetchError> {
        let io = |error| FetchError::Io {
            digest: *digest,
            error,
        };
        let temporary = self.dir.join(format!(".{}.partial", digest.hex()));
        tokio::fs::write(&temporary, bytes).await.map_err(io)?;
        tokio::fs::rename(&temporary, self.path(digest))
            .await
            .map_err(io)
    }
}

async fn fetch(digest: &Digest, coordinator: &CoordinatorClient) -> Result<Vec<u8>, FetchError> {
    let failed = |status| FetchError::Coordinator {
        digest: *digest,
        status,
    };
    let mut chunks = coordinator
        .clone()
        .fetch_component(FetchComponentRequest {
            digest: digest.to_string(),
        })
        .await
        .map_err(failed)?
        .into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = chunks.message().await.map_err(failed)? {
        if chunk.size > MAX_COMPONENT_BYTES
            || (bytes.len() + chunk.data.len()) as u64 > MAX_COMPONENT_BYTES
        {
            return Err(FetchError::TooLarge(*digest));
        }
        if bytes.is_empty() {
            bytes.reserve(usize::try_from(chunk.size).unwrap_or(0));
        }
        bytes.extend_from_slice(&chunk.data);
    }
    let actual = Digest::of(&bytes);
    if actual != *digest {
        return Err(FetchError::Mismatch {
            expected: *digest,
            actual,
        });
    }
    Ok(bytes)
}

impl ArtifactSource for ArtifactStore {
    fn read(&self, digest: &Digest) -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.path(digest)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }
}
