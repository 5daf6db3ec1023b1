//! A bundle on disk: its manifest, and its components by digest, each checked against its
//! digest when read.

use std::path::{Path, PathBuf};

use nexus_proto::Digest;
use nexus_proto::cloud::{BUNDLE_MANIFEST, BundleManifest, blob_path};
use nexus_runtime::ArtifactSource;

/// The largest bundle manifest a host reads.
const MAX_MANIFEST_BYTES: u64 = 16 * 1024 * 1024;

/// Why a bundle could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// The manifest could not be read.
    #[error("reading {path}: {error}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What failed.
        error: std::io::Error,
    },
    /// The manifest is larger than a host reads.
    #[error("{0} is larger than {MAX_MANIFEST_BYTES} bytes")]
    TooLarge(PathBuf),
    /// The manifest is not a bundle manifest.
    #[error("{path} is not a bundle manifest: {error}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        error: serde_json::Error,
    },
    /// A component the app names is not in the bundle.
    #[error("component `{component}` ({digest}) is missing from the bundle")]
    Missing {
        /// The component id.
        component: String,
        /// Its digest.
        digest: Digest,
    },
}

/// The components of a bundle directory.
#[derive(Debug, Clone)]
pub struct BundleDir {
    root: PathBuf,
}

impl BundleDir {
    /// Reads the manifest of the bundle at `root` and checks that every component it names is
    /// there.
    pub fn open(root: &Path) -> Result<(BundleManifest, Self), BundleError> {
        let path = root.join(BUNDLE_MANIFEST);
        let io = |error| BundleError::Io {
            path: path.clone(),
            error,
        };
        if std::fs::metadata(&path).map_err(io)?.len() > MAX_MANIFEST_BYTES {
            return Err(BundleError::TooLarge(path));
        }
        let text = std::fs::read(&path).map_err(io)?;
        let manifest: BundleManifest =
            serde_json::from_slice(&text).map_err(|error| BundleError::Invalid {
                path: path.clone(),
                error,
            })?;
        for (id, component) in &manifest.app.components {
            if !root.join(blob_path(&component.source)).is_file() {
                return Err(BundleError::Missing {
                    component: id.clone(),
                    digest: component.source,
                });
            }
        }
        Ok((
            manifest,
            Self {
                root: root.to_owned(),
            },
        ))
    }
}

impl ArtifactSource for BundleDir {
    fn read(&self, digest: &Digest) -> std::io::Result<Option<Vec<u8>>> {
        let bytes = match std::fs::read(self.root.join(blob_path(digest))) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let actual = Digest::of(&bytes);
        if actual != *digest {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("the bundle's bytes for {digest} hash to {actual}"),
            ));
        }
        Ok(Some(bytes))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use nexus_proto::ResolvedApp;

    use super::*;

    fn manifest(components: BTreeMap<String, nexus_proto::app::ResolvedComponent>) -> String {
        serde_json::to_string(&BundleManifest {
            deployment: "v1".to_owned(),
            namespace: "tenant".to_owned(),
            app: ResolvedApp {
                name: "app".to_owned(),
                version: None,
                variables: BTreeMap::new(),
                components,
                http_triggers: Vec::new(),
            },
        })
        .unwrap()
    }

    #[test]
    fn a_missing_manifest_or_garbage_is_a_typed_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            BundleDir::open(dir.path()),
            Err(BundleError::Io { .. })
        ));
        std::fs::write(dir.path().join(BUNDLE_MANIFEST), "{").unwrap();
        assert!(matches!(
            BundleDir::open(dir.path()),
            Err(BundleError::Invalid { .. })
        ));
        std::fs::write(dir.path().join(BUNDLE_MANIFEST), manifest(BTreeMap::new())).unwrap();
        let (read, _) = BundleDir::open(dir.path()).unwrap();
        assert_eq!(read.deployment, "v1");
    }

    #[test]
    fn bytes_that_do_not_match_their_digest_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let digest = Digest::of(b"component");
        let path = dir.path().join(blob_path(&digest));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, b"component").unwrap();
        let blobs = BundleDir {
            root: dir.path().to_owned(),
        };
        assert_eq!(blobs.read(&digest).unwrap().unwrap(), b"component");
        assert!(blobs.read(&Digest::of(b"other")).unwrap().is_none());
        std::fs::write(&path, b"tampered").unwrap();
        assert_eq!(
            blobs.read(&digest).unwrap_err().kind(),
            std::io::ErrorKind::InvalidData
        );
    }
}
