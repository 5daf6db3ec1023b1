//! Component bytes, content-addressed by sha256.
//!
//! [`BlobStore`] is the seam: the embedded platform keeps blobs in a directory
//! ([`DirectoryBlobStore`]); a cluster can put another store behind the same trait.

use std::io::Write;
use std::path::{Path, PathBuf};

use nexus_proto::Digest;

/// Where component bytes live, by digest. Putting the same bytes twice stores them once.
#[async_trait::async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `bytes` and returns their digest.
    async fn put(&self, bytes: Vec<u8>) -> std::io::Result<Digest>;

    /// The bytes with `digest`, or `None` if none were stored.
    async fn get(&self, digest: &Digest) -> std::io::Result<Option<Vec<u8>>>;
}

/// Blobs as files: `<root>/sha256/<hex>`.
#[derive(Debug, Clone)]
pub struct DirectoryBlobStore {
    root: PathBuf,
}

impl DirectoryBlobStore {
    /// A store under `root`, created on the first put.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The file that holds the blob with `digest`.
    pub fn path_of(&self, digest: &Digest) -> PathBuf {
        self.root.join("sha256").join(digest.hex())
    }
}

#[async_trait::async_trait]
impl BlobStore for DirectoryBlobStore {
    async fn put(&self, bytes: Vec<u8>) -> std::io::Result<Digest> {
        let digest = Digest::of(&bytes);
        let path = self.path_of(&digest);
        tokio::task::spawn_blocking(move || write_once(&path, &bytes))
            .await
            .map_err(std::io::Error::other)??;
        Ok(digest)
    }

    async fn get(&self, digest: &Digest) -> std::io::Result<Option<Vec<u8>>> {
        match tokio::fs::read(self.path_of(digest)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// Nodes in this process read component bytes straight from the directory (the runtime checks
/// them against the digest).
impl nexus_runtime::ArtifactSource for DirectoryBlobStore {
    fn read(&self, digest: &Digest) -> std::io::Result<Option<Vec<u8>>> {
        match std::fs::read(self.path_of(digest)) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }
}

/// Writes `bytes` to `path` unless the file exists. Readers never see a partial blob: the bytes
/// go to a temporary file in the same directory, synced, then renamed into place. Two racing
/// writers of one digest write the same bytes, so whichever rename lands last is as good.
fn write_once(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if path.exists() {
        return Ok(());
    }
    let directory = path
        .parent()
        .ok_or_else(|| std::io::Error::other("a blob path has a parent directory"))?;
    std::fs::create_dir_all(directory)?;
    let mut temporary = tempfile::NamedTempFile::new_in(directory)?;
    temporary.write_all(bytes)?;
    temporary.as_file().sync_all()?;
    temporary.persist(path).map_err(|error| error.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn same_bytes_are_stored_once() {
        let directory = tempfile::tempdir().unwrap();
        let blobs = DirectoryBlobStore::new(directory.path());
        let first = blobs.put(b"component".to_vec()).await.unwrap();
        let second = blobs.put(b"component".to_vec()).await.unwrap();
        assert_eq!(first, second);
        assert_eq!(first, Digest::of(b"component"));
        let files = std::fs::read_dir(directory.path().join("sha256"))
            .unwrap()
            .count();
        assert_eq!(files, 1);
        assert_eq!(
            blobs.get(&first).await.unwrap().as_deref(),
            Some(&b"component"[..])
        );
        assert_eq!(blobs.get(&Digest::of(b"other")).await.unwrap(), None);
    }
}
